"""Test helpers that are product code: a loopback fake LLM server speaking OpenAI and Anthropic wire formats.

`FakeLLMServer` listens on ``127.0.0.1`` (a random free port) in a background thread with its own asyncio
loop, and answers ``POST /v1/chat/completions`` (OpenAI Chat Completions) and ``POST /v1/messages``
(Anthropic Messages) closely enough that the real ``openai`` and ``anthropic`` SDKs parse the responses.
Point an SDK (or a promptlab provider) at it to exercise the real HTTP path — retries, errors, usage::

    with FakeLLMServer(answers={"I love it": "positive"}, latency_s=0.2) as server:
        provider = OpenAIProvider(base_url=server.openai_base_url, api_key="test-key")
        ...
        server.inject_faults("rate_limit")      # the next request gets a 429 with Retry-After
        assert server.counts_by_path["/v1/chat/completions"] == 1

What it simulates:

* **answers** — a mapping from the last user message to the answer, a rule ``request_json -> answer``, or one
  text for every request. Missing keys get the default answer ``"echo: <last user message>"``. An answer may
  be a dict: it becomes the tool input of a forced Anthropic tool (``tool_choice`` of type ``tool``/``any``),
  the arguments of a forced OpenAI tool call, or the JSON text of an OpenAI ``response_format`` json_schema
  answer. A structured request without a scripted answer gets a minimal instance of its JSON schema.
* **latency** — seconds (fixed, or a callable of the request JSON) awaited before every response, faults
  included; waiting is ``asyncio.sleep``, so many concurrent requests cost almost no CPU.
* **served model** — the ``model`` reported in responses: the requested one, or ``served_model`` (assign it
  mid-test to simulate a model changing behind a pinned alias).
* **validation** — malformed requests get a 400 in the vendor's error format, as the real API would answer:
  missing ``model``/``messages``, streaming, a ``system`` role inside Anthropic ``messages``, and sampling
  parameters (``temperature``, ``top_p``, ``top_k``) under ``anthropic-version`` 2026-10-21 or later.
* **stop sequences and max tokens** — a text answer is cut at the first stop sequence
  (finish ``stop`` / ``stop_sequence``) and at ``max_tokens`` words (finish ``length`` / ``max_tokens``).
* **faults** — by rate (``fault_rates={"rate_limit": 0.1}``, seeded) or by a deterministic schedule
  (``fault_schedule=["rate_limit", None, "hang"]``: the n-th request received gets the n-th entry; ``None``
  answers normally; `inject_faults` appends to the schedule). Kinds are in `FAULT_KINDS`.
* **counting** — `request_count`, `counts_by_path`, and `requests` (path, body, headers): the log never
  holds credential headers (``Authorization``, ``x-api-key``, ``api-key``, cookies), only whether one was
  sent.

Token counts are an approximation: whitespace-separated words of the system text and message texts
(input) and of the answer (output). Nothing here reaches the network.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import random
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

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

_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"})

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


@dataclass(frozen=True)
class ReceivedRequest:
    """One request the fake server received.

    Attributes:
        index: arrival order, from 0.
        path: the URL path, e.g. ``/v1/messages``.
        body: the parsed JSON body (None when it was not JSON).
        headers: the request headers with every credential header removed (names lower-cased).
        credential_sent: whether an ``Authorization`` / ``x-api-key`` header was present (the value is
            never kept).
        fault: the fault injected into the response, or None.
    """

    index: int
    path: str
    body: dict | None
    headers: dict[str, str] = field(repr=False)
    credential_sent: bool
    fault: str | None


class FakeLLMServer:
    """A loopback server speaking the OpenAI Chat Completions and Anthropic Messages wire formats.

    Use it as a context manager (``with FakeLLMServer() as server:``), call `start` / `stop` yourself, or
    make a pytest fixture with `fake_llm_server_fixture`. All attributes below may be reassigned while the
    server runs (for example ``server.served_model = "gpt-4o-2024-11-20"``).

    Args:
        answers: a mapping from the last user message to the answer, a rule ``request_json -> answer``
            (returning None falls back to the default), or one answer for every request. Answers are texts
            or dicts (see the module docstring). None: the default ``"echo: <last user message>"``.
        latency_s: seconds to wait before each response, or a callable ``request_json -> seconds``.
        served_model: the model id reported in responses; None reports the requested model.
        fault_rates: probability per fault kind, e.g. ``{"rate_limit": 0.1, "drop_connection": 0.02}``.
        fault_schedule: faults for the first requests in arrival order (``None`` entries answer normally).
        retry_after_s: the ``Retry-After`` sent with 429 responses (also sent as ``retry-after-ms``).
        seed: seed of the random draws behind ``fault_rates``.
        require_api_key: when set, requests whose credential differs get a 401 (the key is never logged).
        port: the port to listen on; 0 (the default) picks a free one. Pass a stopped server's ``port`` to
            restart "the same server" at the same address (responses cached for it stay valid).
    """

    def __init__(self, *, answers: Answers = None, latency_s: float | Callable[[dict], float] = 0.0,
                 served_model: str | None = None, fault_rates: Mapping[str, float] | None = None,
                 fault_schedule: Iterable[str | None] = (), retry_after_s: float = 1.0, seed: int = 0,
                 require_api_key: str | None = None, port: int = 0):
        self.answers = answers
        self.latency_s = latency_s
        self.served_model = served_model
        self.fault_rates = _check_rates(fault_rates or {})
        self.retry_after_s = retry_after_s
        self._require_api_key = require_api_key
        self._rng = random.Random(seed)
        self._schedule: deque[str | None] = deque(_check_kinds(fault_schedule))
        self._lock = threading.Lock()
        self._log: list[ReceivedRequest] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._requested_port = port
        self._port: int | None = None
        self._closing: asyncio.Event | None = None  # created on the server loop; releases hanging requests
        self._runner: Any = None

    def __repr__(self) -> str:
        where = self.base_url if self._port else "not started"
        return f"FakeLLMServer({where}, requests={self.request_count}, served_model={self.served_model!r})"

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        """Bind 127.0.0.1 on a free port and serve from a background thread; returns the server."""
        if self._thread is not None:
            raise RuntimeError(f"{self!r} is already running. Call stop() before starting it again.")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port just released may be in TIME_WAIT
        sock.bind(("127.0.0.1", self._requested_port))
        self._port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"promptlab-fake-llm-{self._port}")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start_site(sock), self._loop).result(timeout=10)
        logger.debug("fake LLM server listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, release hanging requests and join the thread (safe to call twice)."""
        if self._thread is None or self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._thread = self._loop = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _start_site(self, sock: socket.socket) -> None:
        from aiohttp import web

        app = web.Application(client_max_size=16 * 2**20)
        app.router.add_post(OPENAI_PATH, self._handle_openai)
        app.router.add_post(ANTHROPIC_PATH, self._handle_anthropic)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, handler_cancellation=True,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, backlog=1024).start()

    async def _shutdown(self) -> None:
        self._closing.set()
        await self._runner.cleanup()

    # -- addresses -----------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._port is None:
            raise RuntimeError("the fake LLM server has no port yet. Call start() or use it in a `with` "
                               "block.")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The ``base_url`` for the OpenAI SDK: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The ``base_url`` for the Anthropic SDK: ``http://127.0.0.1:PORT`` (the SDK adds ``/v1``)."""
        return self.base_url

    def env(self, api_key: str = "test-key") -> dict[str, str]:
        """Environment variables pointing both SDKs here, e.g. for ``monkeypatch.setenv``."""
        return {"OPENAI_BASE_URL": self.openai_base_url, "OPENAI_API_KEY": api_key,
                "ANTHROPIC_BASE_URL": self.anthropic_base_url, "ANTHROPIC_API_KEY": api_key}

    # -- counting and faults -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._log)

    @property
    def request_count(self) -> int:
        """How many requests arrived, over all paths."""
        with self._lock:
            return len(self._log)

    @property
    def counts_by_path(self) -> Counter[str]:
        """How many requests arrived per URL path."""
        with self._lock:
            return Counter(entry.path for entry in self._log)

    def bodies(self, path: str | None = None) -> list[dict | None]:
        """The JSON bodies received (on ``path`` only, when given), in arrival order."""
        return [entry.body for entry in self.requests if path is None or entry.path == path]

    def inject_faults(self, *kinds: str | None) -> None:
        """Append faults to the schedule: the next requests get them in order (``None`` answers normally)."""
        checked = _check_kinds(kinds)
        with self._lock:
            self._schedule.extend(checked)

    def reset(self) -> None:
        """Forget the request log and the pending fault schedule (for a server shared between tests)."""
        with self._lock:
            self._log.clear()
            self._schedule.clear()

    def _record(self, path: str, body: dict | None, headers: Mapping[str, str],
                may_fault: bool = True) -> ReceivedRequest:
        lowered = {name.lower(): value for name, value in headers.items()}
        kept = {name: value for name, value in lowered.items() if name not in _SECRET_HEADERS}
        credential = any(name in lowered for name in ("authorization", "x-api-key", "api-key"))
        with self._lock:
            fault = None
            if may_fault:
                fault = self._schedule.popleft() if self._schedule else self._draw_fault()
            entry = ReceivedRequest(len(self._log), path, body, kept, credential, fault)
            self._log.append(entry)
        return entry

    def _draw_fault(self) -> str | None:
        draw = self._rng.random()
        for kind, rate in sorted(self.fault_rates.items()):
            if draw < rate:
                return kind
            draw -= rate
        return None

    def _credential_ok(self, headers: Mapping[str, str]) -> bool:
        if self._require_api_key is None:
            return True
        offered = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
        return hmac.compare_digest(offered.encode(), self._require_api_key.encode())

    # -- HTTP handlers -------------------------------------------------------------------------------------

    async def _handle_openai(self, request: Any) -> Any:
        return await self._handle(request, "openai")

    async def _handle_anthropic(self, request: Any) -> Any:
        return await self._handle(request, "anthropic")

    async def _handle_unknown(self, request: Any) -> Any:
        self._record(request.path, None, request.headers, may_fault=False)  # faults are for real routes
        wire = "anthropic" if request.path.startswith(ANTHROPIC_PATH) else "openai"
        message = (f"the fake LLM server has no route {request.method} {request.path!r}; it serves "
                   f"POST {OPENAI_PATH} and POST {ANTHROPIC_PATH}")
        return _error_response(wire, 404, "not_found_error", message)

    async def _handle(self, request: Any, wire: str) -> Any:
        body = await _read_json(request)
        entry = self._record(request.path, body, request.headers)
        latency = self.latency_s(body or {}) if callable(self.latency_s) else self.latency_s
        if latency:
            await asyncio.sleep(latency)
        if entry.fault is not None:
            return await self._fault_response(request, wire, entry.fault)
        if not self._credential_ok(request.headers):
            return self._status_fault(wire, "unauthorized", "invalid x-api-key / Authorization credential")
        problem = _validate(body, wire, request.headers)
        if problem:
            return _error_response(wire, 400, "invalid_request_error", problem)
        return self._answer_response(body, wire)

    def _answer_response(self, body: dict, wire: str) -> Any:
        from aiohttp import web

        model = self.served_model or body["model"]
        try:
            payload = (_openai_payload if wire == "openai" else _anthropic_payload)(self, body, model)
        except Exception as error:  # a user's answer function failed: report it as a 500 with the cause
            logger.debug("fake LLM server answer function raised %r", error)
            return _error_response(wire, 500, "api_error", f"the answer function raised {error!r}")
        header = "x-request-id" if wire == "openai" else "request-id"
        return web.json_response(payload, headers={header: f"req_{uuid.uuid4().hex[:24]}"})

    async def _fault_response(self, request: Any, wire: str, fault: str) -> Any:
        from aiohttp import web

        if fault == "hang":
            await self._closing.wait()  # cancelled when the client gives up (handler_cancellation)
            fault = "drop_connection"
        if fault == "drop_connection":
            if request.transport is not None:
                request.transport.abort()
            await asyncio.sleep(0)
            return web.Response(status=500)  # never reaches the client: the socket is gone
        if fault == "malformed_json":
            return web.Response(text='{"id": "truncated", "choices": [{"message": {"content": "ha',
                                content_type="application/json")
        return self._status_fault(wire, fault)

    def _status_fault(self, wire: str, fault: str, message: str | None = None) -> Any:
        status, openai_type, anthropic_type = _STATUS_FAULTS[fault]
        headers = {}
        if status == 429:
            headers = {"retry-after": str(math.ceil(self.retry_after_s)),
                       "retry-after-ms": str(int(self.retry_after_s * 1000))}
        error_type = anthropic_type if wire == "anthropic" else openai_type
        message = message or f"injected fault {fault!r} (HTTP {status})"
        return _error_response(wire, status, error_type, message, headers)

    # -- answers -------------------------------------------------------------------------------------------

    def answer_for(self, request_json: dict) -> Answer | None:
        """The scripted answer for a request body, or None when the script has none (the default applies)."""
        if self.answers is None:
            return None
        if callable(self.answers):
            return self.answers(request_json)
        if isinstance(self.answers, str):
            return self.answers
        return self.answers.get(last_user_text(request_json))


# -- validation and wire formats ---------------------------------------------------------------------------


def _check_kinds(kinds: Iterable[str | None]) -> list[str | None]:
    kinds = list(kinds)
    unknown = [kind for kind in kinds if kind is not None and kind not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown!r}. Use None (answer normally) or one of "
                         f"{FAULT_KINDS!r}.")
    return kinds


def _check_rates(rates: Mapping[str, float]) -> dict[str, float]:
    _check_kinds(rates)
    if any(not 0 <= rate <= 1 for rate in rates.values()) or sum(rates.values()) > 1:
        raise ValueError(f"fault_rates must be probabilities in [0, 1] summing to at most 1, got "
                         f"{dict(rates)!r}. Lower the rates.")
    return dict(rates)


async def _read_json(request: Any) -> dict | None:
    try:
        body = await request.json(loads=json.loads)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


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
        return _validate_anthropic(body, headers.get("anthropic-version", ""))
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


def _error_response(wire: str, status: int, error_type: str, message: str,
                    headers: Mapping[str, str] | None = None) -> Any:
    from aiohttp import web

    request_id = f"req_{uuid.uuid4().hex[:24]}"
    if wire == "anthropic":
        body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
        headers = {"request-id": request_id, **(headers or {})}
    else:
        body = {"error": {"message": message, "type": error_type, "param": None, "code": error_type}}
        headers = {"x-request-id": request_id, **(headers or {})}
    return web.json_response(body, status=status, headers=headers)


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
    """The answer to a structured request: the scripted dict (or JSON text), else a schema instance."""
    answer = server.answer_for(body)
    if answer is None:
        return example_for_schema(schema)
    if isinstance(answer, str):
        try:
            parsed = json.loads(answer)
        except ValueError:
            return answer
        return parsed if isinstance(parsed, dict) else answer
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


# -- pytest --------------------------------------------------------------------------------------------------


def fake_llm_server_fixture(scope: str = "function",
                            **options: Any) -> Callable[..., Iterator[FakeLLMServer]]:
    """A pytest fixture serving a `FakeLLMServer` built with ``options``; assign it in a conftest::

        fake_llm = fake_llm_server_fixture(latency_s=0.01, answers={"hi": "hello"})

        def test_something(fake_llm):
            ...  # fake_llm.openai_base_url, fake_llm.requests, fake_llm.inject_faults(...)

    A function-scoped fixture gives each test a fresh server. With ``scope="session"`` one server is shared:
    call `FakeLLMServer.reset` at the start of a test that counts requests or schedules faults.

    Args:
        scope: the pytest fixture scope.
        **options: keyword arguments of `FakeLLMServer`.
    """
    import pytest

    def _fixture() -> Iterator[FakeLLMServer]:
        with FakeLLMServer(**options) as server:
            yield server

    return pytest.fixture(scope=scope)(_fixture)


__all__ = ["ANTHROPIC_PATH", "FAULT_KINDS", "OPENAI_PATH", "FakeLLMServer", "ReceivedRequest",
           "approx_tokens", "example_for_schema", "fake_llm_server_fixture", "last_user_text"]
