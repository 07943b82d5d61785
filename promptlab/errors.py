"""The one exception tree of promptlab.

Every message says what happened, shows the offending value with ``!r`` and says how to fix it::

    PromptlabError
    ├── PromptFileError        a prompt YAML file is unreadable or invalid
    ├── SuiteFileError         a suite file (YAML / JSONL) is unreadable or invalid
    ├── RenderError            a prompt template cannot be rendered
    │   ├── MissingVariablesError   the case lacks variables the template uses (all listed at once)
    │   └── TemplateLimitError      a render went past a resource limit (size, loop iterations, time)
    ├── PriceFileError         a price table file is unreadable or invalid
    ├── ModelSpecError         a model id cannot be resolved to a provider
    ├── MissingDependencyError an optional extra is not installed (names the pip command)
    ├── MissingAPIKeyError     a hosted provider has no key (names the environment variable)
    ├── ProviderError          a provider call failed; carries ``error_type`` for the results row
    ├── RunError               a run failed as a whole (for example past ``max_error_rate``)
    ├── StatsError             a statistic cannot be computed from the data or arguments given
    ├── EventLogError          an event is invalid, or an event log cannot be read or written
    ├── ExperimentError        an A/B test, canary or shadow is configured wrongly (arms, weights)
    ├── AlertConfigError       an alert rules file is unreadable or invalid
    ├── AlertDeliveryError     an alert sink (a webhook) could not deliver an alert
    ├── PromptUnavailableError the registry failed and no last good version is cached
    ├── TokenBudgetExceeded    a call was refused: it would take a token budget past its limit
    ├── RegistryError          the registry cannot do what was asked (unknown prompt, bad move, bad file)
    │   ├── IntegrityError     a registered version file was edited after registration
    │   └── EvidenceError      evidence cannot be used (wrong version, unreadable file, wrong type)
    ├── CompressionError       a compression rule or its arguments are invalid
    ├── RoutingError           no model meets a task's accuracy bar, or a routing table is invalid
    ├── LockfileError          the model lockfile is unreadable, or would be overwritten by a change
    ├── ModelDriftError        a pinned model was answered by a different served id (``.drift``)
    └── GateRefused            a lifecycle gate refused a move; names the gate and the evidence needed
"""

from __future__ import annotations


class PromptlabError(Exception):
    """Base class of every error promptlab raises on purpose."""

    def _render_traceback_(self) -> list[str]:
        """How IPython shows this error: the message, not promptlab's internal stack.

        Our messages already say what happened, the offending value and the fix; the frames inside the
        library (threads, event loops, validators) only hide that in a notebook.
        """
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


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


class TemplateLimitError(RenderError):
    """A template render was stopped at a resource limit (`promptlab.authoring._prompt.RENDER_LIMITS`).

    Attributes:
        limit: the limit's name (``max_chars``, ``max_loop_iterations``, ``max_seconds``, ``max_int_digits``).
    """

    def __init__(self, message: str, limit: str):
        super().__init__(message)
        self.limit = limit

    def __reduce__(self):  # picklable across processes
        return type(self), (str(self), self.limit)


class PriceFileError(PromptlabError, ValueError):
    """A price table file (`promptlab.evaluation._cost.load_prices`) could not be read or is not valid YAML."""


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


class StatsError(PromptlabError, ValueError):
    """A statistic was asked for with data or arguments it cannot use (bad counts, unknown baseline …)."""


class EventLogError(PromptlabError, ValueError):
    """An event is invalid (a missing prompt, a raw unit id where a hash belongs …), or a log cannot be read."""


class ExperimentError(PromptlabError, ValueError):
    """An A/B test, canary or shadow is configured wrongly (fewer than two arms, a weight <= 0 …)."""


class AlertConfigError(PromptlabError, ValueError):
    """An alert rules file could not be read or does not follow the rules format."""


class PromptUnavailableError(PromptlabError, RuntimeError):
    """The registry could not give the live prompt version and no last good version was cached."""


class TokenBudgetExceeded(PromptlabError, RuntimeError):
    """A call was refused because it would take a token budget past its limit.

    Attributes:
        budget: the budget's name.
        used: tokens already used in the current period.
        requested: tokens the refused call asked for.
        limit: the budget's limit per period.
        period: the period's key (``2024-05-01`` for daily, ``2024-05`` for monthly, ``total``).
    """

    def __init__(self, budget: str, used: int, requested: int, limit: int, period: str):
        self.budget, self.used, self.requested, self.limit, self.period = budget, used, requested, limit, period
        super().__init__(
            f"token budget {budget!r} refuses {requested!r} tokens: {used!r} of {limit!r} already used in "
            f"period {period!r}. Wait for the next period, raise the limit, or lower max_tokens."
        )

    def __reduce__(self):  # picklable across processes (the message is rebuilt from the fields)
        return type(self), (self.budget, self.used, self.requested, self.limit, self.period)


class CompressionError(PromptlabError, ValueError):
    """A compression rule is unknown, or it produced an invalid prompt (`promptlab.optimize.compress`)."""


class RoutingError(PromptlabError, LookupError):
    """A routing table has no route for a task, no model met a task's bar, or a routing file is invalid."""


class LockfileError(PromptlabError, ValueError):
    """A model lockfile (``promptlab.lock.yaml``) is unreadable or does not follow the lockfile format."""


class ModelDriftError(PromptlabError, RuntimeError):
    """A pinned model name was answered by a model id other than the one recorded (or by several).

    Attributes:
        drift: the offending rows (asked model, served ids, calls, the locked id) as a DataFrame.
    """

    def __init__(self, message: str, drift: object = None):
        super().__init__(message)
        self.drift = drift

    def __reduce__(self):  # picklable across processes
        return type(self), (str(self), self.drift)


class RegistryError(PromptlabError, ValueError):
    """The prompt registry cannot do what was asked: an unknown prompt or version, a move the lifecycle does
    not allow, an invalid registry file."""


class IntegrityError(RegistryError):
    """A registered version no longer matches the hash recorded when it was registered (edited by hand),
    or its file is missing. Registered versions are immutable: restore the file or register a new version."""


class EvidenceError(RegistryError):
    """Evidence given to the registry cannot be used: it holds no rows of the prompt version, the file is
    unreadable, or the object is of a type the registry does not know."""


class GateRefused(PromptlabError):
    """A lifecycle gate refused to move a prompt version.

    Attributes:
        gate: the gate that refused (``test``, ``review``, ``staging`` or ``production``).
        failures: what failed, one sentence each.
        needed: the evidence or action that would satisfy the gate, one sentence each.
        details: the gate's full report (a `GateResult`; for production it holds the `Checklist`).
    """

    def __init__(self, message: str, *, gate: str, failures: tuple[str, ...] = (), needed: tuple[str, ...] = (),
                 details: object = None):
        super().__init__(message)
        self.gate = gate
        self.failures = tuple(failures)
        self.needed = tuple(needed)
        self.details = details

    def __reduce__(self):  # picklable across processes (keyword fields travel with the message)
        return _rebuild_gate_refused, (str(self), self.gate, self.failures, self.needed)


def _rebuild_gate_refused(message: str, gate: str, failures: tuple[str, ...],
                          needed: tuple[str, ...]) -> GateRefused:
    return GateRefused(message, gate=gate, failures=failures, needed=needed)


class AlertDeliveryError(PromptlabError, RuntimeError):
    """An alert sink could not deliver an alert (a webhook answered an error or could not be reached)."""
