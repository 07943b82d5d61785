"""The one exception tree of promptlab: catch by kind.

Every message says what happened, shows the offending value with ``!r`` and says how to fix it. Three
branches answer "whose move is it?": `UsageError` (fix your file, argument or setup and run again),
`ProviderError` (the model service failed; ``status``, ``provider``, ``model``, a redacted ``body``) and
`Refused` (a rule said no: a gate, a budget, a model pin)::

    PromptlabError
    ├── UsageError             a mistake in the user's files, arguments or setup: fix it and run again
    │   ├── ArgumentError      a bad argument to a library function (a ValueError and a TypeError both)
    │   │   ├── UnknownNameError   an argument names something that does not exist (also a KeyError)
    │   │   └── RunArgumentError   `run` was called with bad arguments (also a RunError, for old code)
    │   ├── StateError         an object used in a state that does not allow it (also a RuntimeError)
    │   ├── PromptFileError        a prompt YAML file is unreadable or invalid
    │   ├── SuiteFileError         a suite file (YAML / JSONL) is unreadable or invalid
    │   ├── EvalFileError          an eval file (promptlab.yaml) is unreadable or invalid
    │   ├── RenderError            a prompt template cannot be rendered
    │   │   ├── MissingVariablesError   the case lacks variables the template uses (all listed at once)
    │   │   └── TemplateLimitError      a render went past a resource limit (size, loop iterations, time)
    │   ├── PriceFileError         a price table file is unreadable or invalid
    │   ├── AlertConfigError       an alert rules file is unreadable or invalid
    │   ├── LockfileError          the model lockfile is unreadable, or would be overwritten by a change
    │   ├── NotebookFileError      a notebook given to a report does not exist (also a FileNotFoundError)
    │   ├── ModelSpecError         a model id cannot be resolved to a provider
    │   ├── CompressionError       a compression rule or its arguments are invalid
    │   ├── ExperimentError        an A/B test, canary or shadow is configured wrongly (arms, weights)
    │   ├── StatsError             a statistic cannot be computed from the data or arguments given
    │   ├── EventLogError          an event is invalid, or an event log file cannot be read or written
    │   ├── RoutingError           no model meets a task's accuracy bar, or a routing table is invalid
    │   ├── RegistryError          the registry cannot do what was asked (unknown prompt, bad move, bad file)
    │   │   ├── IntegrityError     a registered version file was edited after registration
    │   │   └── EvidenceError      evidence cannot be used (wrong version, unreadable file, wrong type)
    │   └── SetupError             the environment lacks something promptlab needs
    │       ├── MissingDependencyError an optional extra is not installed (names the pip command)
    │       └── MissingAPIKeyError     a hosted provider has no key (names the environment variable)
    ├── ProviderError          a model call failed: ``error_type``, ``status``, ``provider``, ``model``, ``body``
    ├── Refused                a rule refused what was asked
    │   ├── GateRefused            a lifecycle gate refused a move; names the gate and the evidence needed
    │   ├── TokenBudgetExceeded    a call would take a token budget past its limit
    │   └── ModelDriftError        a pinned model was answered by a different served id (``.drift``)
    ├── RunError               `run` stopped (the old umbrella: catch RunFailed or UsageError instead)
    │   ├── RunFailed              too many calls failed (past ``max_error_rate``); ``.results`` has every row
    │   └── RunArgumentError       (see above: a UsageError too)
    ├── PromptUnavailableError the registry failed and no last good version is cached
    ├── AlertDeliveryError     an alert sink (a webhook) could not deliver an alert
    └── NotebookFailed         a notebook did not run to the end (names the cell and the error)

Each class also keeps the builtin it has always extended (`SuiteFileError` is a ValueError, `ProviderError` a
RuntimeError ...), so code that caught the builtin keeps working. `ArgumentError` replaced bare ValueError and
TypeError raises, so it is both.

``RunError`` used to mean both "bad argument" and "too many failures"; it is now the common base of
`RunFailed` and `RunArgumentError`, kept so ``except RunError`` in old code still catches both.
"""

from __future__ import annotations

import json
import re
from typing import Any

# the face of `pl.errors`: every class of the tree, and the redaction ProviderError applies
__all__ = [
    "AlertConfigError", "AlertDeliveryError", "ArgumentError", "CompressionError", "EvalFileError", "EventLogError",
    "EvidenceError",
    "ExperimentError", "GateRefused", "IntegrityError", "LockfileError", "MissingAPIKeyError",
    "MissingDependencyError", "MissingVariablesError", "ModelDriftError", "ModelSpecError", "NotebookFailed",
    "NotebookFileError", "PriceFileError", "PromptFileError", "PromptUnavailableError", "PromptlabError",
    "ProviderError", "Refused", "RegistryError", "RenderError", "RoutingError", "RunArgumentError", "RunError",
    "RunFailed", "SetupError", "StateError", "StatsError", "SuiteFileError", "TemplateLimitError",
    "TokenBudgetExceeded",
    "UnknownNameError", "UsageError", "redact_secrets",
]


class PromptlabError(Exception):
    """Base class of every error promptlab raises on purpose."""

    def _render_traceback_(self) -> list[str]:
        """How IPython shows this error: the message, not promptlab's internal stack.

        Our messages already say what happened, the offending value and the fix; the frames inside the
        library (threads, event loops, validators) only hide that in a notebook.
        """
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


# ---- the user's move: files, arguments, setup ------------------------------------------------------------
class UsageError(PromptlabError):
    """A mistake in the user's files, arguments or setup: the message names it and the fix; run again after."""


class ArgumentError(UsageError, ValueError, TypeError):
    """A library function was given an argument it cannot use (wrong type, out of range, inconsistent).

    It is a ValueError and a TypeError both: it replaced bare raises of either, and code that caught them
    keeps catching it.
    """


class StateError(UsageError, RuntimeError):
    """An object was used in a state that does not allow it: a server asked for its port before it started,
    or started twice. A RuntimeError too, as the bare raises it replaced were."""


class UnknownNameError(ArgumentError, KeyError):
    """An argument names something that does not exist (a case id, a checklist item, a metric) — a KeyError
    too, for lookups by name."""

    __str__ = BaseException.__str__  # the message as written (KeyError's own str() would quote it)


class RunError(PromptlabError, RuntimeError):
    """`run` stopped. The common base of `RunFailed` (too many failed calls) and `RunArgumentError` (bad
    arguments), kept so that ``except RunError`` in code written before the split catches both; new code
    catches `RunFailed` or `UsageError`."""


class RunArgumentError(ArgumentError, RunError):
    """`run` (or `arun`, `estimate`) was called with arguments it cannot use: no cases, not a Prompt, an
    unknown option, a budget without prices."""


class PromptFileError(UsageError, ValueError):
    """A prompt file could not be read or does not follow the prompt format."""


class SuiteFileError(UsageError, ValueError):
    """A suite file could not be read or does not follow the suite format."""


class EvalFileError(UsageError, ValueError):
    """An eval file (``promptlab.yaml``) could not be read, is invalid, or names prompts, a suite or python code
    that cannot be loaded; every problem is listed with its line."""


class RenderError(UsageError, ValueError):
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


class PriceFileError(UsageError, ValueError):
    """A price table file (`promptlab.evaluation.load_prices`) could not be read or is not valid YAML."""


class AlertConfigError(UsageError, ValueError):
    """An alert rules file could not be read or does not follow the rules format."""


class LockfileError(UsageError, ValueError):
    """A model lockfile (``promptlab.lock.yaml``) is unreadable or does not follow the lockfile format."""


class NotebookFileError(UsageError, FileNotFoundError):
    """A notebook given to `promptlab.notebook.notebook_report` does not exist."""


class ModelSpecError(UsageError, ValueError):
    """A model id does not name a known provider."""


class CompressionError(UsageError, ValueError):
    """A compression rule is unknown, or it produced an invalid prompt (`promptlab.optimize.compress`)."""


class ExperimentError(UsageError, ValueError):
    """An A/B test, canary or shadow is configured wrongly (fewer than two arms, a weight <= 0 …)."""


class StatsError(UsageError, ValueError):
    """A statistic was asked for with data or arguments it cannot use (bad counts, unknown baseline …)."""


class EventLogError(UsageError, ValueError):
    """An event is invalid (a missing prompt, a raw unit id where a hash belongs …), or a log file cannot be
    read or written. Both are the user's to fix: the event they log, or the path they gave."""


class RoutingError(UsageError, LookupError):
    """A routing table has no route for a task, no model met a task's bar, or a routing file is invalid."""


class RegistryError(UsageError, ValueError):
    """The prompt registry cannot do what was asked: an unknown prompt or version, a move the lifecycle does
    not allow, an invalid registry file."""


class IntegrityError(RegistryError):
    """A registered version no longer matches the hash recorded when it was registered (edited by hand),
    or its file is missing. Registered versions are immutable: restore the file or register a new version."""


class EvidenceError(RegistryError):
    """Evidence given to the registry cannot be used: it holds no rows of the prompt version, the file is
    unreadable, or the object is of a type the registry does not know."""


class SetupError(UsageError):
    """The environment lacks something promptlab needs (an optional extra, an API key)."""


class MissingDependencyError(SetupError, ImportError):
    """An optional dependency is needed; the message names the pip command that installs it."""


class MissingAPIKeyError(SetupError, RuntimeError):
    """A hosted provider was asked for without an API key."""


# ---- the service's move: a model call failed ---------------------------------------------------------------
# Key-like text: an Authorization value, sk-/pk-/rk- style keys, and the value after an api-key-ish name.
_KEY_LIKE = re.compile(
    r"(?P<keep>(?i:bearer)\s+)[A-Za-z0-9._~+/=-]{4,}"
    r"|\b(?:sk|pk|rk)-[A-Za-z0-9_-]{6,}"
    r"|(?P<name>(?i:x-api-key|x-goog-api-key|api[_-]?key|authorization|access[_-]?token)"
    r"[\"']?\s*[:=]\s*[\"']?)(?:(?i:bearer)\s+)?[^\s\"',;}&]+"
)
BODY_LIMIT = 2000  # characters of a response body kept on a ProviderError


def redact_secrets(text: str) -> str:
    """``text`` with anything key-like replaced by ``***``: ``Bearer`` tokens, ``sk-…`` keys, and the value
    after ``x-api-key``, ``api_key``, ``authorization`` and the like (in headers, JSON or query strings)."""
    return _KEY_LIKE.sub(lambda m: (m.group("keep") or m.group("name") or "") + "***", text)


def _redacted_body(body: Any) -> str | None:
    """A response body as text, redacted, then cut to `BODY_LIMIT` (redacting first: a cut key still hides)."""
    if body is None:
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    elif not isinstance(body, str):
        body = json.dumps(body, default=str, ensure_ascii=False)
    text = redact_secrets(body)
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + "…"


class ProviderError(PromptlabError, RuntimeError):
    """A model call failed.

    The message and ``body`` are redacted of anything key-like (`redact_secrets`) when the error is built, so
    neither ``str()``, ``repr()``, ``args`` nor a log line can leak a key the server echoed back.

    Attributes:
        error_type: a short stable label for the results' ``error_type`` column
            (``timeout``, ``rate_limit``, ``server``, ``connection``, ``bad_request``, ``auth`` ...); branch
            on it (or on ``status``) to handle one kind.
        retryable: whether trying again may help.
        retry_after_s: the server's Retry-After hint in seconds, if any.
        status: the HTTP status the service answered (429, 503 …), None when there was no answer.
        provider: the provider's name (``openai``, ``anthropic``, ``fake`` …), when known.
        model: the model id the call asked for, when known.
        body: the service's response body as text, redacted and cut to `BODY_LIMIT` characters, or None.
    """

    def __init__(self, message: str, *, error_type: str, retryable: bool = False,
                 retry_after_s: float | None = None, status: int | None = None, provider: str | None = None,
                 model: str | None = None, body: Any = None):
        super().__init__(redact_secrets(str(message)))
        self.error_type = error_type
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.status = status
        self.provider = provider
        self.model = model
        self.body = _redacted_body(body)

    def __reduce__(self):  # picklable across processes (the fields are keyword-only)
        fields = {"error_type": self.error_type, "retryable": self.retryable, "retry_after_s": self.retry_after_s,
                  "status": self.status, "provider": self.provider, "model": self.model, "body": self.body}
        return _rebuild_provider_error, (type(self), str(self), fields)


def _rebuild_provider_error(cls: type[ProviderError], message: str, fields: dict[str, Any]) -> ProviderError:
    return cls(message, **fields)


# ---- a rule's move: refused ---------------------------------------------------------------------------------
class Refused(PromptlabError):
    """A rule refused what was asked: a lifecycle gate, a token budget, a model pin. Nothing is broken; the
    message names the rule and what would satisfy it."""


class GateRefused(Refused):
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


class TokenBudgetExceeded(Refused, RuntimeError):
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


class ModelDriftError(Refused, RuntimeError):
    """A pinned model name was answered by a model id other than the one recorded (or by several).

    Attributes:
        drift: the offending rows (asked model, served ids, calls, the locked id) as a DataFrame.
    """

    def __init__(self, message: str, drift: object = None):
        super().__init__(message)
        self.drift = drift

    def __reduce__(self):  # picklable across processes
        return type(self), (str(self), self.drift)


# ---- a run, the registry at serving time, alert sinks, notebooks -------------------------------------------
class RunFailed(RunError):
    """A run went past ``max_error_rate``: too many calls failed.

    Attributes:
        results: every row of the run (the failed ones carry ``error_type`` and ``error``), or None.
    """

    def __init__(self, message: str, results: Any = None):
        super().__init__(message)
        self.results = results

    def __reduce__(self):  # picklable across processes
        return type(self), (str(self), self.results)


class PromptUnavailableError(PromptlabError, RuntimeError):
    """The registry could not give the live prompt version and no last good version was cached."""


class AlertDeliveryError(PromptlabError, RuntimeError):
    """An alert sink could not deliver an alert (a webhook answered an error or could not be reached)."""


class NotebookFailed(PromptlabError):
    """A notebook did not run to the end: names the notebook, the cell (1-based, as in the file, with its
    first source line) and the error, on one line.

    Attributes:
        notebook: the notebook's path.
        cell: the failing cell's 1-based position in the notebook file (None: the failure was not in a cell).
        error: the error as ``Name: message``.
    """

    def __init__(self, notebook: Any, cell: int | None, source_line: str, error: str):
        self.notebook, self.cell, self.error = notebook, cell, error
        where = f"cell {cell} ({source_line!r})" if cell is not None else source_line
        super().__init__(f"notebook {str(notebook)!r} failed at {where}: {error}")
