"""The article's interface, kept so code written against it runs: one name per task it names.

``PromptRegistry`` (over `promptlab.Registry`), ``evaluate_prompt`` (over `promptlab.run`, returning an
``EvalResult``) and ``is_significant`` (a two-sided two-proportion test; `promptlab.compare` is the paired
comparison to use for variants answering the same cases).
"""

from ._face import declare

declare(__name__, globals(), {
    "PromptRegistry": "promptlab.registry._article", "evaluate_prompt": "promptlab.evaluation._runner",
    "EvalResult": "promptlab.evaluation._results", "is_significant": "promptlab.stats._sequential",
})
