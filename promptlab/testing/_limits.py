"""The fake server's rate limits: requests-per-minute and tokens-per-minute token buckets, the rate-limit headers
both vendors send on every response, and their 429 bodies.

Each bucket holds one minute's allowance, starts full and refills continuously (limit / 60 per second), as the
hosted APIs describe theirs. A request is admitted when the request bucket has one request left and the token
bucket holds the request's tokens — the server knows them before answering: input words plus the answer's words
(`_wire.approx_tokens`); both are then taken. A rejected request takes nothing. A request larger than the whole
token limit is always rejected, as OpenAI's "Request too large" is.

Headers (on answers and errors alike, whenever a limit is set):

* OpenAI: ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``, ``x-ratelimit-reset-requests``
  (a Go duration until the bucket is full: ``"100ms"``, ``"6m0s"``) and the same for ``-tokens``.
* Anthropic: ``anthropic-ratelimit-requests-limit`` / ``-remaining`` / ``-reset`` (RFC 3339) and ``-tokens-``.
  The fake has one token bucket (input and output together), reported as ``anthropic-ratelimit-tokens-*``.

A 429 carries ``retry-after`` (whole seconds, rounded up) — and ``retry-after-ms`` on the OpenAI wire — and the
vendor's error body: OpenAI ``{"error": {"message": "Rate limit reached for <model> ... on requests per min
(RPM): Limit 600, Used 600, Requested 1. Please try again in 100ms. ...", "type": "requests", "code":
"rate_limit_exceeded"}}``; Anthropic ``{"type": "error", "error": {"type": "rate_limit_error", "message": ...}}``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import ArgumentError
from ..providers._ratelimit_headers import go_duration_text


class TokenBucket:
    """``per_minute`` units, refilled continuously at ``per_minute / 60`` per second, starting full."""

    __slots__ = ("capacity", "level", "rate", "updated")

    def __init__(self, per_minute: float, now: float):
        self.capacity = float(per_minute)
        self.rate = self.capacity / 60.0
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        """Add what flowed in since the last look."""
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def wait_s(self, amount: float) -> float:
        """Seconds until ``amount`` fits (infinite when it never can)."""
        if amount > self.capacity:
            return math.inf
        return max(amount - self.level, 0.0) / self.rate

    def reset_s(self) -> float:
        """Seconds until the bucket is full again."""
        return (self.capacity - self.level) / self.rate


@dataclass(frozen=True)
class Verdict:
    """Whether a request was admitted; if not, which limit refused it, by how much, and when to try again."""

    admitted: bool
    limit: str | None = None  # "requests" or "tokens"
    requested: float = 0.0
    retry_after_s: float = 0.0


def check_limit(name: str, value: float | None) -> float | None:
    """A per-minute limit: a positive number or None, else `ArgumentError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ArgumentError(f"FakeLLMServer {name} must be a positive number per minute or None, got {value!r}.")
    return float(value)


class ServerLimits:
    """The request and token buckets of one fake server (thread-safe: the tests read it from their thread)."""

    def __init__(self, rpm: float | None, tpm: float | None, *, clock=time.monotonic):
        self._clock = clock
        now = clock()
        self.requests = TokenBucket(rpm, now) if rpm else None
        self.tokens = TokenBucket(tpm, now) if tpm else None
        self._lock = threading.Lock()
        self.admitted = 0
        self.rejected = 0
        self.tokens_used = 0.0

    def admit(self, tokens: float) -> Verdict:
        """Take one request and ``tokens`` tokens when both fit; else refuse and take nothing."""
        with self._lock:
            now = self._clock()
            for bucket in (self.requests, self.tokens):
                if bucket is not None:
                    bucket.refill(now)
            for name, bucket, amount in (("requests", self.requests, 1.0), ("tokens", self.tokens, tokens)):
                if bucket is not None and bucket.level < amount:
                    self.rejected += 1
                    return Verdict(False, name, amount, bucket.wait_s(amount))
            if self.requests is not None:
                self.requests.level -= 1.0
            if self.tokens is not None:
                self.tokens.level -= tokens
            self.admitted += 1
            self.tokens_used += tokens
            return Verdict(True)

    def drain(self, *, requests: float = 0.0, tokens: float = 0.0) -> None:
        """Set what the buckets hold now, as if another client had used the rest of this minute's allowance."""
        with self._lock:
            now = self._clock()
            for bucket, level in ((self.requests, requests), (self.tokens, tokens)):
                if bucket is not None:
                    bucket.refill(now)
                    bucket.level = min(float(level), bucket.capacity)

    def headers(self, wire: str) -> dict[str, str]:
        """The rate-limit headers of the vendor's wire format, as the buckets stand now."""
        with self._lock:
            now = self._clock()
            kinds = [(kind, bucket) for kind, bucket in (("requests", self.requests), ("tokens", self.tokens))
                     if bucket is not None]
            for _, bucket in kinds:
                bucket.refill(now)
            if wire == "anthropic":
                return {header: value for kind, bucket in kinds for header, value in _anthropic(kind, bucket).items()}
            return {header: value for kind, bucket in kinds for header, value in _openai(kind, bucket).items()}


def _openai(kind: str, bucket: TokenBucket) -> dict[str, str]:
    return {f"x-ratelimit-limit-{kind}": str(int(bucket.capacity)),
            f"x-ratelimit-remaining-{kind}": str(max(int(bucket.level), 0)),
            f"x-ratelimit-reset-{kind}": go_duration_text(bucket.reset_s())}


def _anthropic(kind: str, bucket: TokenBucket) -> dict[str, str]:
    reset = datetime.fromtimestamp(time.time() + bucket.reset_s(), UTC)
    return {f"anthropic-ratelimit-{kind}-limit": str(int(bucket.capacity)),
            f"anthropic-ratelimit-{kind}-remaining": str(max(int(bucket.level), 0)),
            f"anthropic-ratelimit-{kind}-reset": reset.strftime("%Y-%m-%dT%H:%M:%SZ")}


def retry_headers(wire: str, retry_after_s: float) -> dict[str, str]:
    """``retry-after`` in whole seconds (rounded up), and ``retry-after-ms`` on the OpenAI wire; none for a request
    that can never fit (waiting would not help)."""
    if not math.isfinite(retry_after_s):
        return {}
    headers = {"retry-after": str(max(math.ceil(retry_after_s), 1))}
    if wire == "openai":
        headers["retry-after-ms"] = str(max(math.ceil(retry_after_s * 1000), 1))
    return headers


def rate_limit_message(wire: str, verdict: Verdict, model: str, limits: ServerLimits) -> tuple[str, str]:
    """(error type, message) of a 429, worded as the vendor words it."""
    bucket = limits.requests if verdict.limit == "requests" else limits.tokens
    capacity = int(bucket.capacity)
    short = "RPM" if verdict.limit == "requests" else "TPM"
    if wire == "anthropic":
        unit = "requests" if verdict.limit == "requests" else "tokens"
        return "rate_limit_error", (f"This request would exceed the rate limit for your organization of {capacity:,} "
                                    f"{unit} per minute. For details, refer to: "
                                    "https://docs.claude.com/en/api/rate-limits.")
    if math.isinf(verdict.retry_after_s):
        return "tokens", (f"Request too large for {model} in organization org-fake on tokens per min (TPM): Limit "
                          f"{capacity}, Requested {int(verdict.requested)}. The input or output tokens must be reduced "
                          "in order to run successfully.")
    used = capacity - max(int(bucket.level), 0)
    return verdict.limit, (f"Rate limit reached for {model} in organization org-fake on {verdict.limit} per min "
                           f"({short}): Limit {capacity}, Used {used}, Requested {int(verdict.requested)}. Please try "
                           f"again in {go_duration_text(verdict.retry_after_s)}. Visit "
                           "https://platform.openai.com/account/rate-limits to learn more.")


__all__ = ["ServerLimits", "TokenBucket", "Verdict", "check_limit", "rate_limit_message", "retry_headers"]
