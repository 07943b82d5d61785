"""`FakeProvider`: scripted answers for unit tests and examples, no network, no model.

Answers come from a mapping (last user message → text), a function of the request, or a fixed text.
Faults are scripted too: a mapping value that is an exception instance is raised instead of answering.
Token counts are whitespace word counts — a documented stand-in, since there is no real tokenizer here.

A request with an `OutputConstraint` is answered the way a provider without native enforcement answers it
(`validate_and_reask`): each answer is checked, a failing one re-asked up to ``retries`` times, and the completion
carries ``parsed``, ``format_ok``, ``format_error`` and ``enforced="validated"``. A mapping value may be a list of
answers, one per attempt (``{"q": ["banana", "positive"]}``: wrong, then right on the re-ask); re-asks are looked up
by the original question. An answer may also be a whole `Completion`, returned as it is when it carries its own
``format_ok`` (to script any row exactly).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ProviderError
from ._base import Completion, Provider, Request
from ._structured import validate_and_reask

Answer = str | BaseException | Completion
Script = Mapping[str, Answer | list[Answer]] | Callable[[Request], Answer] | str


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

    def _answer(self, request: Request, question: Request, attempt: int) -> Answer:
        """The scripted answer to ``request``; a mapping is looked up by ``question`` (the first ask, when this is
        a re-ask), and a list in it gives one answer per attempt (its last one for any later attempt)."""
        if callable(self.script):
            return self.script(request)
        if isinstance(self.script, str):
            return self.script
        prompt_text = question.messages[-1].content
        if prompt_text in self.script:
            answer = self.script[prompt_text]
            return answer[min(attempt, len(answer) - 1)] if isinstance(answer, list | tuple) and answer else answer
        if self.default is not None:
            return self.default
        return ProviderError(f"FakeProvider has no scripted answer for {prompt_text!r}. Add it to the script "
                             "or pass default=...", error_type="not_scripted")

    async def complete(self, request: Request) -> Completion:
        """Return the scripted answer after the simulated latency, or raise the scripted exception; with an output
        constraint, check it and re-ask like a provider that cannot enforce the shape."""
        first = await self._ask(request, request, 0)
        if request.output is None or first.format_ok is not None:  # a scripted Completion brings its own verdict
            return first

        async def ask(current: Request, attempt: int) -> Completion:
            return first if attempt == 0 else await self._ask(current, request, attempt)

        return await validate_and_reask(ask, request)

    async def _ask(self, request: Request, question: Request, attempt: int) -> Completion:
        self.calls.append(request)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        answer = self._answer(request, question, attempt)
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, Completion):
            return answer
        prompt_words = len(request.system.split()) + sum(len(m.content.split()) for m in request.messages)
        return Completion(text=answer, input_tokens=prompt_words, output_tokens=len(answer.split()),
                          latency_s=self.latency_s, model=self.model_id(self.model_name), finish_reason="stop")
