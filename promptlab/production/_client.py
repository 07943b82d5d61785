"""`ProductionClient`: what an application calls to answer one input with the live prompt version.

One call does, in order:

1. **Resolve** the live version: ``registry.get("<name>@production")`` (any object with that method — the
   promptlab registry or your own). The answer is cached for ``registry_ttl_s``; when the registry fails
   (a network hiccup, a half-written file), the last good version keeps serving and `stale_serves` counts
   it. Only a registry that has never answered raises `PromptUnavailableError`.
2. **Reserve** the call's worst-case tokens on the `TokenBudget`, if one is given; past the limit the call is
   refused with `TokenBudgetExceeded` (and the refusal is logged).
3. **Call** the provider with a timeout, retrying retryable errors (rate limits, overloads, timeouts) with
   exponential backoff and full jitter, never sooner than the server's Retry-After; then fall back to the
   simpler models in ``fallbacks``, each with the same retries.
4. **Escalate** when every model failed: the answer has ``outcome="escalated"`` and ``needs_human`` set,
   rather than an exception, so the application can route the request to a person — or, when the policy
   has a ``default_output``, serve that fixed answer (outcome ``fallback``, success False).
5. **Log** one event per call (latency, tokens, cost, success, format, error type, model that answered,
   outcome, hashed unit id) to the `EventLog`.

`acomplete` is the async face; `complete` the sync one (works inside Jupyter, where a loop is running).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from ..errors import ArgumentError, PromptUnavailableError, TokenBudgetExceeded
from ..evaluation._cost import request_tokens
from ..evaluation._retry import RetryPolicy, call_with_retries
from ..providers._base import Completion, Provider, Request
from ..providers._prices import price_call
from ._budget import Reservation, TokenBudget
from ._eventlog import EventLog

logger = logging.getLogger(__name__)

ANSWERED, FALLBACK, ESCALATED, REFUSED = "answered", "fallback", "escalated", "refused"
Fallback = str | tuple[str, Provider]


@dataclass(frozen=True)
class ClientPolicy:
    """Retries, timeouts and caching of a `ProductionClient`.

    Attributes:
        retries: extra attempts per model for retryable errors (2 → up to 3 calls per model).
        timeout_s: seconds before one attempt is abandoned as a ``timeout``.
        backoff_s: base of the exponential backoff (attempt k waits up to backoff_s · 2^(k−1), full jitter).
        max_backoff_s: the longest wait between attempts (a longer Retry-After moves on to the next model).
        registry_ttl_s: how long a resolved version is reused before the registry is asked again.
        alias: the registry alias that is live (``production``).
        default_output: a fixed answer served when every model failed (``default_output`` of
            ``configs/fallbacks.yaml``), logged as outcome ``fallback`` with success False; None escalates.
    """

    retries: int = 2
    timeout_s: float = 30.0
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    registry_ttl_s: float = 60.0
    alias: str = "production"
    default_output: str | None = None


@dataclass(frozen=True)
class Answer:
    """The outcome of one production call.

    Attributes:
        text: the answer (None when escalated).
        outcome: ``answered`` (first model), ``fallback`` (a fallback model, or the policy's default output,
            answered) or ``escalated``.
        prompt: the prompt's name.
        version: the version that was used.
        model: the model that answered (None when escalated or for the default output).
        latency_s: wall time, retries and fallbacks included.
        input_tokens: tokens in, as reported.
        output_tokens: tokens out.
        cost_usd: price of the answer (None when unknown).
        attempts: provider calls made.
        errors: error types met along the way, in order.
        format_ok: whether the answer has the required format: the provider's verdict against the prompt's
            declared ``output:`` and the ``validator``'s, both when both exist (None when neither checked it,
            or without an answer). It is logged, so the monitor's ``format_failure_rate`` reads it.
        request_id: the id shared by this call's events (and its shadow's).
        parsed: the answer read against the declared ``output:`` (the label or the JSON value); None
            without one, or when the answer broke the format.
    """

    text: str | None
    outcome: str
    prompt: str
    version: str
    model: str | None
    latency_s: float
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal | None
    attempts: int
    errors: tuple[str, ...]
    format_ok: bool | None
    request_id: str
    parsed: Any = None

    @property
    def needs_human(self) -> bool:
        """True when every model failed and a person should take the request."""
        return self.outcome == ESCALATED

    @property
    def success(self) -> bool:
        """A model answered, in format when a validator checked it (a fixed default output is no success)."""
        return self.model is not None and self.text is not None and self.format_ok is not False

    def __repr__(self) -> str:
        text = "None" if self.text is None else repr(self.text[:60] + ("…" if len(self.text) > 60 else ""))
        return (f"Answer({text}, outcome={self.outcome!r}, {self.prompt}@{self.version}, model={self.model!r}, "
                f"latency_s={self.latency_s:.3f}, attempts={self.attempts})")


@dataclass(frozen=True)
class _Attempt:
    completion: Completion | None
    model_id: str | None
    attempts: int
    errors: tuple[str, ...]
    fallback: bool = False


def _bare(model: str) -> str:
    """The model name a `Request` carries: ``anthropic:claude-x`` → ``claude-x``."""
    return model.split(":", 1)[1] if ":" in model else model


class ProductionClient:
    """Answers application requests with the live prompt version: cached resolution, retries, fallbacks,
    human escalation, token budget, and one event per call.

    Args:
        registry: any object with ``get("<name>@<alias>") -> Prompt`` (e.g. ``promptlab.registry._registry.Registry``).
        prompt_name: the prompt to serve.
        provider: the `Provider` that answers (``await provider.complete(request)``).
        log: the event log every call is written to (None: no logging).
        budget: a `TokenBudget` to enforce (None: no cap).
        fallbacks: simpler models to try, in order, when the prompt's model fails: a model name (same
            provider) or a ``(model, provider)`` pair.
        validator: ``text -> bool`` checking the answer's format (e.g. valid JSON); None leaves the format to the
            prompt's declared ``output:`` (checked by the provider), or unchecked without one.
        policy: retries, timeouts, registry caching (`ClientPolicy`).
    """

    def __init__(self, registry: Any, prompt_name: str, provider: Provider, *, log: EventLog | None = None,
                 budget: TokenBudget | None = None, fallbacks: Sequence[Fallback] = (),
                 validator: Callable[[str], bool] | None = None, policy: ClientPolicy | None = None):
        self.registry, self.prompt_name, self.provider = registry, prompt_name, provider
        self.log, self.budget, self.validator = log, budget, validator
        self.fallbacks = [(f, provider) if isinstance(f, str) else (f[0], f[1]) for f in fallbacks]
        self.policy = policy or ClientPolicy()
        self.stale_serves = 0
        self._cached: Any = None
        self._fetched_at = -float("inf")
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._retry = RetryPolicy(retries=self.policy.retries, timeout_s=self.policy.timeout_s,
                                  backoff_s=self.policy.backoff_s, max_backoff_s=self.policy.max_backoff_s,
                                  give_up_after_s=self.policy.max_backoff_s)

    # ---- the live version -------------------------------------------------------------------------------
    @property
    def ref(self) -> str:
        """The registry reference resolved: ``<name>@<alias>``."""
        return f"{self.prompt_name}@{self.policy.alias}"

    def resolve(self) -> Any:
        """The live prompt: cached for ``registry_ttl_s``; the last good one when the registry fails."""
        with self._lock:
            if self._cached is not None and time.monotonic() - self._fetched_at < self.policy.registry_ttl_s:
                return self._cached
        try:
            prompt = self.registry.get(self.ref)
            if not callable(getattr(prompt, "render", None)):
                raise ArgumentError(f"registry returned {type(prompt).__name__}, not a Prompt")
        except Exception as exc:
            return self._serve_stale(exc)
        with self._lock:
            self._cached, self._fetched_at = prompt, time.monotonic()
        return prompt

    def _serve_stale(self, exc: Exception) -> Any:
        """The last good version after a registry failure; it is trusted for another ``registry_ttl_s`` so a
        registry that is down is not asked on every request."""
        with self._lock:
            cached = self._cached
            if cached is not None:
                self.stale_serves += 1
                self._fetched_at = time.monotonic()
        if cached is None:  # `from None`: the registry's own message may carry URLs or credentials
            raise PromptUnavailableError(
                f"the registry could not resolve {self.ref!r} ({type(exc).__name__}) and no version was "
                "served before. Check the registry and that the alias exists (registry.get(ref)).") from None
        # The exception's type only: registry messages may carry URLs or credentials.
        logger.warning("registry failed to resolve %s (%s); serving the last good version %s",
                       self.ref, type(exc).__name__, getattr(cached, "version", "?"))
        return cached

    # ---- calling ------------------------------------------------------------------------------------------
    async def acomplete(self, case_input: str | dict[str, Any], *, unit_id: Any = None) -> Answer:
        """Answer one input with the live version (see the module docstring for each step)."""
        return await self.acall(self.resolve(), case_input, unit_id=unit_id)

    def complete(self, case_input: str | dict[str, Any], *, unit_id: Any = None) -> Answer:
        """The sync face of `acomplete` (also inside Jupyter)."""
        from .._sync import run_sync

        return run_sync(self.acomplete(case_input, unit_id=unit_id))

    async def acall(self, prompt: Any, case_input: str | dict[str, Any], *, unit_id: Any = None,
                    experiment: str | None = None, arm: str | None = None,
                    request_id: str | None = None) -> Answer:
        """Answer with a given prompt version, logging the call under an experiment and arm (used by A/B
        tests, canaries and shadows)."""
        started = time.perf_counter()
        request = prompt.render(case_input, model=_bare(prompt.model))
        request_id = request_id or uuid.uuid4().hex
        tag = {"experiment": experiment, "arm": arm, "request_id": request_id, "unit_id": unit_id}
        reservation = self._reserve(prompt, request, tag)
        try:
            attempt = await self._chain(prompt, request)
        except BaseException:
            self._settle(reservation, 0)
            raise
        answer = self._answer(prompt, attempt, time.perf_counter() - started, request_id)
        self._settle(reservation, _tokens_used(answer))
        self._log(prompt, answer, tag)
        return answer

    def _settle(self, reservation: Reservation | None, tokens: int | None) -> None:
        if reservation is not None and self.budget is not None:
            self.budget.settle(reservation, tokens)

    def _reserve(self, prompt: Any, request: Request, tag: dict) -> Reservation | None:
        if self.budget is None:
            return None
        model_id = self.provider.model_id(request.model)
        tokens = request_tokens(model_id, request)[0] + request.max_tokens
        try:
            return self.budget.reserve(tokens)
        except TokenBudgetExceeded:
            self._log_refusal(prompt, tag)
            raise

    async def _chain(self, prompt: Any, request: Request) -> _Attempt:
        chain = [(_bare(prompt.model), self.provider), *self.fallbacks]
        attempts, errors = 0, []
        for index, (model, provider) in enumerate(chain):
            completion, used, met = await self._with_retries(provider, replace(request, model=_bare(model)))
            attempts, errors = attempts + used, errors + met
            if completion is not None:
                return _Attempt(completion, completion.model or provider.model_id(model), attempts, tuple(errors),
                                fallback=index > 0)
        return _Attempt(None, None, attempts, tuple(errors))

    async def _with_retries(self, provider: Provider, request: Request) -> tuple[Completion | None, int,
                                                                                     list[str]]:
        result = await call_with_retries(provider, request, self._retry, self._rng)
        if result.crashed is not None:
            logger.warning("provider %s raised %s", provider.name, result.crashed)
        return result.completion, result.attempts, [error.error_type for error in result.errors]

    def _answer(self, prompt: Any, attempt: _Attempt, latency_s: float, request_id: str) -> Answer:
        c = attempt.completion
        version = str(getattr(prompt, "version", ""))
        if c is None:
            default = self.policy.default_output
            return Answer(default, ESCALATED if default is None else FALLBACK, prompt.name, version, None, latency_s,
                          None, None, None, attempt.attempts, attempt.errors, None, request_id)
        format_ok = _format_verdict(c, self.validator)
        cost = price_call(attempt.model_id, c.input_tokens, c.output_tokens) if attempt.model_id else None
        outcome = FALLBACK if attempt.fallback else ANSWERED
        return Answer(c.text, outcome, prompt.name, version, attempt.model_id, latency_s, c.input_tokens,
                      c.output_tokens, cost, attempt.attempts, attempt.errors, format_ok, request_id,
                      parsed=c.parsed if getattr(c, "format_ok", None) else None)

    # ---- logging ------------------------------------------------------------------------------------------
    def _log(self, prompt: Any, answer: Answer, tag: dict) -> None:
        if self.log is None:
            return
        self.log.record(prompt.name, version=answer.version, latency_s=answer.latency_s,
                        input_tokens=answer.input_tokens, output_tokens=answer.output_tokens,
                        cost_usd=None if answer.cost_usd is None else float(answer.cost_usd),
                        success=answer.success, format_ok=answer.format_ok,
                        error_type=answer.errors[-1] if answer.model is None and answer.errors else None,
                        model=answer.model,
                        outcome=answer.outcome, **tag)

    def _log_refusal(self, prompt: Any, tag: dict) -> None:
        if self.log is not None:
            self.log.record(prompt.name, version=str(getattr(prompt, "version", "")), success=False,
                            error_type="budget_exceeded", outcome=REFUSED, latency_s=0.0, **tag)

    def __repr__(self) -> str:
        fallbacks = [m for m, _ in self.fallbacks]
        return (f"ProductionClient({self.ref!r}, provider={self.provider.name!r}, fallbacks={fallbacks!r}, "
                f"budget={'yes' if self.budget is not None else 'no'}, "
                f"log={'yes' if self.log is not None else 'no'})")


def _tokens_used(answer: Answer) -> int | None:
    """Tokens to settle a reservation with: the reported count; None (keep the reservation) when an answer
    came without a count; 0 when nothing answered."""
    if answer.model is None:
        return 0
    if answer.input_tokens is None or answer.output_tokens is None:
        return None
    return answer.input_tokens + answer.output_tokens


def _format_verdict(completion: Completion, validator: Callable[[str], bool] | None) -> bool | None:
    """The answer's format verdict: the provider's (a declared ``output:``) and the validator's, all that exist
    must pass; None when nothing checked it."""
    verdicts = [bool(v) for v in (getattr(completion, "format_ok", None),) if v is not None]
    if validator is not None:
        verdicts.append(_safe_validate(validator, completion.text))
    return all(verdicts) if verdicts else None


def _safe_validate(validator: Callable[[str], bool], text: str) -> bool:
    """A validator that raises counts as a format failure, never as a crash."""
    try:
        return bool(validator(text))
    except Exception:
        return False
