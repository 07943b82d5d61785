"""Reading the rate-limit headers hosted APIs send on every response, 429s included, into one shape.

Two dialects:

* OpenAI (and OpenAI-compatible gateways): ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``,
  ``x-ratelimit-reset-requests`` and the same three for ``-tokens``. Resets are relative durations in Go's
  spelling (``"6m0s"``, ``"1s"``, ``"12ms"``, ``"1.5s"``): the time until the bucket is full again.
* Anthropic: ``anthropic-ratelimit-requests-limit`` / ``-remaining`` / ``-reset`` and the same for
  ``-tokens`` (the most restrictive of the token limits), ``-input-tokens`` and ``-output-tokens``. Resets are
  absolute RFC 3339 times.

A value that is missing, unparsable or negative (Azure sends ``-1`` for "not reported") is None: unknown, never 0.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class LimitState:
    """One limit as a response reported it: its size per minute, what is left, seconds until full again."""

    limit: float | None = None
    remaining: float | None = None
    reset_s: float | None = None


@dataclass(frozen=True)
class RateLimitHeaders:
    """The request and token limits a response reported (either may be empty)."""

    requests: LimitState = LimitState()
    tokens: LimitState = LimitState()

    @property
    def empty(self) -> bool:
        """True when the response carried no rate-limit header at all."""
        return self.requests == LimitState() and self.tokens == LimitState()


def go_duration_seconds(text: str) -> float | None:
    """Seconds in a Go duration (``"6m0s"`` → 360.0, ``"12ms"`` → 0.012); a bare number is seconds; None when
    the text is neither."""
    text = text.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    parts = _GO_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _GO_UNIT_S[unit] for number, unit in parts)


def go_duration_text(seconds: float) -> str:
    """A duration in Go's spelling, as OpenAI writes resets: ``"250ms"``, ``"1.5s"``, ``"6m0s"``."""
    if seconds < 1:
        return f"{max(round(seconds * 1000), 0)}ms"
    minutes, rest = divmod(seconds, 60)
    rest_text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{rest_text}" if minutes else rest_text


def _number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number >= 0 else None


def _rfc3339_seconds_from_now(value: str | None, now: float) -> float | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return max(moment.timestamp() - now, 0.0)


def _openai_state(headers: Mapping[str, str], kind: str) -> LimitState:
    reset = headers.get(f"x-ratelimit-reset-{kind}")
    return LimitState(_number(headers, f"x-ratelimit-limit-{kind}"), _number(headers, f"x-ratelimit-remaining-{kind}"),
                      go_duration_seconds(reset) if reset else None)


def _anthropic_state(headers: Mapping[str, str], kind: str, now: float) -> LimitState:
    prefix = f"anthropic-ratelimit-{kind}"
    return LimitState(_number(headers, f"{prefix}-limit"), _number(headers, f"{prefix}-remaining"),
                      _rfc3339_seconds_from_now(headers.get(f"{prefix}-reset"), now))


def read_rate_limit_headers(headers: Mapping[str, str] | None, *, now: float | None = None) -> RateLimitHeaders:
    """The limits in a response's headers (either dialect; a mapping with case-insensitive lookup, as httpx's
    ``Headers`` is, or lower-case names). ``now`` is the wall clock (``time.time()``) that RFC 3339 resets are
    measured from."""
    if not headers:
        return RateLimitHeaders()
    if "x-ratelimit-limit-requests" in headers or "x-ratelimit-remaining-requests" in headers \
            or "x-ratelimit-remaining-tokens" in headers:
        return RateLimitHeaders(_openai_state(headers, "requests"), _openai_state(headers, "tokens"))
    if "anthropic-ratelimit-requests-remaining" in headers or "anthropic-ratelimit-tokens-remaining" in headers:
        now = time.time() if now is None else now
        return RateLimitHeaders(_anthropic_state(headers, "requests", now), _anthropic_state(headers, "tokens", now))
    return RateLimitHeaders()


__all__ = ["LimitState", "RateLimitHeaders", "go_duration_seconds", "go_duration_text", "read_rate_limit_headers"]
