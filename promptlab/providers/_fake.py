"""`FakeProvider`: scripted answers for unit tests and examples, no network, no model.

Answers come from a mapping (last user message → text), a function of the request, or a fixed text.
Faults are scripted too: a mapping value that is an exception instance is raised instead of answering.
Token counts are whitespace word counts — a documented stand-in, since there is no real tokenizer here.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ProviderError
from ._base import Completion, Provider, Request

Answer = str | BaseException
Script = Mapping[str, Answer] | Callable[[Request], Answer] | str


class FakeProvider(Provider):
    """A provider that answers from a script.

    Args:
        script: a mapping from the rendered last user message to the answer (or an exception to raise),
            a callable ``request -> answer``, or one text for every request.
        default: the answer for messages the mapping lacks; None makes them a ``not_scripted`` failure.
        latency_s: simulated latency per call (awaited, so concurrency is real).
        model_name: the model id reported as having answered.
    """

    name = "fake"
    max_concurrency = 64

    def __init__(self, script: Script = "ok", *, default: str | None = None, latency_s: float = 0.0,
                 model_name: str = "fake-model"):
        self.script = script
        self.default = default
        self.latency_s = latency_s
        self.model_name = model_name
        self.calls: list[Request] = []

    def cache_identity(self) -> dict[str, Any]:
        """The script decides the answers, so it is part of the identity: a mapping or text by its content,
        a callable by its qualified name (two different lambdas share one: pass ``cache=False`` or give
        them names when that matters)."""
        if callable(self.script):
            script = f"{getattr(self.script, '__module__', '')}.{getattr(self.script, '__qualname__', '')}"
        elif isinstance(self.script, Mapping):
            script = repr(sorted((str(k), repr(v)) for k, v in self.script.items()))
        else:
            script = repr(self.script)
        digest = hashlib.sha256(f"{script}\0{self.default!r}".encode()).hexdigest()[:16]
        return {**super().cache_identity(), "model_name": self.model_name, "script": digest}

    def _answer(self, request: Request) -> Answer:
        if callable(self.script):
            return self.script(request)
        if isinstance(self.script, str):
            return self.script
        prompt_text = request.messages[-1].content
        if prompt_text in self.script:
            return self.script[prompt_text]
        if self.default is not None:
            return self.default
        return ProviderError(f"FakeProvider has no scripted answer for {prompt_text!r}. Add it to the script "
                             "or pass default=...", error_type="not_scripted")

    async def complete(self, request: Request) -> Completion:
        """Return the scripted answer after the simulated latency, or raise the scripted exception."""
        self.calls.append(request)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        answer = self._answer(request)
        if isinstance(answer, BaseException):
            raise answer
        prompt_words = len(request.system.split()) + sum(len(m.content.split()) for m in request.messages)
        return Completion(text=answer, input_tokens=prompt_words, output_tokens=len(answer.split()),
                          latency_s=self.latency_s, model=self.model_id(self.model_name), finish_reason="stop")
