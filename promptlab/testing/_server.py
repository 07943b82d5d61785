"""`FakeLLMServer`: the loopback server (aiohttp in a background thread), its request log and faults, and the
pytest fixture. aiohttp comes with the ``testing`` extra; without it, building a server raises
`MissingDependencyError` naming the pip command."""

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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

from ..errors import ArgumentError, MissingDependencyError, StateError
from ._limits import ServerLimits, Verdict, check_limit, rate_limit_message, retry_headers
from ._wire import (
    _STATUS_FAULTS,
    ANTHROPIC_PATH,
    OPENAI_PATH,
    Answer,
    Answers,
    _anthropic_payload,
    _check_kinds,
    _check_rates,
    _openai_payload,
    _validate,
    last_user_text,
)

logger = logging.getLogger(__name__)

_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"})


def _aiohttp_web() -> ModuleType:
    """``aiohttp.web``, or `MissingDependencyError` with the pip command (aiohttp is the ``testing`` extra)."""
    try:
        from aiohttp import web
    except ImportError:
        raise MissingDependencyError("the fake LLM server needs aiohttp. Install it: "
                                     "pip install 'promptlab[testing]'") from None
    return web



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
        fault: the fault injected into the response, ``"rate_limit"`` when the server's own RPM/TPM buckets
            refused it, or None.
        received_at: when it arrived, as ``time.time()`` (comparable across processes: a benchmark times
            process start to first request with it).
    """

    index: int
    path: str
    body: dict | None
    headers: dict[str, str] = field(repr=False)
    credential_sent: bool
    fault: str | None
    received_at: float = 0.0


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
        rpm: requests per minute the server admits (a token bucket, see `_limits`); None: no limit.
        tpm: tokens (input + output words) per minute the server admits; None: no limit. With either limit set,
            every response carries the vendor's rate-limit headers and a refused request gets the vendor's 429.
        slots: requests answered at once, like an inference server's batch size; more wait their turn (their
            latency starts when a slot frees). None: no limit.
    """

    def __init__(self, *, answers: Answers = None, latency_s: float | Callable[[dict], float] = 0.0,
                 served_model: str | None = None, fault_rates: Mapping[str, float] | None = None,
                 fault_schedule: Iterable[str | None] = (), retry_after_s: float = 1.0, seed: int = 0,
                 require_api_key: str | None = None, port: int = 0, rpm: float | None = None,
                 tpm: float | None = None, slots: int | None = None):
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
        rpm, tpm = check_limit("rpm", rpm), check_limit("tpm", tpm)
        self.limits = ServerLimits(rpm, tpm) if rpm or tpm else None
        if slots is not None and (isinstance(slots, bool) or not isinstance(slots, int) or slots < 1):
            raise ArgumentError(f"FakeLLMServer slots must be a whole number ≥ 1 or None, got {slots!r}.")
        self.slots = slots
        self._slots: asyncio.Semaphore | None = None  # made on the server's loop
        self._web = _aiohttp_web()  # here, so a missing extra shows when the server is built

    def __repr__(self) -> str:
        where = self.base_url if self._port else "not started"
        return f"FakeLLMServer({where}, requests={self.request_count}, served_model={self.served_model!r})"

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        """Bind 127.0.0.1 on a free port and serve from a background thread; returns the server."""
        if self._thread is not None:
            raise StateError(f"{self!r} is already running. Call stop() before starting it again.")
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
        web = self._web

        app = web.Application(client_max_size=16 * 2**20)
        app.router.add_post(OPENAI_PATH, self._handle_openai)
        app.router.add_post(ANTHROPIC_PATH, self._handle_anthropic)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        self._closing = asyncio.Event()
        self._slots = asyncio.Semaphore(self.slots) if self.slots else None
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
            raise StateError("the fake LLM server has no port yet. Call start() or use it in a `with` "
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
            entry = ReceivedRequest(len(self._log), path, body, kept, credential, fault, time.time())
            self._log.append(entry)
        return entry

    def _mark_rate_limited(self, entry: ReceivedRequest) -> None:
        with self._lock:
            if entry.index < len(self._log) and self._log[entry.index] is entry:
                self._log[entry.index] = replace(entry, fault="rate_limit")

    @property
    def rate_limited_count(self) -> int:
        """How many requests the server's RPM/TPM buckets refused with a 429 (not counting injected faults)."""
        return 0 if self.limits is None else self.limits.rejected

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
        answer = None
        if self.limits is not None and entry.fault is None:  # admitted (or refused) on arrival, as APIs do
            answer = self._admit(body, wire, request.headers, entry)
            if answer is not None and answer.status == 429:
                return answer
        response = await self._respond(request, body, wire, entry, answer)
        if self.limits is not None and response is not answer and not response.prepared:
            response.headers.update(self.limits.headers(wire))  # errors report the buckets as they are now
        return response

    async def _respond(self, request: Any, body: dict | None, wire: str, entry: ReceivedRequest,
                       answer: Any) -> Any:
        if self._slots is not None:
            async with self._slots:
                await self._wait_latency(body)
        else:
            await self._wait_latency(body)
        if entry.fault is not None:
            return await self._fault_response(request, wire, entry.fault)
        if answer is not None:
            return answer
        if not self._credential_ok(request.headers):
            return self._status_fault(wire, "unauthorized", "invalid x-api-key / Authorization credential")
        problem = _validate(body, wire, request.headers)
        if problem:
            return _error_response(wire, 400, "invalid_request_error", problem)
        return self._answer_response(body, wire)

    async def _wait_latency(self, body: dict | None) -> None:
        latency = self.latency_s(body or {}) if callable(self.latency_s) else self.latency_s
        if latency:
            await asyncio.sleep(latency)

    def _admit(self, body: dict | None, wire: str, headers: Mapping[str, str], entry: ReceivedRequest) -> Any:
        """The answer of a valid request the buckets admit, a 429 for one they refuse, or None for a request
        that fails otherwise (bad credential or body: answered as usual, costing nothing)."""
        if not self._credential_ok(headers) or _validate(body, wire, headers):
            return None
        answer = self._answer_response(body, wire)
        if answer.status != 200:
            return answer
        usage = json.loads(answer.body)["usage"]
        tokens = usage.get("total_tokens", usage.get("input_tokens", 0) + usage.get("output_tokens", 0))
        verdict = self.limits.admit(tokens)
        if verdict.admitted:
            answer.headers.update(self.limits.headers(wire))  # what was left when this request was admitted
            return answer
        self._mark_rate_limited(entry)
        return self._rate_limited(wire, verdict, self.served_model or body["model"])

    def _rate_limited(self, wire: str, verdict: Verdict, model: str) -> Any:
        error_type, message = rate_limit_message(wire, verdict, model, self.limits)
        headers = {**retry_headers(wire, verdict.retry_after_s), **self.limits.headers(wire)}
        return _error_response(wire, 429, error_type, message, headers, code="rate_limit_exceeded")

    def _answer_response(self, body: dict, wire: str) -> Any:
        web = self._web

        model = self.served_model or body["model"]
        try:
            payload = (_openai_payload if wire == "openai" else _anthropic_payload)(self, body, model)
        except Exception as error:  # a user's answer function failed: report it as a 500 with the cause
            logger.debug("fake LLM server answer function raised %r", error)
            return _error_response(wire, 500, "api_error", f"the answer function raised {error!r}")
        header = "x-request-id" if wire == "openai" else "request-id"
        return web.json_response(payload, headers={header: f"req_{uuid.uuid4().hex[:24]}"})

    async def _fault_response(self, request: Any, wire: str, fault: str) -> Any:
        web = self._web

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


async def _read_json(request: Any) -> dict | None:
    try:
        body = await request.json(loads=json.loads)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error_response(wire: str, status: int, error_type: str, message: str,
                    headers: Mapping[str, str] | None = None, code: str | None = None) -> Any:
    web = _aiohttp_web()

    request_id = f"req_{uuid.uuid4().hex[:24]}"
    if wire == "anthropic":
        body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
        headers = {"request-id": request_id, **(headers or {})}
    else:
        body = {"error": {"message": message, "type": error_type, "param": None, "code": code or error_type}}
        headers = {"x-request-id": request_id, **(headers or {})}
    return web.json_response(body, status=status, headers=headers)


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
