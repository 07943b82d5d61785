"""The provider extension point: one abstract method, `async complete(Request) -> Completion`.

`Request` is provider-neutral (system text, alternating user/assistant turns, parameters); each provider maps
it to its wire format. `Completion` carries what every row of the results needs: the text, token counts
(None when the provider did not report them), latency, the model that actually answered, the finish reason.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field


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

    async def aclose(self) -> None:  # noqa: B027 - a hook with a default, not an abstract method
        """Release connections; the default holds none."""
