"""`AnthropicProvider`: the Anthropic Messages API through the official ``anthropic`` SDK.

The key comes from ``api_key=`` or ``ANTHROPIC_API_KEY``; the endpoint from ``base_url=`` or
``ANTHROPIC_BASE_URL``. The system text goes in the top-level ``system`` parameter, few-shot examples as
alternating user/assistant turns; ``Request.stop`` becomes ``stop_sequences``. The SDK's retries are off
(the runner owns retries) and every failure becomes a `ProviderError`, exactly as for `OpenAIProvider`.

``Request.temperature`` is not sent. The ``anthropic`` SDK 2.x speaks API version 2026-10-21, which removed
the sampling parameters: ``temperature``, ``top_p`` and ``top_k`` (even at 1.0) are a 400 there, and the SDK
no longer accepts them. Claude answers sample at the model's own setting, so repeated calls may differ:
run ``repeats`` to measure that variance instead of assuming temperature 0.

The same API version has no ``top_p``, ``seed`` or penalties either: a prompt that sets them is answered without
them, and the completion lists them in ``raw["ignored_params"]`` (with a warning, once).

A request's `OutputConstraint` is enforced by forced tool use: one tool, ``answer``, whose ``input_schema`` is the
JSON Schema (a label set: ``{"label": {"enum": [...]}}``; a schema whose root is not an object: ``{"value": ...}``),
and ``tool_choice`` ``{"type": "tool", "name": "answer"}``. The tool's input is the answer. A regex is validated
and re-asked (`_structured`).

Input tokens are everything the prompt cost: ``input_tokens`` plus cache-creation and cache-read tokens
(Anthropic reports them apart; OpenAI's ``prompt_tokens`` already includes cached ones). ``raw`` keeps the
split.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from ..errors import MissingDependencyError, ProviderError
from ._base import Completion, Request
from ._openai import SDKProvider, parsed_and_headers
from ._structured import conform, unwrap, wire_schema

_MISSING_SDK = ("the anthropic provider needs the anthropic SDK, an optional extra. Install it: "
                "pip install 'promptlab[anthropic]'")


def _anthropic_sdk() -> ModuleType:
    try:
        import anthropic
    except ImportError:
        raise MissingDependencyError(_MISSING_SDK) from None
    return anthropic


def _api_version() -> str:
    """The ``anthropic-version`` header the installed SDK sends."""
    try:
        from anthropic._constants import ANTHROPIC_API_VERSION
    except ImportError:
        raise MissingDependencyError(_MISSING_SDK) from None
    return ANTHROPIC_API_VERSION


def _input_tokens(usage: Any) -> int | None:
    if usage is None or usage.input_tokens is None:
        return None
    cached = (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
    return usage.input_tokens + cached


class AnthropicProvider(SDKProvider):
    """Claude models through ``anthropic.AsyncAnthropic`` (Messages API).

    Args:
        api_key: the key; None reads ``ANTHROPIC_API_KEY``.
        base_url: the API endpoint; None reads ``ANTHROPIC_BASE_URL``, else ``https://api.anthropic.com``.
        timeout_s: seconds before a call is abandoned as ``timeout``.
        max_concurrency: calls the runner keeps in flight.
        rate_limits: declared limits (see `SDKProvider`); None learns them from the ``anthropic-ratelimit-*``
            headers.
    """

    name = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"
    default_base_url = "https://api.anthropic.com"
    native_output = frozenset({"labels", "json_schema"})
    sampling_supported = frozenset()  # API 2026-10-21 has no top_p, seed or penalties

    def cache_identity(self) -> dict[str, Any]:
        """The shared identity plus the API version the SDK sends (``anthropic-version``): a new version
        can change answers (2026-10-21 dropped the sampling parameters)."""
        return {**super().cache_identity(), "api_version": _api_version()}

    def _make_client(self, api_key: str) -> Any:
        return self._module.AsyncAnthropic(api_key=api_key, base_url=self.base_url, max_retries=0,
                                           timeout=self.timeout_s)

    def request_params(self, request: Request) -> dict:
        """The Messages API arguments: top-level system, alternating turns, stop_sequences, no temperature."""
        params: dict[str, Any] = {
            "model": request.model, "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.system:
            params["system"] = request.system
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        return params

    async def _send(self, client: Any, request: Request, extra: dict, timeout_s: float) -> tuple[Any, Any]:
        params = {**self.request_params(request), **extra}
        raw = await client.messages.with_raw_response.create(**params, timeout=timeout_s)
        return await parsed_and_headers(raw)

    def _usage(self, response: Any) -> tuple[int | None, int | None]:
        usage = response.usage
        return (_input_tokens(usage), usage.output_tokens) if usage else (None, None)

    def _completion(self, request: Request, response: Any, seconds: float,
                    text: str | None = None) -> Completion:
        if text is None:
            text = "".join(block.text for block in response.content if block.type == "text")
        usage = response.usage
        return Completion(
            text=text, latency_s=seconds, input_tokens=_input_tokens(usage),
            output_tokens=usage.output_tokens if usage else None,
            model=self.model_id(response.model or request.model), finish_reason=response.stop_reason,
            raw=response.model_dump(mode="json", exclude_none=True),
        )

    def _sdk(self) -> ModuleType:
        return _anthropic_sdk()

    async def _native(self, request: Request, timeout_s: float | None) -> Completion:
        """Forced tool use: the answer is the input of the one tool the model must call."""
        schema, key = wire_schema(request.output)
        tool = {"name": "answer", "description": "Give your answer in this structure.", "input_schema": schema}
        extra = {"tools": [tool], "tool_choice": {"type": "tool", "name": "answer"}}
        response, seconds = await self._call(request, extra, self._module, timeout_s)
        uses = [block for block in response.content if block.type == "tool_use" and block.name == "answer"]
        if not uses or not isinstance(uses[0].input, dict):  # no tool call: the text blocks are checked instead
            return conform(self._completion(request, response, seconds), request.output, enforced="native")
        text = json.dumps(uses[0].input, ensure_ascii=False)
        completion = self._completion(request, response, seconds, text=text)
        return conform(completion, request.output, enforced="native", text=unwrap(text, key))

    async def complete_structured(self, request: Request, json_schema: dict, *, name: str = "result",
                                  timeout_s: float | None = None) -> tuple[Completion, dict]:
        """Answer with a JSON object following ``json_schema``, through a forced tool call.

        Args:
            request: the provider-neutral request.
            json_schema: the JSON schema of the answer (an object schema: the tool's ``input_schema``).
            name: the tool's name.
            timeout_s: overrides the provider's timeout for this call.

        Returns:
            The completion (its text is the JSON of the tool input) and the tool input.
        """
        tool = {"name": name, "description": "Report the answer in this structure.",
                "input_schema": json_schema}
        extra = {"tools": [tool], "tool_choice": {"type": "tool", "name": name}}
        response, seconds = await self._call(request, extra, self._module, timeout_s)
        uses = [block for block in response.content if block.type == "tool_use" and block.name == name]
        if not uses or not isinstance(uses[0].input, dict):
            raise ProviderError(f"{self._context(request)} did not call the forced tool {name!r} with an "
                                f"object (stop_reason {response.stop_reason!r}). The runner retries.",
                                error_type="invalid_output", retryable=True)
        answer = dict(uses[0].input)
        return self._completion(request, response, seconds, text=json.dumps(answer)), answer


__all__ = ["AnthropicProvider"]
