"""promptlab: production prompt engineering in Jupyter.

``import promptlab as pl`` gives the notebook surface: load prompts and suites, run them on a model,
read the results, compare variants with paired statistics, plot, judge, explore.

Names are imported on first use (PEP 562), so ``import promptlab`` stays fast: pandas, scipy, plotly and
the SDKs load only when something needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that owns it
_EXPORTS: dict[str, str] = {
    "AnthropicProvider": ".providers.anthropic",
    "AnyOf": ".scoring",
    "Budget": ".cost",
    "COLUMNS": ".results",
    "Case": ".suite",
    "Checklist": ".checklist",
    "Comparison": ".comparison",
    "CompatibilityMatrix": ".optimize.compatibility",
    "Completion": ".providers",
    "Compression": ".optimize.compression",
    "Contains": ".scoring",
    "Criterion": ".judge",
    "EvalResult": ".results",
    "Evidence": ".evidence",
    "EvidenceError": ".errors",
    "ExactMatch": ".scoring",
    "FakeLLMServer": ".testing",
    "FakeProvider": ".providers",
    "GateRefused": ".errors",
    "GateResult": ".lifecycle",
    "IntegrityError": ".errors",
    "JsonSchema": ".scoring",
    "JsonValid": ".scoring",
    "LOCAL_MODEL_ID": ".providers.local",
    "Message": ".providers",
    "MissingAPIKeyError": ".errors",
    "MissingDependencyError": ".errors",
    "MissingVariablesError": ".errors",
    "ModelSpecError": ".errors",
    "NonInferiority": ".optimize.noninferiority",
    "Numeric": ".scoring",
    "OpenAIProvider": ".providers.openai",
    "Prompt": ".prompt",
    "PromptDiff": ".diff",
    "PromptFileError": ".errors",
    "PromptRegistry": ".registry",
    "PromptlabError": ".errors",
    "Provider": ".providers",
    "ProviderError": ".errors",
    "Regex": ".scoring",
    "Registry": ".registry",
    "RegistryError": ".errors",
    "RenderError": ".errors",
    "Request": ".providers",
    "ResponseCache": ".cache",
    "Results": ".results",
    "RoutingTable": ".optimize.routing",
    "RunError": ".errors",
    "Score": ".scoring",
    "StatsError": ".errors",
    "Suite": ".suite",
    "SuiteFileError": ".errors",
    "always_valid": ".sequential",
    "always_valid_proportions": ".sequential",
    "arun": ".runner",
    "check_lockfile": ".optimize.pinning",
    "choose_model": ".optimize.routing",
    "compare": ".comparison",
    "compress": ".optimize.compression",
    "count_tokens": ".cost",
    "diff": ".diff",
    "estimate": ".runner",
    "evaluate_prompt": ".runner",
    "explore": ".widgets",
    "floating_aliases": ".optimize.pinning",
    "holm": ".stats",
    "is_pinned": ".optimize.pinning",
    "is_significant": ".sequential",
    "judge": ".judge",
    "load_prices": ".cost",
    "load_prompt": ".prompt",
    "load_routing_table": ".optimize.routing",
    "load_suite": ".suite",
    "mcnemar": ".stats",
    "mde_two_proportions": ".planning",
    "noninferiority": ".optimize.noninferiority",
    "paired_plan_from_pilot": ".planning",
    "plot_accuracy": ".plots",
    "plot_cost_quality": ".plots",
    "plot_latency": ".plots",
    "plot_power": ".plots",
    "plot_sequential": ".plots",
    "plot_significance": ".plots",
    "prices": ".cost",
    "quantile_ci": ".stats",
    "rejudge": ".judge",
    "routing_table": ".optimize.routing",
    "run": ".runner",
    "sample_size_paired": ".planning",
    "sample_size_two_proportions": ".planning",
    "served_model_drift": ".optimize.pinning",
    "set_price": ".cost",
    "srm_check": ".sequential",
    "test_model_compatibility": ".optimize.compatibility",
    "two_proportion_ztest": ".sequential",
    "wilson_interval": ".stats",
    "write_lockfile": ".optimize.pinning",
}

__all__ = [
    "AnthropicProvider",
    "AnyOf",
    "Budget",
    "COLUMNS",
    "Case",
    "Checklist",
    "Comparison",
    "CompatibilityMatrix",
    "Completion",
    "Compression",
    "Contains",
    "Criterion",
    "EvalResult",
    "Evidence",
    "EvidenceError",
    "ExactMatch",
    "FakeLLMServer",
    "FakeProvider",
    "GateRefused",
    "GateResult",
    "IntegrityError",
    "JsonSchema",
    "JsonValid",
    "LOCAL_MODEL_ID",
    "Message",
    "MissingAPIKeyError",
    "MissingDependencyError",
    "MissingVariablesError",
    "ModelSpecError",
    "NonInferiority",
    "Numeric",
    "OpenAIProvider",
    "Prompt",
    "PromptDiff",
    "PromptFileError",
    "PromptRegistry",
    "PromptlabError",
    "Provider",
    "ProviderError",
    "Regex",
    "Registry",
    "RegistryError",
    "RenderError",
    "Request",
    "ResponseCache",
    "Results",
    "RoutingTable",
    "RunError",
    "Score",
    "StatsError",
    "Suite",
    "SuiteFileError",
    "__version__",
    "always_valid",
    "always_valid_proportions",
    "arun",
    "check_lockfile",
    "choose_model",
    "compare",
    "compress",
    "count_tokens",
    "diff",
    "estimate",
    "evaluate_prompt",
    "explore",
    "floating_aliases",
    "holm",
    "is_pinned",
    "is_significant",
    "judge",
    "load_prices",
    "load_prompt",
    "load_routing_table",
    "load_suite",
    "mcnemar",
    "mde_two_proportions",
    "noninferiority",
    "paired_plan_from_pilot",
    "plot_accuracy",
    "plot_cost_quality",
    "plot_latency",
    "plot_power",
    "plot_sequential",
    "plot_significance",
    "prices",
    "quantile_ci",
    "rejudge",
    "routing_table",
    "run",
    "sample_size_paired",
    "sample_size_two_proportions",
    "served_model_drift",
    "set_price",
    "srm_check",
    "test_model_compatibility",
    "two_proportion_ztest",
    "wilson_interval",
    "write_lockfile",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'promptlab' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from .cache import ResponseCache
    from .checklist import Checklist
    from .comparison import Comparison, compare
    from .cost import Budget, count_tokens, load_prices, prices, set_price
    from .diff import PromptDiff, diff
    from .errors import (
        EvidenceError,
        GateRefused,
        IntegrityError,
        MissingAPIKeyError,
        MissingDependencyError,
        MissingVariablesError,
        ModelSpecError,
        PromptFileError,
        PromptlabError,
        ProviderError,
        RegistryError,
        RenderError,
        RunError,
        StatsError,
        SuiteFileError,
    )
    from .evidence import Evidence
    from .judge import Criterion, judge, rejudge
    from .lifecycle import GateResult
    from .optimize.compatibility import CompatibilityMatrix, test_model_compatibility
    from .optimize.compression import Compression, compress
    from .optimize.noninferiority import NonInferiority, noninferiority
    from .optimize.pinning import check_lockfile, floating_aliases, is_pinned, served_model_drift, write_lockfile
    from .optimize.routing import RoutingTable, choose_model, load_routing_table, routing_table
    from .planning import mde_two_proportions, paired_plan_from_pilot, sample_size_paired, sample_size_two_proportions
    from .plots import plot_accuracy, plot_cost_quality, plot_latency, plot_power, plot_sequential, plot_significance
    from .prompt import Prompt, load_prompt
    from .providers import Completion, FakeProvider, Message, Provider, Request
    from .providers.anthropic import AnthropicProvider
    from .providers.local import LOCAL_MODEL_ID
    from .providers.openai import OpenAIProvider
    from .registry import PromptRegistry, Registry
    from .results import COLUMNS, EvalResult, Results
    from .runner import arun, estimate, evaluate_prompt, run
    from .scoring import AnyOf, Contains, ExactMatch, JsonSchema, JsonValid, Numeric, Regex, Score
    from .sequential import always_valid, always_valid_proportions, is_significant, srm_check, two_proportion_ztest
    from .stats import holm, mcnemar, quantile_ci, wilson_interval
    from .suite import Case, Suite, load_suite
    from .testing import FakeLLMServer
    from .widgets import explore
