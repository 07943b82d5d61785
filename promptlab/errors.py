"""The one exception tree of promptlab.

Every message says what happened, shows the offending value with ``!r`` and says how to fix it::

    PromptlabError
    ├── PromptFileError        a prompt YAML file is unreadable or invalid
    ├── SuiteFileError         a suite file (YAML / JSONL) is unreadable or invalid
    ├── RenderError            a prompt template cannot be rendered
    │   └── MissingVariablesError   the case lacks variables the template uses (all listed at once)
    ├── ModelSpecError         a model id cannot be resolved to a provider
    ├── MissingDependencyError an optional extra is not installed (names the pip command)
    ├── MissingAPIKeyError     a hosted provider has no key (names the environment variable)
    ├── ProviderError          a provider call failed; carries ``error_type`` for the results row
    └── RunError               a run failed as a whole (for example past ``max_error_rate``)
"""

from __future__ import annotations


class PromptlabError(Exception):
    """Base class of every error promptlab raises on purpose."""


class PromptFileError(PromptlabError, ValueError):
    """A prompt file could not be read or does not follow the prompt format."""


class SuiteFileError(PromptlabError, ValueError):
    """A suite file could not be read or does not follow the suite format."""


class RenderError(PromptlabError, ValueError):
    """A prompt template could not be rendered for a case."""


class MissingVariablesError(RenderError):
    """The template uses variables the case does not provide.

    Attributes:
        missing: every missing variable name, sorted.
    """

    def __init__(self, prompt_name: str, missing: list[str], given: list[str]):
        self.missing = sorted(missing)
        super().__init__(
            f"prompt {prompt_name!r} needs variables {self.missing!r} that the case does not provide "
            f"(given: {sorted(given)!r}). Add them to the case's `input` dict, or remove them from the template."
        )


class ModelSpecError(PromptlabError, ValueError):
    """A model id does not name a known provider."""


class MissingDependencyError(PromptlabError, ImportError):
    """An optional dependency is needed; the message names the pip command that installs it."""


class MissingAPIKeyError(PromptlabError, RuntimeError):
    """A hosted provider was asked for without an API key."""


class ProviderError(PromptlabError, RuntimeError):
    """A model call failed.

    Attributes:
        error_type: a short stable label for the results' ``error_type`` column
            (``timeout``, ``rate_limit``, ``server``, ``connection``, ``bad_request``, ``auth`` ...).
        retryable: whether trying again may help.
        retry_after_s: the server's Retry-After hint in seconds, if any.
    """

    def __init__(
        self, message: str, *, error_type: str, retryable: bool = False, retry_after_s: float | None = None
    ):
        super().__init__(message)
        self.error_type = error_type
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class RunError(PromptlabError, RuntimeError):
    """A run as a whole could not go on (too many failed calls, a bad argument)."""
