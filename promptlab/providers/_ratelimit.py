"""Rate-limit aware scheduling: one `RateLimiter` per (provider, endpoint, model), shared by the whole process.

Hosted APIs limit requests and tokens per minute with token buckets: a bucket holds up to one minute's allowance
and refills continuously. A fixed concurrency either stays below that rate or runs into 429s and loops on them.
The limiter keeps a local model of both buckets and admits a call only when both have room:

* **limits**: declared (``RateLimits(rpm=..., tpm=...)``, given to the provider) or learned from the
  rate-limit headers of the responses (`_ratelimit_headers`). A declared limit is never exceeded even when the
  server would allow more (a key shared with another application).
* **reservation**: before a call, its tokens are estimated (input: characters / 4 plus 4 per message, scaled by
  what earlier calls really used; output: the most any recent answer used, at most ``max_tokens``) and taken
  from the token bucket; after it, the estimate is settled against the usage the response reports.
* **headers**: each response's ``remaining`` counts correct the local buckets (never upwards past a declared
  limit): what the server had left when it admitted the call, plus the refill since, minus what was sent after.
* **AIMD window**: a cap on calls in flight, unlimited until a 529/503, or sustained 429s the headers do not
  explain (no rate-limit headers, or room left in both buckets: at least a quarter of the last 40 answers, and
  3 or more — a server refusing 10% of calls at random is retried call by call, not throttled), arrive; then it
  halves (once per round: answers to calls
  sent before the last cut do not cut again) and grows back by one per window of successful calls. It is what
  keeps a server that sends no rate-limit headers from being hammered. A 429 whose headers show an empty bucket
  does not cut it: the synced bucket already paces the calls, and a cut would only idle below the limit.

The limiter sits inside the providers (`SDKProvider` acquires before sending and settles after), so the batch
runner and the production client share it without knowing; the runner's own concurrency stays the outer cap.
State is guarded by a thread lock and the waiting is per event loop, so a limiter may serve several loops
(``run_sync`` in a worker thread, Jupyter) at once.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ..errors import ArgumentError
from ._base import Request
from ._ratelimit_headers import LimitState, RateLimitHeaders, read_rate_limit_headers

CHARS_PER_TOKEN = 4  # the documented rule of thumb, also evaluation._cost's for models without a tokenizer (one owner)
MESSAGE_OVERHEAD_TOKENS = 4
_RECENT = 32  # answers remembered for the output estimate and the input calibration
_NO_WINDOW = 1_000_000.0  # "no cap yet": the runner's concurrency is the only limit until the first 429
# A 429 the headers do not explain cuts the window only when refusals are sustained: at least this share of the
# last _OUTCOMES answers, and at least _MIN_REFUSED of them. A server refusing at random (a flaky proxy, a fake
# with fault_rates) is retried call by call; a rate limit hit without headers refuses most calls, and is cut.
_OUTCOMES = 40
_CUT_SHARE = 0.25
_MIN_REFUSED = 3


@dataclass(frozen=True)
class RateLimits:
    """Declared limits of one model on one endpoint (your account's tier), per minute.

    Attributes:
        rpm: requests per minute, or None (unknown: learned from the response headers, if any).
        tpm: tokens (input + output) per minute, or None.
        max_in_flight: a fixed cap on calls in flight (None: only the runner's concurrency and the AIMD window).
    """

    rpm: float | None = None
    tpm: float | None = None
    max_in_flight: int | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or not math.isfinite(value) or value <= 0):
                raise ArgumentError(f"RateLimits {name} must be a positive number per minute or None, got "
                                    f"{value!r}. Use your account's limit, e.g. RateLimits(rpm=500, tpm=200_000).")
        cap = self.max_in_flight
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ArgumentError(f"RateLimits max_in_flight must be a whole number ≥ 1 or None, got {cap!r}.")

    @classmethod
    def coerce(cls, value: Any) -> RateLimits:
        """A `RateLimits` from itself, None (nothing declared) or a mapping ``{"rpm": ..., "tpm": ...}``."""
        if value is None:
            return cls()
        if isinstance(value, RateLimits):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"rpm", "tpm", "max_in_flight"})
            if unknown:
                raise ArgumentError(f"unknown rate limit keys {unknown!r} in {dict(value)!r}; use rpm, tpm and "
                                    "max_in_flight.")
            return cls(**value)
        raise ArgumentError(f"rate limits must be a RateLimits, a mapping with rpm/tpm, or None; got {value!r}.")


CALL_TIMEOUT: ContextVar[tuple[asyncio.Timeout, float] | None] = ContextVar("promptlab_call_timeout", default=None)
"""The timeout the batch runner put around the current call, with its length in seconds (None outside a run)."""


def hold_call_timeout() -> None:
    """Stop the current call's timeout while the limiter makes it wait (`restart_call_timeout` starts it again), so
    a run queued behind its rate limits does not see its calls time out before they are sent."""
    current = CALL_TIMEOUT.get()
    if current is not None:
        current[0].reschedule(None)


def restart_call_timeout() -> None:
    """Give the current call its whole timeout, from now: the limiter has admitted it."""
    current = CALL_TIMEOUT.get()
    if current is not None:
        timeout, seconds = current
        timeout.reschedule(asyncio.get_running_loop().time() + seconds)


def estimate_input_tokens(request: Request) -> int:
    """A request's input tokens before sending: characters / 4 per text plus 4 per message for framing."""
    chars = len(request.system) + sum(len(m.content) for m in request.messages)
    return math.ceil(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS * (len(request.messages) + 1)


class _Bucket:
    """A token bucket: ``capacity`` per minute, refilled continuously, starting full."""

    __slots__ = ("capacity", "declared", "level", "rate", "updated")

    def __init__(self, per_minute: float, now: float, *, declared: bool, level: float | None = None):
        self.capacity = float(per_minute)
        self.rate = self.capacity / 60.0
        self.level = self.capacity if level is None else min(level, self.capacity)
        self.updated = now
        self.declared = declared

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def wait_s(self, amount: float) -> float:
        """Seconds until ``amount`` fits (an amount above the capacity waits for a full bucket)."""
        missing = min(amount, self.capacity) - self.level
        return 0.0 if missing <= 0 else missing / self.rate


class Ticket:
    """One admitted call: what it reserved and where it stood in the sending order."""

    __slots__ = ("max_tokens", "reserved", "sent_at", "sent_before", "seq", "tokens_before", "input_estimate")

    def __init__(self, seq: int, reserved: float, sent_at: float, sent_tokens: float, input_estimate: int,
                 max_tokens: int):
        self.seq = seq
        self.reserved = reserved
        self.sent_at = sent_at
        self.tokens_before = sent_tokens  # tokens reserved by every call sent before this one
        self.input_estimate = input_estimate
        self.max_tokens = max_tokens


class RateLimiter:
    """The limiter of one (provider, endpoint, model); get it with `limiter_for`, not by building one.

    Args:
        key: what it limits, for messages and `stats`.
        limits: the declared limits (None: learn them from headers).
        clock: a monotonic clock (tests pass a fake one).
    """

    def __init__(self, key: tuple[str, ...], limits: RateLimits | None = None, *, clock=time.monotonic):
        self.key = key
        self.limits = limits or RateLimits()
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._requests = _Bucket(self.limits.rpm, now, declared=True) if self.limits.rpm else None
        self._tokens = _Bucket(self.limits.tpm, now, declared=True) if self.limits.tpm else None
        self.window = float(self.limits.max_in_flight or _NO_WINDOW)
        self.in_flight = 0
        self._seq = 0  # calls admitted so far
        self._sent_tokens = 0.0  # tokens reserved so far, over every call
        self._cut_seq = -1  # calls admitted before this number do not cut the window again
        self._outputs: deque[int] = deque(maxlen=_RECENT)
        self._refusals: deque[bool] = deque(maxlen=_OUTCOMES)  # recent answers: True for an unexplained 429
        self._input_ratios: deque[float] = deque(maxlen=_RECENT)
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[asyncio.Lock, asyncio.Event]] = \
            weakref.WeakKeyDictionary()
        self._window_waiters = 0  # callers waiting for a place in the window (ending calls wake them)
        self.counts = {"admitted": 0, "waited": 0, "rate_limited": 0, "overloaded": 0, "window_cuts": 0}
        self.waited_s = 0.0

    def declare(self, limits: RateLimits) -> None:
        """Replace the declared limits (the buckets keep what they hold, up to the new sizes)."""
        with self._lock:
            now = self._clock()
            self.limits = limits
            self._requests = self._redeclared(self._requests, limits.rpm, now)
            self._tokens = self._redeclared(self._tokens, limits.tpm, now)
            if limits.max_in_flight is not None:
                self.window = min(self.window, float(limits.max_in_flight))

    @staticmethod
    def _redeclared(bucket: _Bucket | None, per_minute: float | None, now: float) -> _Bucket | None:
        if per_minute is None:
            return bucket if bucket is not None and not bucket.declared else None
        level = None
        if bucket is not None:
            bucket.refill(now)
            level = bucket.level
        return _Bucket(per_minute, now, declared=True, level=level)

    def __repr__(self) -> str:
        return f"RateLimiter({'/'.join(self.key)}, {self.limits}, window={self.window_text()})"

    def window_text(self) -> str:
        """The AIMD window, or ``"open"`` before the first cut."""
        return "open" if self.window >= _NO_WINDOW else f"{self.window:.1f}"

    # -- admission -----------------------------------------------------------------------------------------

    def estimate(self, request: Request) -> tuple[int, float]:
        """(input estimate, tokens to reserve) for a request: input scaled by what earlier calls used, output
        the most a recent answer used (at most ``max_tokens``; ``max_tokens`` before any answer)."""
        input_estimate = estimate_input_tokens(request)
        with self._lock:
            ratio = max(self._input_ratios) if self._input_ratios else 1.0
            output = min(request.max_tokens, max(self._outputs)) if self._outputs else request.max_tokens
        return input_estimate, input_estimate * ratio + output

    async def acquire(self, request: Request) -> Ticket:
        """Wait until the buckets and the window have room for the call, then reserve it. Calls of one event
        loop are admitted first come, first served."""
        input_estimate, tokens = self.estimate(request)
        lock, freed = self._gate()
        if not lock.locked():  # the fast path: nobody waits, so nothing is awaited
            ticket = self._try_admit(tokens, input_estimate, request.max_tokens)
            if isinstance(ticket, Ticket):
                return ticket
            if ticket is None:  # not waiting yet: the slow path counts it again
                with self._lock:
                    self._window_waiters -= 1
        started = self._clock()
        hold_call_timeout()  # waiting in line is not the call being slow: its clock starts at admission
        async with lock:
            while True:
                ticket = self._try_admit(tokens, input_estimate, request.max_tokens)
                if isinstance(ticket, Ticket):
                    with self._lock:
                        self.counts["waited"] += 1
                        self.waited_s += self._clock() - started
                    restart_call_timeout()
                    return ticket
                if ticket is None:  # the window is full: wait for a call to end
                    freed.clear()  # (a call ending in another thread sets it only after this, on this loop)
                    try:
                        await freed.wait()
                    finally:
                        with self._lock:
                            self._window_waiters -= 1
                else:
                    await asyncio.sleep(ticket)

    def _gate(self) -> tuple[asyncio.Lock, asyncio.Event]:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            with self._lock:
                gate = self._gates.setdefault(loop, (asyncio.Lock(), asyncio.Event()))
        return gate

    def _try_admit(self, tokens: float, input_estimate: int, max_tokens: int) -> Ticket | float | None:
        """A ticket; else the seconds to wait for the buckets; else None (the window is full)."""
        with self._lock:
            if self.in_flight >= max(1, int(self.window)):
                self._window_waiters += 1  # counted under the lock: a call ending now will wake this caller
                return None
            now = self._clock()
            wait = 0.0
            for bucket, amount in ((self._requests, 1.0), (self._tokens, tokens)):
                if bucket is not None:
                    bucket.refill(now)
                    wait = max(wait, bucket.wait_s(amount))
            if wait > 0:
                return max(wait, 0.001)
            if self._requests is not None:
                self._requests.level -= 1.0
            if self._tokens is not None:
                self._tokens.level -= tokens
            ticket = Ticket(self._seq, tokens, now, self._sent_tokens, input_estimate, max_tokens)
            self._seq += 1
            self._sent_tokens += tokens
            self.in_flight += 1
            self.counts["admitted"] += 1
            return ticket

    # -- settlement ----------------------------------------------------------------------------------------

    def settle(self, ticket: Ticket, *, headers: Mapping[str, str] | None = None,
               input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        """The call answered: return the unused part of the reservation, learn from the usage and the headers,
        and widen the window."""
        limits = read_rate_limit_headers(headers)
        with self._lock:
            self.in_flight -= 1
            if input_tokens is not None and output_tokens is not None:
                self._give_back(ticket.reserved - (input_tokens + output_tokens))
                self._outputs.append(output_tokens)
                if ticket.input_estimate > 0:
                    self._input_ratios.append(input_tokens / ticket.input_estimate)
            self._apply_headers(ticket, limits)
            self._refusals.append(False)
            if self.window < _NO_WINDOW:
                cap = self.limits.max_in_flight or _NO_WINDOW
                self.window = min(cap, self.window + 1.0 / self.window)  # additive increase: +1 per window
        self._wake()

    def fail(self, ticket: Ticket, *, error_type: str | None, status: int | None = None,
             headers: Mapping[str, str] | None = None) -> None:
        """The call failed. A rejection the server answered (any HTTP status) used no tokens: they are given back.
        A 429 or an overload (529, 503) cuts the window in half, once per round."""
        limits = read_rate_limit_headers(headers)
        with self._lock:
            self.in_flight -= 1
            if status is not None:
                self._give_back(ticket.reserved)
                if self._requests is not None and status == 429:
                    self._requests.level += 1.0  # the server did not count a rejected request either
            self._apply_headers(ticket, limits)
            limited = error_type == "rate_limit" or status == 429
            overloaded = error_type == "overloaded" or status in (503, 529)
            if limited or overloaded:
                self.counts["rate_limited" if limited else "overloaded"] += 1
                if limited and limits.empty and self._requests is not None:
                    self._requests.level = min(self._requests.level, 0.0)  # no headers: trust the 429 itself
                unexplained = limited and not _explained(limits, ticket)
                if unexplained:
                    self._refusals.append(True)
                if overloaded or (unexplained and self._sustained()):
                    self._cut(ticket)
        self._wake()

    def release(self, ticket: Ticket) -> None:
        """The call ended without an answer or an HTTP error (cancelled, a timeout): free its place; the tokens
        stay spent, since the server may have used them."""
        with self._lock:
            self.in_flight -= 1
        self._wake()

    def _give_back(self, tokens: float) -> None:
        if self._tokens is not None:
            self._tokens.level = min(self._tokens.capacity, self._tokens.level + tokens)

    def _sustained(self) -> bool:
        """Whether recent answers were refused often enough to be a limit, not chance."""
        refused = sum(self._refusals)
        return refused >= _MIN_REFUSED and refused >= _CUT_SHARE * len(self._refusals)

    def _cut(self, ticket: Ticket) -> None:
        """Multiplicative decrease, at most once per round (calls sent before the last cut do not count)."""
        if ticket.seq < self._cut_seq:
            return
        current = min(self.window, float(self.in_flight + 1))
        self.window = max(1.0, current / 2)
        self._cut_seq = self._seq
        self.counts["window_cuts"] += 1

    def _apply_headers(self, ticket: Ticket, limits: RateLimitHeaders) -> None:
        """Correct the local buckets with the server's ``remaining`` counts (learning the limits if undeclared).

        The server counted ``remaining`` when it admitted this call (≈ when it was sent); since then the bucket
        refilled, and the calls sent after this one were (or will be) taken from it."""
        if limits.empty:
            return
        now = self._clock()
        self._requests = self._synced(self._requests, limits.requests, now,
                                      after=self._seq - ticket.seq - 1, ticket=ticket)
        self._tokens = self._synced(self._tokens, limits.tokens, now,
                                    after=self._sent_tokens - ticket.tokens_before - ticket.reserved, ticket=ticket)

    def _synced(self, bucket: _Bucket | None, state: LimitState, now: float, *, after: float,
                ticket: Ticket) -> _Bucket | None:
        if state.remaining is None:
            return bucket
        if bucket is None:
            if not state.limit:
                return bucket
            bucket = _Bucket(state.limit, now, declared=False, level=state.limit)
        elif not bucket.declared and state.limit and state.limit != bucket.capacity:
            bucket.capacity, bucket.rate = float(state.limit), state.limit / 60.0  # the tier changed
        bucket.refill(now)
        server_now = state.remaining + (now - ticket.sent_at) * bucket.rate - after
        bucket.level = min(bucket.level, server_now)
        return bucket

    def _wake(self) -> None:
        """Tell each loop's head-of-line waiter that a place in the window is free."""
        if not self._window_waiters:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        with self._lock:
            gates = list(self._gates.items())
        for loop, (_, freed) in gates:
            if loop is running:
                freed.set()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(freed.set)

    # -- reading -------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """What the limiter knows and did: limits (declared or learned), bucket levels, window, counts."""
        with self._lock:
            now = self._clock()
            out: dict[str, Any] = {"key": "/".join(self.key), "window": self.window_text(),
                                   "in_flight": self.in_flight, "waited_s": round(self.waited_s, 3),
                                   **self.counts}
            for name, bucket in (("rpm", self._requests), ("tpm", self._tokens)):
                if bucket is not None:
                    bucket.refill(now)
                out[name] = None if bucket is None else bucket.capacity
                out[f"{name}_source"] = None if bucket is None else ("declared" if bucket.declared else "headers")
                out[f"{name}_level"] = None if bucket is None else round(bucket.level, 1)
            return out


def _explained(limits: RateLimitHeaders, ticket: Ticket) -> bool:
    """Whether a 429's headers show an empty bucket: the buckets, now synced, pace the calls, and cutting the
    window too would only idle below the limit. A 429 they do not explain (no headers, room left) cuts it."""
    requests, tokens = limits.requests.remaining, limits.tokens.remaining
    return (requests is not None and requests < 1) or (tokens is not None and tokens < ticket.reserved)


# -- the process-wide registry ----------------------------------------------------------------------------------

_LIMITERS: dict[tuple[str, ...], RateLimiter] = {}
_REGISTRY_LOCK = threading.Lock()


def limiter_for(provider: str, endpoint: str, model: str, limits: RateLimits | None = None) -> RateLimiter:
    """The one limiter of (provider, endpoint, model) in this process, made on first use.

    Two provider objects for the same endpoint and model share it (one account, one budget). Limits declared
    later replace the earlier declaration (`RateLimiter.declare`); None declares nothing and keeps what is there."""
    key = (provider, endpoint, model)
    with _REGISTRY_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = RateLimiter(key, limits)
        elif limits is not None and limits != RateLimits() and limits != limiter.limits:
            limiter.declare(limits)
        return limiter


def limiter_stats() -> list[dict[str, Any]]:
    """`RateLimiter.stats` of every limiter in the process."""
    with _REGISTRY_LOCK:
        limiters = list(_LIMITERS.values())
    return [limiter.stats() for limiter in limiters]


def reset_limiters() -> None:
    """Forget every limiter (tests; a new account tier). Calls in flight finish on the limiter they hold."""
    with _REGISTRY_LOCK:
        _LIMITERS.clear()


__all__ = ["RateLimiter", "RateLimits", "Ticket", "estimate_input_tokens", "limiter_for", "limiter_stats",
           "reset_limiters"]
