"""One model call with a timeout and retries: the mechanism the runner and the production client share.

Retryable errors (rate limits, overloads, 5xx, timeouts, dropped connections — `ProviderError.retryable`)
are tried again after exponential backoff with full jitter, never sooner than the server's Retry-After;
client errors (400/401/403/404) are not. A configuration problem (`PromptlabError` other than
`ProviderError`: a missing key or extra) propagates; any other exception from a provider is recorded as an
``exception`` error, so a provider bug never sinks a run or an application.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from ..errors import PromptlabError, ProviderError
from ..providers._base import Completion, Provider, Request
from ..providers._ratelimit import CALL_TIMEOUT


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one model.

    Attributes:
        retries: extra attempts after the first, for retryable errors.
        timeout_s: seconds before an attempt is abandoned as ``timeout``.
        backoff_s: base of the backoff: attempt k waits up to ``backoff_s · 2^(k−1)`` (full jitter).
        max_backoff_s: the longest backoff between attempts.
        wait: False removes every wait (tests).
        give_up_after_s: a Retry-After longer than this ends the attempts (to move on to a fallback); None
            waits as long as the server asks.
    """

    retries: int = 4
    timeout_s: float = 60.0
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    wait: bool = True
    give_up_after_s: float | None = None

    def delay(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``; None to stop trying this model."""
        if self.give_up_after_s is not None and retry_after_s is not None and retry_after_s > self.give_up_after_s:
            return None
        if not self.wait:
            return 0.0
        backoff = rng.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))
        return max(backoff, retry_after_s or 0.0)


@dataclass
class CallOutcome:
    """The answer (or None) after every attempt, how many calls were made, and each failure."""

    completion: Completion | None
    attempts: int
    errors: list[ProviderError] = field(default_factory=list)
    crashed: str | None = None  # the class name of an unexpected exception the provider raised

    @property
    def last_error(self) -> ProviderError | None:
        """The failure that ended the attempts (None when the call succeeded first time)."""
        return self.errors[-1] if self.errors else None


def as_provider_error(exc: Exception, timeout_s: float) -> ProviderError:
    """A `ProviderError` as it is; a timeout as a retryable ``timeout`` error that says how to fix it."""
    if isinstance(exc, ProviderError):
        return exc
    return ProviderError(f"no answer within {timeout_s} s (timeout_s={timeout_s}); raise timeout_s if the model "
                         "is slow", error_type="timeout", retryable=True)


async def call_with_retries(provider: Provider, request: Request, policy: RetryPolicy,
                            rng: random.Random) -> CallOutcome:
    """Call ``provider`` until it answers, the error is not retryable, or the attempts run out."""
    outcome = CallOutcome(None, 0)
    for attempt in range(1, policy.retries + 2):
        outcome.attempts = attempt
        try:
            async with asyncio.timeout(policy.timeout_s) as timeout:  # no extra task per call, unlike wait_for
                # a rate limiter that makes the call wait restarts this clock when it admits the call
                token = CALL_TIMEOUT.set((timeout, policy.timeout_s))
                try:
                    outcome.completion = await provider.complete(request)
                finally:
                    CALL_TIMEOUT.reset(token)
            return outcome
        except (ProviderError, TimeoutError) as exc:
            error = as_provider_error(exc, policy.timeout_s)
            outcome.errors.append(error)
            delay = policy.delay(attempt, error.retry_after_s, rng)
            if not error.retryable or attempt > policy.retries or delay is None:
                return outcome
            await asyncio.sleep(delay)
        except PromptlabError:
            raise  # a configuration problem (missing key, extra not installed): fail loudly
        except Exception as exc:  # a provider bug: recorded, never raised
            outcome.crashed = type(exc).__name__
            outcome.errors.append(ProviderError(f"{outcome.crashed}: {exc}", error_type="exception"))
            return outcome
    return outcome
