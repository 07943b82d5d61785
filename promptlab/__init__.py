"""promptlab: production prompt engineering in Jupyter.

``import promptlab as pl`` is the notebook path, learnt in an afternoon: load prompts and suites, run them on
a model, read the results, compare variants with paired statistics, plot, register the winner. Everything
else lives in named sub-faces:

============== ===========================================================================================
``pl.authoring``  prompt files and suites beyond the face: diffs, changelog entries, render limits
``pl.stats``      intervals, paired tests, multiplicity, sequential (always-valid) reads, SRM, planners
``pl.evaluation`` the eval file's parts, scorer specs, the judge's extras, classification metrics, the results
                  schema, token counting and prices
``pl.importers``  paths in from other tools: the promptfoo importer
``pl.registry``   evidence, gates, the production checklist, version diffs
``pl.production`` event logs, A/B tests, the production client, monitoring, alerts, shadow and canary
``pl.optimize``   the prompt search's parts, compression, non-inferiority, routing, model compatibility
``pl.providers``  model ids and the provider classes; pinning and the model lockfile
``pl.notebook``   every plot, the explorer widget, notebook reports
``pl.testing``    the loopback fake LLM server and its pytest fixture
``pl.errors``     the exception tree
``pl.compat``     the article's interface (``PromptRegistry``, ``evaluate_prompt``, ``is_significant``)
============== ===========================================================================================

`FACE` is the one map of the face: ``__all__`` and ``dir(pl)`` derive from it. Names load on first use
(PEP 562), so ``import promptlab`` stays fast: pandas, scipy, plotly and the SDKs load when needed.
"""

from __future__ import annotations

from ._face import declare
from ._version import __version__ as __version__

# public name -> the module that owns it (its attribute of the same name)
FACE: dict[str, str] = {
    # prompts and suites
    "Prompt": "promptlab.authoring", "load_prompt": "promptlab.authoring", "Suite": "promptlab.authoring",
    "Case": "promptlab.authoring", "load_suite": "promptlab.authoring", "diff": "promptlab.authoring",
    # running and results
    "run": "promptlab.evaluation", "arun": "promptlab.evaluation", "estimate": "promptlab.evaluation",
    "Results": "promptlab.evaluation", "Budget": "promptlab.evaluation", "ResponseCache": "promptlab.evaluation",
    "load_eval": "promptlab.evaluation", "runs": "promptlab.evaluation", "load_run": "promptlab.evaluation",
    # scoring
    "Score": "promptlab.evaluation", "ExactMatch": "promptlab.evaluation", "Contains": "promptlab.evaluation",
    "AnyOf": "promptlab.evaluation", "Regex": "promptlab.evaluation", "JsonValid": "promptlab.evaluation",
    "JsonSchema": "promptlab.evaluation", "JsonField": "promptlab.evaluation", "Numeric": "promptlab.evaluation",
    "judge": "promptlab.evaluation",
    # comparing and plotting
    "compare": "promptlab.evaluation", "Comparison": "promptlab.stats",
    "plot_accuracy": "promptlab.notebook", "plot_latency": "promptlab.notebook",
    "plot_significance": "promptlab.notebook", "plot_cost_quality": "promptlab.notebook",
    "explore": "promptlab.notebook",
    "view": "promptlab.notebook",
    # the registry
    "Registry": "promptlab.registry",
    # optimizing: the prompt search
    "optimize_prompt": "promptlab.optimize",
    # providers and fakes
    "FakeProvider": "promptlab.providers", "OpenAIProvider": "promptlab.providers",
    "AnthropicProvider": "promptlab.providers", "FakeLLMServer": "promptlab.testing",
    # the errors users catch most
    "PromptlabError": "promptlab.errors", "PromptFileError": "promptlab.errors", "SuiteFileError": "promptlab.errors",
    "RenderError": "promptlab.errors", "ProviderError": "promptlab.errors", "GateRefused": "promptlab.errors",
}
SUBFACES = ("authoring", "evaluation", "importers", "stats", "registry", "production", "optimize", "providers",
            "notebook", "testing", "errors", "compat")

declare(__name__, globals(), FACE, SUBFACES)
