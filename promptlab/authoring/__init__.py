"""Draft: prompt files (versioned YAML, sandboxed templates, content hash) and suites of labelled cases."""

from .._face import declare

declare(__name__, globals(), {
    "Prompt": "._prompt", "load_prompt": "._prompt", "ChangelogEntry": "._prompt", "FewShotExample": "._prompt",
    "RenderLimits": "._templates",
    "Suite": "._suite", "Case": "._suite", "load_suite": "._suite",
    "diff": "._diff", "PromptDiff": "._diff",
})
