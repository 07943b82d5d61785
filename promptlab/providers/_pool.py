"""`ServerPool`: several OpenAI-compatible servers (vLLM, llama.cpp server, SGLang, LiteLLM — one per GPU box)
serving one model, used as one provider.

* **Spreading**: each call goes to the healthy server with the fewest calls outstanding (ties rotate), so a
  slow or busy server gets less work without any weights to tune.
* **Ejection**: a server that fails (connection refused or dropped, timeout, 5xx, 529, a malformed answer) is
  taken out for ``eject_s`` seconds, doubling on each failure in a row up to ``max_eject_s``; the call moves
  on to another server at once. When its time is up the server is back on probation: one call at a time until
  one succeeds. When every server is out, the one due back first is tried (so the pool never refuses outright).
* **429s** move the call to another server without ejecting anything: each server has its own rate limiter
  (`_ratelimit`, keyed by its endpoint), which paces it.
* **served_by**: every `Completion` names the server that answered (its normalised base URL); the runner
  keeps it in the row.

Errors that are not the server's fault (400, 401, 404) are raised as they are: another server would say the same.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..errors import ArgumentError, ProviderError
from ._base import Completion, Provider, Request, normalise_endpoint
from ._openai import OpenAIProvider

# failures that say "this server is unwell": eject it and try another
_SERVER_FAILURES = frozenset({"connection", "timeout", "server", "overloaded", "bad_response"})
_MOVE_ON = _SERVER_FAILURES | {"rate_limit"}  # failures another server may not have


class _Member:
    """One server of the pool and its health."""

    __slots__ = ("consecutive_failures", "ejected_until", "endpoint", "failures", "index", "outstanding",
                 "probation", "provider", "served")

    def __init__(self, index: int, provider: OpenAIProvider):
        self.index = index
        self.provider = provider
        self.endpoint = normalise_endpoint(provider.base_url)
        self.outstanding = 0
        self.served = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.ejected_until = 0.0
        self.probation = False

    def state(self, now: float) -> str:
        if self.ejected_until > now:
            return "ejected"
        return "probation" if self.probation else "healthy"


class ServerPool(Provider):
    """OpenAI-compatible servers serving the same model, as one provider.

    Args:
        base_urls: each server's OpenAI base URL, e.g. ``["http://gpu1:8000/v1", "http://gpu2:8000/v1"]``.
        model: the model name the servers serve (sent in each request when the pool itself is the run's model).
        name: the provider name: model ids read ``<name>:<model>``.
        api_key: sent to every server (vLLM's ``--api-key``); None reads ``OPENAI_API_KEY``, and a server on
            this machine needs none.
        timeout_s: seconds before a call to one server is abandoned (and the server counted as failing).
        max_concurrency_per_server: calls kept in flight per server; the pool's ``max_concurrency`` is the sum.
        rate_limits: per-server limits (see `OpenAIProvider`), each server keeping its own limiter.
        eject_s: how long a failing server first stays out; doubled per failure in a row.
        max_eject_s: the longest a server stays out.
        max_tokens_param: the request field carrying ``max_tokens`` (see `OpenAIProvider`).
    """

    def __init__(self, base_urls: Sequence[str], *, model: str = "default", name: str = "pool",
                 api_key: str | None = None, timeout_s: float = 60.0, max_concurrency_per_server: int = 8,
                 rate_limits: Any = None, eject_s: float = 5.0, max_eject_s: float = 60.0,
                 max_tokens_param: str = "auto"):
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls or not all(isinstance(url, str) and url.strip() for url in urls):
            raise ArgumentError(f"ServerPool needs a list of base URLs, got {base_urls!r}. Example: "
                                "ServerPool(['http://gpu1:8000/v1', 'http://gpu2:8000/v1'], model='llama-3-8b').")
        endpoints = [normalise_endpoint(url) for url in urls]
        if len(set(endpoints)) != len(endpoints):
            raise ArgumentError(f"ServerPool base URLs must differ; {urls!r} names a server twice.")
        if not 0 < eject_s <= max_eject_s:
            raise ArgumentError(f"ServerPool needs 0 < eject_s <= max_eject_s, got eject_s={eject_s!r}, "
                                f"max_eject_s={max_eject_s!r}.")
        self.name = name
        self.model_name = model
        self.eject_s = eject_s
        self.max_eject_s = max_eject_s
        self._members = [_Member(i, OpenAIProvider(base_url=url, api_key=api_key, timeout_s=timeout_s,
                                                   max_concurrency=max_concurrency_per_server,
                                                   max_tokens_param=max_tokens_param, rate_limits=rate_limits))
                         for i, url in enumerate(urls)]
        self.max_concurrency = max_concurrency_per_server * len(urls)
        self._turn = itertools.count()
        self._lock = threading.Lock()  # members are shared by every event loop the pool serves

    def __repr__(self) -> str:
        return f"ServerPool({[m.endpoint for m in self._members]!r}, model={self.model_name!r}, name={self.name!r})"

    @property
    def endpoints(self) -> list[str]:
        """The servers' normalised base URLs, in the order given."""
        return [member.endpoint for member in self._members]

    def cache_identity(self) -> dict[str, Any]:
        """Name, class, every server's endpoint (sorted) and the ``max_tokens`` field — never the key."""
        first = self._members[0].provider
        return {**super().cache_identity(), "endpoints": sorted(self.endpoints),
                "max_tokens_param": first.max_tokens_param}

    async def complete(self, request: Request) -> Completion:
        """Answer through the least-loaded healthy server, moving on to the next when one fails.

        Raises:
            ProviderError: the last server's error when every server failed, or at once for an error another
                server would repeat (a bad request, a bad key).
        """
        tried: set[int] = set()
        last: ProviderError | None = None
        while (member := self._choose(tried)) is not None:
            tried.add(member.index)
            try:
                completion = await member.provider.complete(request)
            except ProviderError as error:
                self._failed(member, error)
                if error.error_type not in _MOVE_ON:
                    raise
                last = error
                continue
            except BaseException:  # cancelled, or a bug: the call no longer counts against the server
                self._release(member)
                raise
            self._succeeded(member)
            return replace(completion, served_by=member.endpoint)
        raise last  # every server was tried (the loop runs at least once: a pool has a server)

    def _choose(self, tried: set[int]) -> _Member | None:
        """The healthy server with the fewest calls outstanding; else the ejected one due back first."""
        now = time.monotonic()
        turn = next(self._turn)
        with self._lock:
            candidates = [m for m in self._members if m.index not in tried]
            if not candidates:
                return None
            ready = [m for m in candidates if m.ejected_until <= now and not (m.probation and m.outstanding)]
            n = len(self._members)
            if ready:
                chosen = min(ready, key=lambda m: (m.outstanding, (m.index - turn) % n))
            else:
                chosen = min(candidates, key=lambda m: m.ejected_until)
            chosen.outstanding += 1
            return chosen

    def _release(self, member: _Member) -> None:
        with self._lock:
            member.outstanding -= 1

    def _succeeded(self, member: _Member) -> None:
        with self._lock:
            member.outstanding -= 1
            member.served += 1
            member.consecutive_failures = 0
            member.probation = False

    def _failed(self, member: _Member, error: ProviderError) -> None:
        with self._lock:
            member.outstanding -= 1
            if error.error_type not in _SERVER_FAILURES:
                return
            member.failures += 1
            member.consecutive_failures += 1
            hold = min(self.max_eject_s, self.eject_s * 2 ** (member.consecutive_failures - 1))
            member.ejected_until = max(member.ejected_until, time.monotonic() + hold)
            member.probation = True

    def stats(self) -> list[dict[str, Any]]:
        """Per server: endpoint, state (healthy, ejected, probation), calls outstanding, answered and failed."""
        now = time.monotonic()
        with self._lock:
            return [{"endpoint": m.endpoint, "state": m.state(now), "outstanding": m.outstanding,
                     "served": m.served, "failures": m.failures,
                     "back_in_s": round(max(m.ejected_until - now, 0.0), 3)} for m in self._members]

    async def aclose(self) -> None:
        """Close every server's connections on this event loop."""
        for member in self._members:
            await member.provider.aclose()


__all__ = ["ServerPool"]
