"""OpenAIProvider and AnthropicProvider driven through the real SDKs against the loopback fake server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
import time
import traceback

import jsonschema
import pytest

from promptlab.errors import MissingAPIKeyError, ProviderError
from promptlab.providers import make_provider
from promptlab.providers._anthropic import AnthropicProvider
from promptlab.providers._base import Message, OutputConstraint, Request
from promptlab.providers._openai import (
    LOCAL_DUMMY_KEY,
    OpenAIProvider,
    Secret,
    is_local_url,
    retry_after_seconds,
)
from promptlab.testing import ANTHROPIC_PATH, OPENAI_PATH, FakeLLMServer, fake_llm_server_fixture

KEY = "sk-test-SECRET-0123456789abcdef"
fake_llm = fake_llm_server_fixture(answers={"I loved it": "positive", "judge this": {"score": 4, "ok": True}})

FEW_SHOT = Request(
    model="m-1", system="Classify the sentiment.",
    messages=(Message("user", "Great film"), Message("assistant", "positive"), Message("user", "I loved it")),
    temperature=0.0, max_tokens=16, stop=("\n",),
)
SCHEMA = {"type": "object", "required": ["score", "ok"],
          "properties": {"score": {"type": "integer"}, "ok": {"type": "boolean"}}}
ENV_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No test may pick up a developer's real key or endpoint."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def make(kind: str, server: FakeLLMServer, **options):
    if kind == "openai":
        return OpenAIProvider(api_key=KEY, base_url=server.openai_base_url, **options)
    return AnthropicProvider(api_key=KEY, base_url=server.anthropic_base_url, **options)


def complete(provider, request: Request = FEW_SHOT, **options):
    async def go():
        try:
            return await provider.complete(request, **options)
        finally:
            await provider.aclose()
    return asyncio.run(go())


def failure(provider, request: Request = FEW_SHOT, **options) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        complete(provider, request, **options)
    return caught.value


PATHS = {"openai": OPENAI_PATH, "anthropic": ANTHROPIC_PATH}


# -- answers on the wire ------------------------------------------------------------------------------------


def test_openai_sends_system_and_few_shot_as_chat_messages(fake_llm):
    completion = complete(make("openai", fake_llm))
    assert (completion.text, completion.finish_reason) == ("positive", "stop")
    assert completion.model == "openai:m-1"
    assert (completion.input_tokens, completion.output_tokens) == (9, 1)  # whitespace words, see testing.py
    assert completion.latency_s > 0
    (body,) = fake_llm.bodies(OPENAI_PATH)
    assert body == {"model": "m-1", "temperature": 0.0, "max_tokens": 16, "stop": ["\n"], "messages": [
        {"role": "system", "content": "Classify the sentiment."}, {"role": "user", "content": "Great film"},
        {"role": "assistant", "content": "positive"}, {"role": "user", "content": "I loved it"}]}


def test_anthropic_sends_top_level_system_and_alternating_turns(fake_llm):
    completion = complete(make("anthropic", fake_llm))
    assert (completion.text, completion.finish_reason) == ("positive", "end_turn")
    assert completion.model == "anthropic:m-1"
    assert (completion.input_tokens, completion.output_tokens) == (9, 1)
    (body,) = fake_llm.bodies(ANTHROPIC_PATH)
    assert body == {"model": "m-1", "max_tokens": 16, "stop_sequences": ["\n"],  # no temperature: see module
                    "system": "Classify the sentiment.", "messages": [
                        {"role": "user", "content": "Great film"},
                        {"role": "assistant", "content": "positive"},
                        {"role": "user", "content": "I loved it"}]}


def test_empty_system_and_stop_are_left_out(fake_llm):
    bare = Request(model="m-1", system="", messages=(Message("user", "hi"),))
    complete(make("anthropic", fake_llm), bare)
    complete(make("openai", fake_llm), bare)
    anthropic_body, openai_body = fake_llm.bodies()
    assert not {"system", "stop_sequences"} & set(anthropic_body)
    assert "stop" not in openai_body
    assert [m["role"] for m in openai_body["messages"]] == ["user"]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_completion_reports_the_served_model_not_the_requested_alias(fake_llm, kind):
    fake_llm.served_model = "m-1-2025-06-01"
    assert complete(make(kind, fake_llm)).model == f"{kind}:m-1-2025-06-01"


def test_openai_max_tokens_parameter_name():
    assert "max_completion_tokens" in OpenAIProvider(api_key=KEY).request_params(FEW_SHOT)  # api.openai.com
    local = OpenAIProvider(base_url="http://localhost:11434/v1")
    assert "max_tokens" in local.request_params(FEW_SHOT)
    forced = OpenAIProvider(base_url="http://localhost:8000/v1", max_tokens_param="max_completion_tokens")
    assert forced.request_params(FEW_SHOT)["max_completion_tokens"] == 16
    with pytest.raises(ValueError, match="max_tokens_param"):
        OpenAIProvider(api_key=KEY, max_tokens_param="max_new_tokens")


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_complete_structured_returns_the_parsed_object(fake_llm, kind):
    request = Request(model="judge-1", system="Grade it.", messages=(Message("user", "judge this"),))

    async def go():
        provider = make(kind, fake_llm)
        try:
            return await provider.complete_structured(request, SCHEMA, name="grade")
        finally:
            await provider.aclose()

    completion, parsed = asyncio.run(go())
    assert parsed == {"score": 4, "ok": True}
    assert completion.model == f"{kind}:judge-1"
    (body,) = fake_llm.bodies()
    if kind == "anthropic":
        assert body["tool_choice"] == {"type": "tool", "name": "grade"}
        assert body["tools"][0]["input_schema"] == SCHEMA
        assert completion.finish_reason == "tool_use"
    else:
        assert body["response_format"]["json_schema"]["schema"] == SCHEMA


def test_structured_answer_that_is_not_json_is_a_retryable_invalid_output():
    with FakeLLMServer(answers="not json at all") as server:
        async def go():
            provider = make("openai", server)
            try:
                return await provider.complete_structured(FEW_SHOT, SCHEMA)
            finally:
                await provider.aclose()
        with pytest.raises(ProviderError) as caught:
            asyncio.run(go())
    assert (caught.value.error_type, caught.value.retryable) == ("invalid_output", True)


def test_make_provider_builds_hosted_providers(fake_llm):
    provider = make_provider("openai:gpt-4o-mini", api_key=KEY, base_url=fake_llm.openai_base_url)
    assert isinstance(provider, OpenAIProvider)
    assert isinstance(make_provider("claude-3-5-haiku-latest", api_key=KEY), AnthropicProvider)


@pytest.mark.parametrize(("kind", "loader"), [("openai", "_openai_sdk"), ("anthropic", "_anthropic_sdk")])
def test_the_sdk_loads_when_the_provider_is_built_never_inside_a_call(fake_llm, monkeypatch, kind, loader):
    """The SDK import (hundreds of ms) once ran inside the first complete(), on the event loop, with every
    other call of a run waiting (issue 13)."""
    import promptlab.providers._anthropic as anthropic_module
    import promptlab.providers._openai as openai_module

    module = openai_module if kind == "openai" else anthropic_module
    built = []
    real = getattr(module, loader)
    monkeypatch.setattr(module, loader, lambda: built.append(1) or real())
    provider = make(kind, fake_llm)
    assert built == [1]

    def no_import_now():
        raise AssertionError("the SDK was imported inside a call")

    monkeypatch.setattr(module, loader, no_import_now)
    assert complete(provider).text == "positive"
    assert complete(provider, timeout_s=5).text == "positive"  # a second loop, a new client, still no import


def test_one_provider_serves_several_event_loops(fake_llm):
    provider = make("openai", fake_llm)
    # each asyncio.run is a new loop with its own SDK client; complete() closes it before the loop ends,
    # as the runner must (an unclosed pool of a finished loop errors when garbage-collected)
    assert complete(provider).text == "positive"
    assert complete(provider).text == "positive"


# -- faults --------------------------------------------------------------------------------------------------

FAULTS = [  # fault kind, error_type, retryable
    ("rate_limit", "rate_limit", True),
    ("server_error", "server", True),
    ("overloaded", "overloaded", True),
    ("malformed_json", "bad_response", True),
    ("drop_connection", "connection", True),
    ("bad_request", "bad_request", False),
    ("unauthorized", "auth", False),
    ("forbidden", "auth", False),
    ("not_found", "not_found", False),
]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize(("fault", "error_type", "retryable"), FAULTS)
def test_each_fault_maps_to_its_error_type(fake_llm, kind, fault, error_type, retryable):
    fake_llm.inject_faults(fault)
    error = failure(make(kind, fake_llm, timeout_s=5))
    assert (error.error_type, error.retryable) == (error_type, retryable)
    assert fake_llm.request_count == 1, "the SDK retried on its own: max_retries must be 0"
    assert repr("m-1") in str(error) and fake_llm.base_url in str(error)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_rate_limit_carries_retry_after(kind):
    with FakeLLMServer(fault_schedule=["rate_limit"], retry_after_s=2.5) as server:
        error = failure(make(kind, server))
    assert error.retry_after_s == 2.5
    assert "Retry-After 2.5 s" in str(error)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_hang_becomes_a_timeout(fake_llm, kind):
    fake_llm.inject_faults("hang")
    started = time.perf_counter()
    error = failure(make(kind, fake_llm, timeout_s=30), timeout_s=0.3)  # the per-call timeout wins
    assert (error.error_type, error.retryable) == ("timeout", True)
    assert "0.3 s" in str(error)
    assert time.perf_counter() - started < 3


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_refused_connection_is_a_connection_error(kind):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    base_url = f"http://127.0.0.1:{port}" + ("/v1" if kind == "openai" else "")
    cls = OpenAIProvider if kind == "openai" else AnthropicProvider
    error = failure(cls(api_key=KEY, base_url=base_url, timeout_s=2))
    assert (error.error_type, error.retryable) == ("connection", True)


def test_retry_after_parsing():
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


# -- keys and secrets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "variable"), [(OpenAIProvider, "OPENAI_API_KEY"),
                                               (AnthropicProvider, "ANTHROPIC_API_KEY")])
def test_missing_key_names_the_variable(cls, variable):
    with pytest.raises(MissingAPIKeyError, match=variable):
        cls()
    with pytest.raises(MissingAPIKeyError, match=variable):
        cls(base_url="https://llm.example.com/v1")


def test_keys_and_base_urls_come_from_the_environment(fake_llm, monkeypatch):
    for name, value in fake_llm.env(KEY).items():
        monkeypatch.setenv(name, value)
    assert complete(OpenAIProvider()).text == "positive"
    assert complete(AnthropicProvider()).text == "positive"
    assert [entry.credential_sent for entry in fake_llm.requests] == [True, True]


def test_a_local_base_url_needs_no_key(fake_llm):
    provider = OpenAIProvider(base_url=fake_llm.openai_base_url)
    assert provider._secret.reveal() == LOCAL_DUMMY_KEY
    assert complete(provider).text == "positive"
    assert is_local_url("http://localhost:11434/v1") and is_local_url("http://[::1]:8080")
    assert not is_local_url("https://api.openai.com/v1")


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_the_key_never_leaks_through_a_401(kind, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeLLMServer(require_api_key="sk-the-right-one") as server:
        provider = make(kind, server)
        error = failure(provider)
    assert error.error_type == "auth" and not error.retryable
    shown = [str(error), repr(error), "".join(traceback.format_exception(error)), repr(provider),
             repr(vars(provider)), caplog.text, repr(server.requests)]
    assert all(KEY not in text for text in shown)
    assert error.__cause__ is None and error.__context__ is None  # the SDK error holds the auth header


def test_secret_redacts_itself():
    secret = Secret(KEY)
    assert KEY not in repr(secret) + str(secret) + f"{secret}"
    assert secret.redact(f"bad key {KEY}!") == "bad key ***!"
    assert secret.reveal() == KEY


# ---- structured output: native enforcement on the wire (issue 15) ------------------------------------------------
SENTIMENT = OutputConstraint.from_labels(["positive", "negative", "neutral"])
CLOSED = {"type": "object", "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative"]},
                                           "why": {"type": "string"}},
          "required": ["sentiment", "why"], "additionalProperties": False}
LABEL_SCHEMA = {"type": "object", "properties": {"label": {"type": "string", "enum": ["positive", "negative",
                                                                                    "neutral"]}},
                "required": ["label"], "additionalProperties": False}


def constrained(output, **fields):
    return dataclasses.replace(FEW_SHOT, output=output, **fields)


def test_openai_label_set_is_a_strict_json_schema_unwrapped_to_the_label(fake_llm):
    done = complete(make("openai", fake_llm), constrained(SENTIMENT))
    body = fake_llm.bodies()[-1]
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "label", "schema": LABEL_SCHEMA, "strict": True}}
    assert (done.text, done.parsed, done.format_ok, done.enforced, done.format_attempts) == (
        "positive", "positive", True, "native", 1)
    assert json.loads(done.raw["choices"][0]["message"]["content"]) == {"label": "positive"}  # what came back


@pytest.mark.parametrize("schema, strict", [(CLOSED, True), (SCHEMA, False)])
def test_openai_json_schema_is_strict_only_when_it_qualifies(schema, strict):
    answer = {"sentiment": "negative", "why": "broke"} if strict else {"score": 3, "ok": False}
    with FakeLLMServer(answers={"I loved it": answer}) as server:
        done = complete(make("openai", server), constrained(OutputConstraint.from_schema(schema)))
        sent = server.bodies()[-1]["response_format"]["json_schema"]
    assert (sent["name"], sent["schema"], sent["strict"]) == ("answer", schema, strict)
    assert (done.parsed, done.format_ok, done.enforced) == (answer, True, "native")
    jsonschema.validate(done.parsed, schema)


def test_openai_non_object_schema_travels_wrapped_and_comes_back_unwrapped():
    listing = OutputConstraint.from_schema({"type": "array", "items": {"type": "integer"}, "minItems": 1})
    with FakeLLMServer(answers={"I loved it": {"value": [3, 1]}}) as server:
        done = complete(make("openai", server), constrained(listing))
        sent = server.bodies()[-1]["response_format"]["json_schema"]
    assert sent["schema"]["properties"]["value"] == {"type": "array", "items": {"type": "integer"}, "minItems": 1}
    assert (done.text, done.parsed, done.format_ok) == ("[3, 1]", [3, 1], True)


def test_an_answer_outside_the_schema_is_a_row_with_the_error_not_a_crash():
    with FakeLLMServer(answers={"I loved it": {"label": "banana"}}) as server:  # a server that breaks its schema
        done = complete(make("openai", server), constrained(SENTIMENT))
    assert (done.text, done.parsed, done.format_ok, done.enforced) == ("banana", None, False, "native")
    assert done.format_error == "answer 'banana' is not one of the labels ['positive', 'negative', 'neutral']"


def test_openai_sends_every_sampling_param_and_ignores_none(fake_llm):
    done = complete(make("openai", fake_llm), constrained(None, top_p=0.9, seed=7, frequency_penalty=0.5,
                                                          presence_penalty=-0.5))
    body = fake_llm.bodies()[-1]
    assert (body["top_p"], body["seed"], body["frequency_penalty"], body["presence_penalty"]) == (0.9, 7, 0.5, -0.5)
    assert "ignored_params" not in done.raw and "response_format" not in body


def test_the_fake_server_refuses_an_out_of_range_sampling_param_like_the_api(fake_llm):
    with pytest.raises(ProviderError, match="Invalid 'top_p'") as info:
        complete(make("openai", fake_llm), constrained(None, top_p=1.5))
    assert info.value.error_type == "bad_request"


def test_anthropic_label_set_is_a_forced_tool_with_an_enum(fake_llm):
    done = complete(make("anthropic", fake_llm), constrained(SENTIMENT))
    body = fake_llm.bodies()[-1]
    assert body["tools"] == [{"name": "answer", "description": "Give your answer in this structure.",
                              "input_schema": LABEL_SCHEMA}]
    assert body["tool_choice"] == {"type": "tool", "name": "answer"}
    assert (done.text, done.parsed, done.format_ok, done.enforced) == ("positive", "positive", True, "native")
    assert done.raw["content"][0]["input"] == {"label": "positive"}


def test_anthropic_json_schema_answer_is_the_tool_input():
    with FakeLLMServer(answers={"I loved it": {"sentiment": "positive", "why": "loved"}}) as server:
        done = complete(make("anthropic", server), constrained(OutputConstraint.from_schema(CLOSED)))
        assert server.bodies()[-1]["tools"][0]["input_schema"] == CLOSED
    assert (done.parsed, done.format_ok, json.loads(done.text)) == ({"sentiment": "positive", "why": "loved"}, True,
                                                                    {"sentiment": "positive", "why": "loved"})


def test_anthropic_has_no_sampling_params_and_says_so(fake_llm):
    with pytest.warns(UserWarning, match="the anthropic provider has no"):
        done = complete(make("anthropic", fake_llm), constrained(SENTIMENT, top_p=0.9, seed=1))
    assert done.raw["ignored_params"] == ["seed", "top_p"]
    assert not {"top_p", "seed", "temperature"} & set(fake_llm.bodies()[-1])  # the API version would 400 on them


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_regex_is_validated_and_re_asked_on_both_apis(kind):
    def answer(body):
        return "maybe" if len(body["messages"]) < 5 else "yes"  # wrong first; right once re-asked

    regex = OutputConstraint.from_regex(r"^(yes|no)$")
    with FakeLLMServer(answers=answer) as server:
        done = complete(make(kind, server), constrained(regex))
        bodies = server.bodies()
    assert (done.text, done.parsed, done.format_ok, done.enforced, done.format_attempts) == (
        "yes", "yes", True, "validated", 2)
    assert "response_format" not in bodies[0] and "tools" not in bodies[0]
    assert [m["content"] for m in bodies[1]["messages"][-2:]][0] == "maybe"
    # the fake server counts words; both attempts' prompts are paid for, and both one-word answers
    words = [len(" ".join([b.get("system", "")] + [m["content"] for m in b["messages"]]).split()) for b in bodies]
    assert done.input_tokens == sum(words) and done.output_tokens == 2


@pytest.mark.parametrize("response_format, message", [
    ({"type": "json_schema", "json_schema": {"name": "bad name", "schema": LABEL_SCHEMA}}, "json_schema.name"),
    ({"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "string"}}},
     "schema must be a JSON Schema of 'type: \"object\"'"),
    ({"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA, "strict": True}},
     "'additionalProperties' is required to be supplied and to be false"),
    ({"type": "json_schema", "json_schema": {"name": "a", "schema": {**SCHEMA, "additionalProperties": False,
                                                                     "required": ["ok"]}, "strict": True}},
     "Missing 'score'"),
    ({"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object", "minProperties": "x"}}},
     "Invalid schema for response_format 'a'"),
    ({"type": "yaml"}, "response_format.type"),
])
def test_the_fake_server_checks_response_format_like_openai(fake_llm, response_format, message):
    import openai

    client = openai.OpenAI(api_key=KEY, base_url=fake_llm.openai_base_url, max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                       response_format=response_format)
    assert message in str(info.value)


@pytest.mark.parametrize("tools, tool_choice, message", [
    ([{"name": "answer", "input_schema": LABEL_SCHEMA}], {"type": "tool", "name": "other"}, "not found in tools"),
    ([{"name": "answer", "input_schema": {"type": "string"}}], {"type": "tool", "name": "answer"},
     "Invalid schema for tools.0.input_schema: schema must be a JSON Schema"),
    ([{"name": "an swer", "input_schema": LABEL_SCHEMA}], {"type": "auto"}, "tools.0.name"),
    ([], {"type": "any"}, "requires `tools`"),
    ([{"name": "answer", "input_schema": LABEL_SCHEMA}], {"type": "force"}, "tool_choice.type"),
])
def test_the_fake_server_checks_forced_tools_like_anthropic(fake_llm, tools, tool_choice, message):
    import anthropic

    client = anthropic.Anthropic(api_key=KEY, base_url=fake_llm.anthropic_base_url, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}], tools=tools,
                               tool_choice=tool_choice)
    assert message in str(info.value)
