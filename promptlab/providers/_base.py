"""The provider extension point: one abstract method, `async complete(Request) -> Completion`.

`Request` is provider-neutral (system text, alternating user/assistant turns, parameters); each provider maps
it to its wire format. `Completion` carries what every row of the results needs: the text, token counts
(None when the provider did not report them), latency, the model that actually answered, the finish reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit


@dataclass(frozen=True)
class Message:
    """One chat turn."""

    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True)
class Request:
    """A provider-neutral model request, built by `Prompt.render`."""

    model: str
    system: str
    messages: tuple[Message, ...]
    temperature: float = 0.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        """A stable SHA-256 of everything that defines the call (used as the cache key's core)."""
        # Built by hand rather than with dataclasses.asdict (5x faster); the JSON, and so the key, is the same.
        fields = {"max_tokens": self.max_tokens, "messages": [{"content": m.content, "role": m.role}
                                                               for m in self.messages],
                  "model": self.model, "stop": list(self.stop), "system": self.system,
                  "temperature": self.temperature}
        canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def prefix_key(self) -> tuple[str, tuple[Message, ...]]:
        """What consecutive calls must share for a prefix cache to help: system and few-shot turns."""
        return self.system, self.messages[:-1]


@dataclass(frozen=True)
class Completion:
    """A model's answer and the facts about the call."""

    text: str
    input_tokens: int | None
    output_tokens: int | None
    latency_s: float
    model: str  # the model id that actually answered, as the provider reports it
    finish_reason: str | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)


class Provider(ABC):
    """A source of completions. Subclasses implement `complete`; the rest are hooks with defaults.

    Attributes:
        name: the provider prefix of model ids (``local``, ``fake``, ``openai``, ``anthropic``).
        max_concurrency: how many calls the runner keeps in flight against this provider.
    """

    name: str = "provider"
    max_concurrency: int = 8

    @abstractmethod
    async def complete(self, request: Request) -> Completion:
        """Answer one request, or raise `ProviderError` with an ``error_type``."""

    def model_id(self, model: str) -> str:
        """The full ``provider:model`` id for a bare model name."""
        return f"{self.name}:{model}"

    def cache_identity(self) -> dict[str, Any]:
        """What, besides the request, decides this provider's answers: the response cache keys on it, so
        two providers with different identities never share a cached answer.

        The default is the provider's name and class. Subclasses add their endpoint and every option that
        changes answers (an API version, a header that selects a deployment) — and never a secret: the
        identity is hashed into cache keys and the endpoint is stored beside each entry.
        """
        cls = type(self)
        return {"provider": self.name, "class": f"{cls.__module__}.{cls.__qualname__}"}

    async def aclose(self) -> None:  # noqa: B027 - a hook with a default, not an abstract method
        """Release connections; the default holds none."""


_DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters that carry credentials (Azure-style ``?api-key=``, signed URLs): left out of identities.
_SECRET_PARAM = re.compile(r"key|token|secret|sig|password|passwd|auth|credential", re.IGNORECASE)


def normalise_endpoint(url: str) -> str:
    """One spelling per endpoint, with no credentials in it: scheme and host lower-cased, the default port,
    a trailing slash, the fragment, ``user:password@`` and secret-looking query parameters dropped; the
    remaining query parameters (``api-version=...`` changes answers) sorted.

    ``"HTTP://User:pw@LocalHost:80/v1/"`` → ``"http://localhost/v1"``.
    """
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None  # a malformed port is left to the HTTP client to refuse; the identity just omits it
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _SECRET_PARAM.search(k))
    endpoint = f"{scheme}://{host}{parts.path.rstrip('/')}"
    return endpoint + (f"?{urlencode(query)}" if query else "")
