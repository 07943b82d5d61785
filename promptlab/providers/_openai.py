"""`OpenAIProvider`: OpenAI Chat Completions through the official ``openai`` SDK — and any OpenAI-compatible
server (vLLM, Ollama, llama.cpp server, LiteLLM) through ``base_url``.

The key comes from ``api_key=`` or ``OPENAI_API_KEY``; the endpoint from ``base_url=`` or ``OPENAI_BASE_URL``.
A local endpoint (``localhost`` / ``127.x`` / ``::1``) needs no key: a dummy one is sent. The SDK's own
retries are off (``max_retries=0``) because promptlab's runner owns retries; every SDK failure becomes a
`ProviderError` whose ``error_type`` and ``retryable`` tell the runner what to do (see `translate_sdk_error`).

This module also holds what every SDK-based provider shares — `SDKProvider`, `Secret`, `translate_sdk_error`,
`retry_after_seconds` — because the ``openai`` and ``anthropic`` SDKs are generated from the same template
and raise the same exception shapes. Keys never appear in a repr, a message or a log line.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import ipaddress
import json
import logging
import os
import time
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from ..errors import ArgumentError, MissingAPIKeyError, MissingDependencyError, ProviderError
from ._base import SAMPLING_PARAMS, Completion, Provider, Request, normalise_endpoint
from ._ratelimit import RateLimiter, RateLimits, Ticket, limiter_for
from ._structured import (
    LABEL_KEY,
    conform,
    ignored_params,
    note_ignored,
    strict_eligible,
    unwrap,
    validate_and_reask,
    wire_schema,
)

logger = logging.getLogger(__name__)

LOCAL_DUMMY_KEY = "sk-no-key-required"
"""The key sent to a local OpenAI-compatible server when none is configured (such servers ignore it)."""

_STATUS_ERROR_TYPES = {400: "bad_request", 401: "auth", 403: "auth", 404: "not_found", 408: "timeout",
                       409: "conflict", 413: "bad_request", 422: "bad_request", 429: "rate_limit",
                       529: "overloaded"}
_RETRYABLE = frozenset({"rate_limit", "overloaded", "server", "timeout", "connection", "bad_response",
                        "conflict", "invalid_output"})


# -- shared by the SDK-based providers ---------------------------------------------------------------------


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` give ``'***'``; `reveal` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The secret value, for the one place that must send it."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the secret replaced by ``***``."""
        return text.replace(self._value, "***") if len(self._value) >= 4 else text

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def is_local_url(url: str) -> bool:
    """Whether ``url`` points at this machine (``localhost``, ``127.0.0.0/8``, ``::1``, ``0.0.0.0``)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def resolve_api_key(api_key: str | None, env_var: str, base_url: str, provider: str) -> Secret:
    """The key from the argument or ``env_var``; a dummy key for a local server; else `MissingAPIKeyError`."""
    key = api_key or os.environ.get(env_var)
    if key:
        return Secret(key)
    if is_local_url(base_url):
        return Secret(LOCAL_DUMMY_KEY)
    raise MissingAPIKeyError(
        f"the {provider} provider has no API key for base_url {base_url!r}: {env_var} is not set and no "
        f"api_key was passed. Set the environment variable {env_var} (for example in a .env file you do not "
        f"commit), or pass api_key=...; a local server (base_url on localhost) needs no key.")


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The server's retry hint: ``retry-after-ms``, else ``Retry-After`` as seconds or an HTTP date."""
    try:
        return max(float(headers["retry-after-ms"]) / 1000, 0.0)
    except (KeyError, TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def _body_message(body: object) -> str:
    """The human message of an API error body (OpenAI ``{error: {message}}`` or Anthropic's envelope)."""
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return str(body)[:300] if body else ""


_HINTS = {
    "rate_limit": "The runner retries after the Retry-After delay; lower max_concurrency if it persists.",
    "overloaded": "The service is overloaded; the runner retries with backoff.",
    "server": "A server-side failure; the runner retries with backoff.",
    "conflict": "A transient conflict; the runner retries.",
    "timeout": "No answer in time; raise timeout_s if the model is slow, or check that the server is up.",
    "connection": "Check base_url and that the server is running and reachable.",
    "bad_request": "The API rejected the request: check the model name and parameters.",
    "auth": "The API rejected the credentials: check the key (and that it may use this model).",
    "not_found": "Check the model id and base_url (OpenAI-compatible servers usually end in /v1).",
    "bad_response": "The server's answer was not valid JSON; the runner retries.",
    "client_error": "The API refused the request; see the message.",
}


def _status_error(exc: Any, context: str) -> tuple[str, str, float | None]:
    """(error_type, message, retry_after_s) of an HTTP status error."""
    status = exc.status_code
    error_type = _STATUS_ERROR_TYPES.get(status) or ("server" if status >= 500 else "client_error")
    retry_after = retry_after_seconds(exc.response.headers)
    detail = f"HTTP {status} ({error_type}): {_body_message(exc.body)!r}"
    if retry_after is not None:
        detail += f", Retry-After {retry_after:g} s"
    return error_type, f"{context} failed with {detail}.", retry_after


def translate_sdk_error(exc: BaseException, sdk: ModuleType, context: str, secret: Secret,
                        timeout_s: float, *, provider: str | None = None,
                        model: str | None = None) -> ProviderError | None:
    """The `ProviderError` for an ``openai`` / ``anthropic`` SDK exception, or None for anything else.

    Args:
        exc: the exception the SDK raised.
        sdk: the SDK module (its ``APITimeoutError``, ``APIStatusError``... classes are used).
        context: what was being done, e.g. ``"openai call to model 'gpt-4o-mini' at 'https://...'"``.
        secret: the API key, scrubbed from the message.
        timeout_s: the timeout in force, quoted in timeout messages.
        provider: the provider's name, carried on the error.
        model: the model id the call asked for, carried on the error.
    """
    retry_after = None
    if isinstance(exc, sdk.APITimeoutError):
        error_type, message = "timeout", f"{context} timed out after {timeout_s:g} s."
    elif isinstance(exc, sdk.APIStatusError):
        error_type, message, retry_after = _status_error(exc, context)
    elif isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc
        error_type, message = "connection", f"{context} lost the connection: {type(cause).__name__}: {cause}."
    elif isinstance(exc, sdk.APIResponseValidationError | json.JSONDecodeError):
        error_type, message = "bad_response", f"{context} got a malformed response body ({exc})."
    else:
        return None
    logger.debug("%s -> %s", context, error_type)
    status = getattr(exc, "status_code", None) if isinstance(exc, sdk.APIStatusError) else None
    body = secret.redact(str(getattr(exc, "body", None))) if status is not None else None
    return ProviderError(secret.redact(f"{message} {_HINTS[error_type]}"), error_type=error_type,
                         retryable=error_type in _RETRYABLE, retry_after_s=retry_after, status=status,
                         provider=provider, model=model, body=body)


def parse_json_object(text: str, context: str) -> dict:
    """``text`` parsed as a JSON object, or a retryable ``invalid_output`` `ProviderError`."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ProviderError(f"{context} answered {text[:200]!r}, which is not a JSON object. The runner "
                            "retries; if it persists, simplify the schema or strengthen the instructions.",
                            error_type="invalid_output", retryable=True)
    return value


class SDKProvider(Provider):
    """What the SDK-based providers share: key and base_url resolution, one SDK client per event loop,
    timing, error translation, a key-free repr. Subclasses set the class attributes and implement
    `_make_client` and `_send`.

    Args:
        api_key: the key; None reads the environment variable ``key_env``.
        base_url: the API endpoint; None reads ``base_url_env``, else the vendor's default.
        timeout_s: seconds before a call is abandoned as ``timeout`` (per call; `complete` may override).
        max_concurrency: calls the runner keeps in flight against this provider.
        rate_limits: your account's limits, to pace calls below them (`RateLimits` or ``{"rpm": ..., "tpm": ...}``
            for every model, or ``{"model-name": {...}, "*": {...}}`` per model); None learns them from the
            rate-limit headers; False turns the limiter off (calls go out as fast as the runner sends them).
    """

    key_env = ""
    base_url_env = ""
    default_base_url = ""
    native_output: frozenset[str] = frozenset()  # OutputConstraint kinds the API constrains; others are validated
    sampling_supported: frozenset[str] = frozenset()  # Request sampling params the API takes; others are ignored

    def __init__(self, *, api_key: str | None = None, base_url: str | None = None, timeout_s: float = 60.0,
                 max_concurrency: int | None = None, rate_limits: Any = None):
        self.base_url = (base_url or os.environ.get(self.base_url_env) or self.default_base_url).rstrip("/")
        self._endpoint = normalise_endpoint(self.base_url)
        self._rate_limits = _per_model_limits(rate_limits)
        self._limiters: dict[str, RateLimiter | None] = {}
        self.timeout_s = timeout_s
        # the SDK loads here, when the provider is built: a missing extra shows at once (before the key is even
        # looked up), and its import (hundreds of ms) never runs on the event loop inside the first call
        self._module = self._sdk()
        self._secret = resolve_api_key(api_key, self.key_env, self.base_url, self.name)
        if max_concurrency is not None:
            self.max_concurrency = max_concurrency
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(base_url={self.base_url!r}, timeout_s={self.timeout_s!r}, "
                f"max_concurrency={self.max_concurrency!r})")

    def cache_identity(self) -> dict[str, Any]:
        """Name, class and endpoint (normalised, credentials dropped) — never the key: a different key on
        the same endpoint gets the same answers, and a key must not be hashed into a file on disk."""
        return {**super().cache_identity(), "endpoint": self._endpoint}

    def _make_client(self, api_key: str) -> Any:
        """A new SDK client with retries off."""
        raise NotImplementedError

    async def _send(self, client: Any, request: Request, extra: dict, timeout_s: float) -> tuple[Any, Any]:
        """One SDK call through ``with_raw_response``; returns the parsed response and the HTTP headers."""
        raise NotImplementedError

    def _usage(self, response: Any) -> tuple[int | None, int | None]:
        """(input tokens, output tokens) a response reports, for settling the rate limiter."""
        raise NotImplementedError

    def limiter(self, model: str) -> RateLimiter | None:
        """The process-wide rate limiter for ``model`` on this endpoint (None when ``rate_limits=False``)."""
        try:
            return self._limiters[model]
        except KeyError:
            pass
        if self._rate_limits is False:
            limiter = None
        else:
            limits = self._rate_limits.get(model) or self._rate_limits.get("*")
            limiter = limiter_for(self.name, self._endpoint, model, limits)
        self._limiters[model] = limiter
        return limiter

    def _sdk(self) -> ModuleType:
        """The vendor's SDK module (imported when the provider is built, kept as ``_module``); its exception
        classes drive error translation. Raises `MissingDependencyError` naming the extra to install."""
        raise NotImplementedError

    def _completion(self, request: Request, response: Any, seconds: float) -> Completion:
        """The SDK response as a `Completion`."""
        raise NotImplementedError

    async def complete(self, request: Request, *, timeout_s: float | None = None) -> Completion:
        """Answer one request through the vendor's API (OpenAI Chat Completions, Anthropic Messages).

        Args:
            request: the provider-neutral request.
            timeout_s: overrides the provider's timeout for this call.

        Raises:
            ProviderError: with ``error_type`` rate_limit, overloaded, server, timeout, connection,
                bad_request, auth, not_found or bad_response.
        """
        if request.output is None:
            completion = await self._plain(request, timeout_s)
        elif request.output.kind in self.native_output:
            completion = await self._native(request, timeout_s)
        else:
            completion = await validate_and_reask(lambda current, _: self._plain(current, timeout_s), request)
        return note_ignored(completion, self.name, ignored_params(request, self.sampling_supported))

    async def _plain(self, request: Request, timeout_s: float | None) -> Completion:
        response, seconds = await self._call(request, {}, self._module, timeout_s)
        return self._completion(request, response, seconds)

    async def _native(self, request: Request, timeout_s: float | None) -> Completion:
        """One call with the API's own constraint on the answer's shape (`native_output` kinds)."""
        raise NotImplementedError

    def _client(self) -> Any:
        """The SDK client of the running event loop (HTTP connection pools cannot cross loops)."""
        loop = asyncio.get_running_loop()
        if loop not in self._clients:
            self._clients[loop] = self._make_client(self._secret.reveal())
        return self._clients[loop]

    def _context(self, request: Request) -> str:
        return f"{self.name} call to model {request.model!r} at {self.base_url!r}"

    async def _call(self, request: Request, extra: dict, sdk: ModuleType,
                    timeout_s: float | None) -> tuple[Any, float]:
        """Send through the SDK; returns (response, seconds) or raises a translated `ProviderError`."""
        timeout_s = timeout_s or self.timeout_s
        limiter = self.limiter(request.model)
        ticket = None if limiter is None else await limiter.acquire(request)
        started = time.perf_counter()
        try:
            response, headers = await self._send(self._client(), request, extra, timeout_s)
        except Exception as exc:
            error = translate_sdk_error(exc, sdk, self._context(request), self._secret, timeout_s,
                                        provider=self.name, model=request.model)
            if ticket is not None:
                _settle_failure(limiter, ticket, exc, error)
            if error is None:
                raise
        except BaseException:  # cancelled (a timeout around the call): free the place, keep the tokens spent
            if ticket is not None:
                limiter.release(ticket)
            raise
        else:
            seconds = time.perf_counter() - started
            if ticket is not None:
                input_tokens, output_tokens = self._usage(response)
                limiter.settle(ticket, headers=headers, input_tokens=input_tokens, output_tokens=output_tokens)
            return response, seconds
        # raised outside the handler: the SDK exception (it holds the request and its auth header) must not
        # ride along as __context__
        raise error

    async def aclose(self) -> None:
        """Close the SDK client of the running event loop."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()


def _per_model_limits(value: Any) -> dict[str, RateLimits] | bool:
    """``rate_limits=`` read as ``{model or "*": RateLimits}`` (False: no limiter)."""
    if value is False:
        return False
    if value is None or isinstance(value, RateLimits):
        return {"*": RateLimits.coerce(value)}
    if isinstance(value, Mapping) and set(value) <= {"rpm", "tpm", "max_in_flight"}:
        return {"*": RateLimits.coerce(value)}
    if isinstance(value, Mapping):
        return {str(model): RateLimits.coerce(limits) for model, limits in value.items()}
    raise ArgumentError(f"rate_limits must be RateLimits, {{'rpm': ..., 'tpm': ...}}, a mapping of model names to "
                        f"those, None or False; got {value!r}.")


async def parsed_and_headers(raw: Any) -> tuple[Any, Any]:
    """The parsed body and the headers of an SDK ``with_raw_response`` answer (``parse`` is a coroutine in some
    SDK versions, a plain method in others)."""
    parsed = raw.parse()
    if inspect.isawaitable(parsed):
        parsed = await parsed
    return parsed, raw.headers


def _settle_failure(limiter: RateLimiter, ticket: Ticket, exc: Exception, error: ProviderError | None) -> None:
    """Tell the limiter how a call failed: the HTTP status and headers of an error response, if there was one."""
    response = getattr(exc, "response", None) if error is not None and error.status is not None else None
    headers = getattr(response, "headers", None)
    limiter.fail(ticket, error_type=error.error_type if error is not None else None,
                 status=error.status if error is not None else None, headers=headers)


# -- OpenAI ----------------------------------------------------------------------------------------------


def _openai_sdk() -> ModuleType:
    try:
        import openai
    except ImportError:
        raise MissingDependencyError("the openai provider needs the openai SDK, an optional extra. Install it: "
                                     "pip install 'promptlab[openai]'") from None
    return openai


class OpenAIProvider(SDKProvider):
    """OpenAI Chat Completions (or an OpenAI-compatible server) through ``openai.AsyncOpenAI``.

    Args:
        api_key: the key; None reads ``OPENAI_API_KEY`` (a local base_url needs none).
        base_url: e.g. ``http://localhost:8000/v1`` for vLLM; None reads ``OPENAI_BASE_URL``,
            else ``https://api.openai.com/v1``.
        timeout_s: seconds before a call is abandoned as ``timeout``.
        max_concurrency: calls the runner keeps in flight.
        rate_limits: declared limits (see `SDKProvider`); None learns them from the ``x-ratelimit-*`` headers.
        max_tokens_param: the request field carrying ``Request.max_tokens``. ``"auto"`` sends
            ``max_completion_tokens`` to api.openai.com (required by o-series and newer models; ``max_tokens``
            is deprecated there) and ``max_tokens`` to other servers, which widely understand only that.
    """

    name = "openai"
    key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    native_output = frozenset({"labels", "json_schema"})
    sampling_supported = frozenset(SAMPLING_PARAMS)

    def __init__(self, *, api_key: str | None = None, base_url: str | None = None, timeout_s: float = 60.0,
                 max_concurrency: int | None = None, max_tokens_param: str = "auto", rate_limits: Any = None):
        super().__init__(api_key=api_key, base_url=base_url, timeout_s=timeout_s,
                         max_concurrency=max_concurrency, rate_limits=rate_limits)
        if max_tokens_param not in ("auto", "max_tokens", "max_completion_tokens"):
            raise ArgumentError(f"max_tokens_param must be 'auto', 'max_tokens' or 'max_completion_tokens', got "
                             f"{max_tokens_param!r}.")
        if max_tokens_param == "auto":
            official = urlsplit(self.base_url).hostname == "api.openai.com"
            max_tokens_param = "max_completion_tokens" if official else "max_tokens"
        self.max_tokens_param = max_tokens_param

    def cache_identity(self) -> dict[str, Any]:
        """The shared identity plus the field that carries ``max_tokens`` (servers may treat them apart)."""
        return {**super().cache_identity(), "max_tokens_param": self.max_tokens_param}

    def _make_client(self, api_key: str) -> Any:
        return self._module.AsyncOpenAI(api_key=api_key, base_url=self.base_url, max_retries=0,
                                        timeout=self.timeout_s)

    def request_params(self, request: Request) -> dict:
        """The Chat Completions arguments for a request: system message first, then the turns."""
        system = [{"role": "system", "content": request.system}] if request.system else []
        params = {"model": request.model, "temperature": request.temperature,
                  "messages": system + [{"role": m.role, "content": m.content} for m in request.messages],
                  self.max_tokens_param: request.max_tokens}
        if request.stop:
            params["stop"] = list(request.stop)
        params.update(request.sampling_params())  # top_p, seed, frequency_penalty, presence_penalty: when set
        return params

    async def _send(self, client: Any, request: Request, extra: dict, timeout_s: float) -> tuple[Any, Any]:
        params = {**self.request_params(request), **extra}
        raw = await client.chat.completions.with_raw_response.create(**params, timeout=timeout_s)
        return await parsed_and_headers(raw)

    def _usage(self, response: Any) -> tuple[int | None, int | None]:
        usage = response.usage
        return (usage.prompt_tokens, usage.completion_tokens) if usage else (None, None)

    async def _native(self, request: Request, timeout_s: float | None) -> Completion:
        """``response_format`` of type json_schema: strict when the schema qualifies; a label set as a strict
        ``{"label": enum}`` object, unwrapped to the label."""
        schema, key = wire_schema(request.output)
        strict = strict_eligible(schema)
        response_format = {"type": "json_schema", "json_schema": {
            "name": "label" if key == LABEL_KEY else "answer", "schema": schema, "strict": strict}}
        response, seconds = await self._call(request, {"response_format": response_format}, self._module, timeout_s)
        completion = self._completion(request, response, seconds)
        refusal = getattr(response.choices[0].message, "refusal", None)
        return conform(completion, request.output, enforced="native", text=unwrap(completion.text, key),
                       refusal=refusal)

    def _completion(self, request: Request, response: Any, seconds: float) -> Completion:
        if not response.choices:
            raise ProviderError(f"{self._context(request)} returned no choices. The runner retries.",
                                error_type="bad_response", retryable=True)
        choice, usage = response.choices[0], response.usage
        return Completion(
            text=choice.message.content or "", latency_s=seconds,
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
            model=self.model_id(response.model or request.model), finish_reason=choice.finish_reason,
            raw=response.model_dump(mode="json", exclude_none=True),
        )

    def _sdk(self) -> ModuleType:
        return _openai_sdk()

    async def complete_structured(
        self, request: Request, json_schema: dict, *, name: str = "result", strict: bool = False,
        timeout_s: float | None = None,
    ) -> tuple[Completion, dict]:
        """Answer with a JSON object following ``json_schema`` (``response_format`` of type json_schema).

        Args:
            request: the provider-neutral request.
            json_schema: the JSON schema of the answer (an object schema).
            name: the schema's name as sent to the API.
            strict: ask for strict schema adherence (the schema must then meet OpenAI's strict-mode rules).
            timeout_s: overrides the provider's timeout for this call.

        Returns:
            The completion (its text is the JSON) and the parsed object.
        """
        response_format = {"type": "json_schema", "json_schema": {"name": name, "schema": json_schema,
                                                                  "strict": strict}}
        response, seconds = await self._call(request, {"response_format": response_format}, self._module,
                                             timeout_s)
        completion = self._completion(request, response, seconds)
        return completion, parse_json_object(completion.text, self._context(request))


__all__ = ["LOCAL_DUMMY_KEY", "OpenAIProvider", "SDKProvider", "Secret", "is_local_url", "parse_json_object",
           "resolve_api_key", "retry_after_seconds", "translate_sdk_error"]
