"""The wire formats the fake LLM server speaks: request validation, answers and response payloads for OpenAI
Chat Completions and Anthropic Messages, and the fault kinds. Pure functions of the request JSON (no aiohttp),
so they load without the ``testing`` extra.

Structured requests are checked as the real APIs check them, with a 400 in the vendor's words: OpenAI's
``response_format`` (type, a schema name of ``[a-zA-Z0-9_-]{1,64}``, an object schema at the root, a valid JSON
Schema, and under ``strict`` every object closed with ``additionalProperties: false`` and every property
required), ``tool_choice`` naming a defined tool (both APIs), Anthropic tools with an object ``input_schema``,
and the ranges of OpenAI's sampling parameters. A schema-constrained answer scripted as plain text is wrapped
in the schema's one required property (``"positive"`` → ``{"label": "positive"}``), as a constrained API would
answer; any other scripted answer is sent as it is, so a test can also play a server that breaks the schema.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError

if TYPE_CHECKING:
    from ._server import FakeLLMServer

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"

# fault kind -> (HTTP status, OpenAI error type, Anthropic error type); None status = not an HTTP error
_STATUS_FAULTS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (429, "rate_limit_exceeded", "rate_limit_error"),
    "server_error": (500, "server_error", "api_error"),
    "overloaded": (529, "server_error", "overloaded_error"),
    "bad_request": (400, "invalid_request_error", "invalid_request_error"),
    "unauthorized": (401, "invalid_api_key", "authentication_error"),
    "forbidden": (403, "permission_denied", "permission_error"),
    "not_found": (404, "model_not_found", "not_found_error"),
}
_SOCKET_FAULTS = ("hang", "malformed_json", "drop_connection")
FAULT_KINDS: tuple[str, ...] = tuple(_STATUS_FAULTS) + _SOCKET_FAULTS
"""Every fault the server can inject: HTTP errors in each vendor's error body (429 comes with
``Retry-After``), ``hang`` (never answers; the client must time out), ``malformed_json`` (a 200 with a
truncated JSON body) and ``drop_connection`` (the socket is closed without a response)."""

SAMPLING_REMOVED_VERSION = "2026-10-21"
"""The Anthropic API version from which ``temperature``/``top_p``/``top_k`` are a 400 (mimicked here)."""


Answer = str | dict
Answers = Mapping[str, Answer] | Callable[[dict], Answer | None] | str | None


def approx_tokens(text: str) -> int:
    """The server's token count: whitespace-separated words (a documented stand-in for a tokenizer)."""
    return len(text.split())


def _content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or a list of parts/blocks with ``text`` fields."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def last_user_text(request_json: dict) -> str:
    """The text of the last ``user`` message of an OpenAI or Anthropic request body ("" when there is none).

    Use it in rule functions: ``FakeLLMServer(answers=lambda body: last_user_text(body).upper())``.
    """
    for message in reversed(request_json.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _prompt_tokens(request_json: dict) -> int:
    system = request_json.get("system", "")
    messages = [m for m in request_json.get("messages", []) if isinstance(m, dict)]
    texts = [_content_text(system)] + [_content_text(m.get("content")) for m in messages]
    return sum(approx_tokens(text) for text in texts)


def example_for_schema(schema: Mapping[str, Any]) -> Any:
    """A minimal value satisfying a simple JSON schema (first enum value, zeros, "", required keys only).

    This is the fake server's default answer to structured requests. It covers the common keywords
    (``type``, ``enum``, ``const``, ``properties``/``required``, ``items``/``minItems``), not all of
    JSON Schema.
    """
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type", "object")
    kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: example_for_schema(properties.get(name, {})) for name in schema.get("required", [])}
    if kind == "array":
        return [example_for_schema(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    scalars = {"string": "", "integer": schema.get("minimum", 0), "number": schema.get("minimum", 0),
               "boolean": False, "null": None}
    return scalars.get(kind, None)


# -- validation and wire formats ---------------------------------------------------------------------------


def _check_kinds(kinds: Iterable[str | None]) -> list[str | None]:
    kinds = list(kinds)
    unknown = [kind for kind in kinds if kind is not None and kind not in FAULT_KINDS]
    if unknown:
        raise ArgumentError(f"unknown fault kinds {unknown!r}. Use None (answer normally) or one of "
                         f"{FAULT_KINDS!r}.")
    return kinds


def _check_rates(rates: Mapping[str, float]) -> dict[str, float]:
    _check_kinds(rates)
    if any(not 0 <= rate <= 1 for rate in rates.values()) or sum(rates.values()) > 1:
        raise ArgumentError(f"fault_rates must be probabilities in [0, 1] summing to at most 1, got "
                         f"{dict(rates)!r}. Lower the rates.")
    return dict(rates)


def _validate(body: dict | None, wire: str, headers: Mapping[str, str]) -> str | None:
    """What is wrong with a request body, in the words a real API would use (None when it is fine)."""
    if body is None:
        return "the request body is not a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: a non-empty string is required"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return "messages: a non-empty list is required"
    if body.get("stream"):
        return "stream: the fake LLM server does not stream; send stream=false"
    if wire == "anthropic":
        return _validate_anthropic(body, headers.get("anthropic-version", "")) or _validate_anthropic_tools(body)
    return _validate_openai_sampling(body) or _validate_response_format(body) or _validate_openai_tools(body)


_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# OpenAI's ranges for the sampling parameters (its API reference)
_OPENAI_RANGES = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "frequency_penalty": (-2.0, 2.0),
                  "presence_penalty": (-2.0, 2.0)}


def _validate_openai_sampling(body: dict) -> str | None:
    for name, (low, high) in _OPENAI_RANGES.items():
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not low <= value <= high):
            return f"Invalid '{name}': expected a number from {low:g} to {high:g}, got {value!r}."
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        return f"Invalid type for 'seed': expected an integer, but got {type(seed).__name__} instead."
    return None


def _validate_response_format(body: dict) -> str | None:
    response_format = body.get("response_format")
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        return (f"Invalid value for 'response_format.type': {kind!r}. Supported values are: 'text', 'json_object' "
                "and 'json_schema'.")
    if kind != "json_schema":
        return None
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not _NAME.fullmatch(spec["name"]):
        return ("Invalid 'response_format.json_schema.name': a name of letters, digits, '_' and '-' (at most 64) "
                f"is required, got {(spec or {}).get('name') if isinstance(spec, dict) else spec!r}.")
    if not isinstance(spec.get("strict", False), bool):
        return f"Invalid type for 'response_format.json_schema.strict': expected a boolean, got {spec['strict']!r}."
    return _schema_problem(spec.get("schema"), f"response_format '{spec['name']}'", strict=spec.get("strict", False))


def _schema_problem(schema: Any, where: str, *, strict: bool) -> str | None:
    """What a real API says about a tool or response schema: an object at the root, valid JSON Schema, and
    (strict) every object closed and fully required."""
    import jsonschema  # a core dependency of promptlab; imported on use like the server's other checks

    if not isinstance(schema, dict) or schema.get("type") != "object":
        return f"Invalid schema for {where}: schema must be a JSON Schema of 'type: \"object\"', got {schema!r}."
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"Invalid schema for {where}: {exc.message}."
    return _strict_problem(schema, where, ()) if strict else None


def _strict_problem(schema: Any, where: str, path: tuple[str, ...]) -> str | None:
    if not isinstance(schema, dict):
        return None
    context = f"In context=({', '.join(repr(p) for p in path)})"
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return (f"Invalid schema for {where}: {context}, 'additionalProperties' is required to be supplied and "
                    "to be false.")
        missing = [key for key in schema.get("properties", {}) if key not in schema.get("required", [])]
        if missing:
            return (f"Invalid schema for {where}: {context}, 'required' is required to be supplied and to be an "
                    f"array including every key in properties. Missing '{missing[0]}'.")
    for key in ("properties", "$defs", "definitions"):
        for name, child in (schema.get(key) or {}).items():
            problem = _strict_problem(child, where, (*path, key, name))
            if problem:
                return problem
    children = [("items", schema.get("items"))] + [(key, item) for key in ("anyOf", "allOf")
                                                   for item in schema.get(key) or []]
    for key, child in children:
        problem = _strict_problem(child, where, (*path, key))
        if problem:
            return problem
    return None


def _validate_openai_tools(body: dict) -> str | None:
    choice = body.get("tool_choice")
    names = [(tool.get("function") or {}).get("name") for tool in body.get("tools") or [] if isinstance(tool, dict)]
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name not in names:
            return f"Invalid 'tool_choice': function {name!r} is not one of the tools {names!r}."
    elif choice not in (None, "auto", "none", "required"):
        return f"Invalid value for 'tool_choice': {choice!r}."
    elif choice == "required" and not names:
        return "Invalid value for 'tool_choice': 'required' needs 'tools'."
    return None


def _validate_anthropic_tools(body: dict) -> str | None:
    tools = body.get("tools") or []
    for number, tool in enumerate(tools):
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            return f"tools.{number}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$' (got {name!r})"
        problem = _schema_problem(tool.get("input_schema"), f"tools.{number}.input_schema", strict=False)
        if problem:
            return problem
    choice = body.get("tool_choice")
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        return f"tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none' (got {kind!r})"
    if kind in ("any", "tool") and not tools:
        return f"tool_choice: type {kind!r} requires `tools`"
    names = [tool["name"] for tool in tools]
    if kind == "tool" and choice.get("name") not in names:
        return f"tool_choice.name: tool {choice.get('name')!r} not found in tools {names!r}"
    return None


def _validate_anthropic(body: dict, api_version: str) -> str | None:
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    sampling = sorted({"temperature", "top_p", "top_k"} & set(body))
    if sampling and api_version >= SAMPLING_REMOVED_VERSION:
        return f"{sampling[0]}: Extra inputs are not permitted"
    roles = [m.get("role") if isinstance(m, dict) else None for m in body["messages"]]
    if any(role not in ("user", "assistant") for role in roles):
        return (f"messages: roles must be 'user' or 'assistant', got {roles!r}; "
                "the system prompt goes in the top-level `system` parameter")
    return None


def _cut_text(text: str, stops: Sequence[str], max_words: int | None) -> tuple[str, str | None, bool]:
    """Apply stop sequences and the word budget: (text, the stop sequence hit, whether it was truncated)."""
    hits = [(text.index(stop), stop) for stop in stops if stop and stop in text]
    hit = min(hits)[1] if hits else None
    if hit is not None:
        text = text[: text.index(hit)]
    words = text.split()
    if max_words is not None and len(words) > max_words:
        return " ".join(words[:max_words]), None, True
    return text, hit, False


def _stop_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [stop for stop in value or [] if isinstance(stop, str)]


def _default_answer(body: dict) -> str:
    return f"echo: {last_user_text(body)}"


def _structured_answer(server: FakeLLMServer, body: dict, schema: Mapping[str, Any]) -> dict | str:
    """The answer to a structured request: the scripted dict (or JSON text), else a schema instance. Plain text
    scripted for a schema with one required property is that property's value (``{"label": "positive"}``)."""
    answer = server.answer_for(body)
    if answer is None:
        return example_for_schema(schema)
    if isinstance(answer, str):
        try:
            parsed = json.loads(answer)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
        required = schema.get("required") or []
        if len(required) != 1:
            return answer
        inner = (schema.get("properties") or {}).get(required[0]) or {}
        as_text = inner.get("type") == "string" or answer in (inner.get("enum") or ()) or parsed is None
        return {required[0]: answer if as_text else parsed}
    return answer


def _text_answer(server: FakeLLMServer, body: dict) -> str:
    answer = server.answer_for(body)
    if answer is None:
        return _default_answer(body)
    return answer if isinstance(answer, str) else json.dumps(answer)


def _openai_forced_tool(body: dict) -> dict | None:
    """The function tool an OpenAI request forces (``tool_choice`` "required" or a named function)."""
    tools = [tool for tool in body.get("tools") or []
             if isinstance(tool, dict) and tool.get("type") == "function"]
    choice = body.get("tool_choice")
    if not tools or choice in (None, "auto", "none"):
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        return next((tool for tool in tools if tool["function"].get("name") == name), None)
    return tools[0]


def _openai_message(server: FakeLLMServer, body: dict) -> tuple[dict, str, int]:
    """The assistant message, finish reason and output token count of an OpenAI response."""
    tool = _openai_forced_tool(body)
    if tool is not None:
        arguments = _structured_answer(server, body, tool["function"].get("parameters") or {})
        arguments_text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        call = {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                "function": {"name": tool["function"]["name"], "arguments": arguments_text}}
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
        return message, "tool_calls", approx_tokens(arguments_text)
    response_format = body.get("response_format") or {}
    if response_format.get("type") in ("json_schema", "json_object"):
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        answer = _structured_answer(server, body, schema)
        text, finish = (answer if isinstance(answer, str) else json.dumps(answer)), "stop"
    else:
        budget = body.get("max_completion_tokens", body.get("max_tokens"))
        text, _, truncated = _cut_text(_text_answer(server, body), _stop_list(body.get("stop")), budget)
        finish = "length" if truncated else "stop"
    return {"role": "assistant", "content": text, "refusal": None}, finish, approx_tokens(text)


def _openai_payload(server: FakeLLMServer, body: dict, model: str) -> dict:
    message, finish, output_tokens = _openai_message(server, body)
    input_tokens = _prompt_tokens(body)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
        "model": model, "system_fingerprint": "fp_promptlab_fake", "service_tier": "default",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens,
                  "total_tokens": input_tokens + output_tokens},
    }


def _anthropic_forced_tool(body: dict) -> dict | None:
    """The tool an Anthropic request forces (``tool_choice`` of type ``tool`` or ``any``)."""
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict) and "name" in tool]
    choice = body.get("tool_choice") or {}
    if not tools or choice.get("type") not in ("tool", "any"):
        return None
    if choice["type"] == "tool":
        return next((tool for tool in tools if tool["name"] == choice.get("name")), None)
    return tools[0]


def _anthropic_content(server: FakeLLMServer, body: dict) -> tuple[list[dict], str, str | None, int]:
    """The content blocks, stop reason, stop sequence and output token count of an Anthropic response."""
    tool = _anthropic_forced_tool(body)
    if tool is not None:
        answer = _structured_answer(server, body, tool.get("input_schema") or {})
        tool_input = answer if isinstance(answer, dict) else {"text": answer}
        block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": tool["name"],
                 "input": tool_input}
        return [block], "tool_use", None, approx_tokens(json.dumps(tool_input))
    text, hit, truncated = _cut_text(_text_answer(server, body), _stop_list(body.get("stop_sequences")),
                                     body["max_tokens"])
    reason = "max_tokens" if truncated else "stop_sequence" if hit else "end_turn"
    return [{"type": "text", "text": text}], reason, hit, approx_tokens(text)


def _anthropic_payload(server: FakeLLMServer, body: dict, model: str) -> dict:
    content, stop_reason, stop_sequence, output_tokens = _anthropic_content(server, body)
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop_reason, "stop_sequence": stop_sequence,
        "usage": {"input_tokens": _prompt_tokens(body), "output_tokens": output_tokens,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }
