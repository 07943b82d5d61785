"""The loopback fake LLM server, driven by the real openai and anthropic SDKs (no network)."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request

import anthropic
import openai
import pytest

from promptlab.errors import ArgumentError
from promptlab.providers._ratelimit_headers import go_duration_seconds
from promptlab.testing import (
    ANTHROPIC_PATH,
    FAULT_KINDS,
    OPENAI_PATH,
    FakeLLMServer,
    example_for_schema,
    fake_llm_server_fixture,
    last_user_text,
)

KEY = "sk-test-0123456789abcdef"
fake_llm = fake_llm_server_fixture()


def openai_client(server: FakeLLMServer, timeout: float = 5.0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0, timeout=timeout)


def anthropic_client(server: FakeLLMServer, timeout: float = 5.0) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=KEY, base_url=server.anthropic_base_url, max_retries=0,
                                    timeout=timeout)


def openai_call(server: FakeLLMServer, timeout: float = 5.0, **params):
    async def go():
        async with openai_client(server, timeout) as client:
            return await client.chat.completions.create(**{"model": "gpt-test", **params})
    return asyncio.run(go())


def anthropic_call(server: FakeLLMServer, timeout: float = 5.0, **params):
    async def go():
        async with anthropic_client(server, timeout) as client:
            return await client.messages.create(**{"model": "claude-test", "max_tokens": 64, **params})
    return asyncio.run(go())


USER_HI = [{"role": "user", "content": "hello there"}]


# -- wire formats -----------------------------------------------------------------------------------------


def test_openai_sdk_parses_a_chat_completion(fake_llm):
    response = openai_call(fake_llm, messages=[{"role": "system", "content": "be brief"}, *USER_HI])
    assert response.id.startswith("chatcmpl-")
    assert response.object == "chat.completion"
    assert response.model == "gpt-test"
    choice = response.choices[0]
    assert (choice.message.role, choice.message.content, choice.finish_reason) == (
        "assistant", "echo: hello there", "stop")
    # whitespace words: "be brief" + "hello there" in, "echo: hello there" out
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (
        4, 3, 7)


def test_anthropic_sdk_parses_a_message(fake_llm):
    response = anthropic_call(fake_llm, system="be brief", messages=USER_HI)
    assert response.id.startswith("msg_")
    assert (response.type, response.role, response.model) == ("message", "assistant", "claude-test")
    assert [(block.type, block.text) for block in response.content] == [("text", "echo: hello there")]
    assert response.stop_reason == "end_turn"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4, 3)


def test_scripted_answers_by_mapping_rule_and_fixed_text():
    with FakeLLMServer(answers={"hello there": "general kenobi"}) as server:
        assert openai_call(server, messages=USER_HI).choices[0].message.content == "general kenobi"
        other = [{"role": "user", "content": "unscripted"}]
        assert anthropic_call(server, messages=other).content[0].text == "echo: unscripted"
    with FakeLLMServer(answers=lambda body: last_user_text(body).upper()) as server:
        assert anthropic_call(server, messages=USER_HI).content[0].text == "HELLO THERE"
    with FakeLLMServer(answers="always this") as server:
        assert openai_call(server, messages=USER_HI).choices[0].message.content == "always this"


def test_last_user_text_reads_content_blocks():
    blocks = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    body = {"messages": [{"role": "user", "content": blocks}, {"role": "assistant", "content": "x"}]}
    assert last_user_text(body) == "a b"
    assert last_user_text({"messages": []}) == ""


def test_served_model_override_can_change_mid_run(fake_llm):
    fake_llm.served_model = "gpt-test-2024-01-01"
    assert openai_call(fake_llm, messages=USER_HI).model == "gpt-test-2024-01-01"
    fake_llm.served_model = "gpt-test-2025-06-01"  # the alias now points at another snapshot
    assert openai_call(fake_llm, messages=USER_HI).model == "gpt-test-2025-06-01"
    assert anthropic_call(fake_llm, messages=USER_HI).model == "gpt-test-2025-06-01"


def test_stop_sequences_and_max_tokens_set_the_finish_reason():
    with FakeLLMServer(answers="one two three four five") as server:
        hit = anthropic_call(server, messages=USER_HI, stop_sequences=[" three"])
        assert (hit.content[0].text, hit.stop_sequence) == ("one two", " three")
        assert hit.stop_reason == "stop_sequence"
        cut = anthropic_call(server, messages=USER_HI, max_tokens=2)
        assert (cut.content[0].text, cut.stop_reason, cut.usage.output_tokens) == ("one two", "max_tokens", 2)
        stopped = openai_call(server, messages=USER_HI, stop=[" four"]).choices[0]
        assert (stopped.message.content, stopped.finish_reason) == ("one two three", "stop")
        long = openai_call(server, messages=USER_HI, max_completion_tokens=3).choices[0]
        assert (long.message.content, long.finish_reason) == ("one two three", "length")


GRADE_SCHEMA = {"type": "object", "required": ["score", "label"], "properties": {
    "score": {"type": "integer", "minimum": 1}, "label": {"enum": ["good", "bad"]}}}


def test_anthropic_forced_tool_returns_a_tool_use_block():
    with FakeLLMServer(answers={"judge": {"score": 5, "label": "good"}}) as server:
        tools = [{"name": "grade", "input_schema": GRADE_SCHEMA}]
        response = anthropic_call(server, messages=[{"role": "user", "content": "judge"}], tools=tools,
                                  tool_choice={"type": "tool", "name": "grade"})
        assert response.stop_reason == "tool_use"
        (block,) = response.content
        assert (block.type, block.name, block.input) == ("tool_use", "grade", {"score": 5, "label": "good"})
        assert block.id.startswith("toolu_")
        default = anthropic_call(server, messages=USER_HI, tools=tools, tool_choice={"type": "any"})
        assert default.content[0].input == {"score": 1, "label": "good"}  # a minimal instance of the schema


def test_openai_json_schema_answer_is_json_text():
    with FakeLLMServer(answers={"judge": {"score": 4, "label": "bad"}}) as server:
        response_format = {"type": "json_schema", "json_schema": {"name": "grade", "schema": GRADE_SCHEMA}}
        response = openai_call(server, messages=[{"role": "user", "content": "judge"}],
                               response_format=response_format)
        assert json.loads(response.choices[0].message.content) == {"score": 4, "label": "bad"}
        default = openai_call(server, messages=USER_HI, response_format=response_format)
        assert json.loads(default.choices[0].message.content) == {"score": 1, "label": "good"}


def test_openai_forced_function_tool_returns_tool_calls(fake_llm):
    tools = [{"type": "function", "function": {"name": "grade", "parameters": GRADE_SCHEMA}}]
    choice = openai_call(fake_llm, messages=USER_HI, tools=tools, tool_choice="required").choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "grade"
    assert json.loads(call.function.arguments) == {"score": 1, "label": "good"}


def test_example_for_schema_covers_common_keywords():
    schema = {"type": "object", "required": ["a", "b", "c", "d"], "properties": {
        "a": {"type": "string"}, "b": {"type": ["null", "number"]}, "c": {"const": "x"},
        "d": {"type": "array", "items": {"type": "boolean"}, "minItems": 2}}}
    assert example_for_schema(schema) == {"a": "", "b": 0, "c": "x", "d": [False, False]}


# -- counting and the request log --------------------------------------------------------------------------


def test_counts_and_log_never_hold_credentials(fake_llm):
    openai_call(fake_llm, messages=USER_HI)
    anthropic_call(fake_llm, messages=USER_HI)
    anthropic_call(fake_llm, messages=USER_HI)
    assert fake_llm.request_count == 3
    assert fake_llm.counts_by_path == {OPENAI_PATH: 1, ANTHROPIC_PATH: 2}
    assert fake_llm.bodies(OPENAI_PATH) == [{"model": "gpt-test", "messages": USER_HI}]
    assert all(entry.credential_sent for entry in fake_llm.requests)
    assert KEY not in repr(fake_llm.requests) + json.dumps([e.headers for e in fake_llm.requests])
    assert not {"authorization", "x-api-key"} & set(fake_llm.requests[1].headers)
    assert fake_llm.requests[1].headers["anthropic-version"]  # other headers are kept
    fake_llm.reset()
    assert fake_llm.request_count == 0


def test_require_api_key_answers_401_for_a_wrong_key():
    with FakeLLMServer(require_api_key="sk-right-key") as server:
        with pytest.raises(openai.AuthenticationError):
            openai_call(server, messages=USER_HI)
        with pytest.raises(anthropic.AuthenticationError):
            anthropic_call(server, messages=USER_HI)


def test_invalid_requests_get_400_and_unknown_paths_404(fake_llm):
    with pytest.raises(anthropic.BadRequestError, match="top-level `system`"):
        anthropic_call(fake_llm, messages=[{"role": "system", "content": "x"}, *USER_HI])
    with pytest.raises(openai.BadRequestError, match="messages"):
        openai_call(fake_llm, messages=[])
    fake_llm.inject_faults("server_error")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{fake_llm.base_url}/v2/nothing", timeout=5)
    assert caught.value.code == 404
    assert "no route" in json.loads(caught.value.read())["error"]["message"]
    with pytest.raises(openai.InternalServerError):  # the unknown route did not use up the scheduled fault
        openai_call(fake_llm, messages=USER_HI)


# -- faults -------------------------------------------------------------------------------------------------


def test_rate_limit_fault_sends_retry_after_in_each_format():
    with FakeLLMServer(fault_schedule=["rate_limit", "rate_limit"], retry_after_s=2.5) as server:
        with pytest.raises(openai.RateLimitError) as caught:
            openai_call(server, messages=USER_HI)
        assert caught.value.response.headers["retry-after"] == "3"
        assert caught.value.response.headers["retry-after-ms"] == "2500"
        assert caught.value.body["type"] == "rate_limit_exceeded"
        with pytest.raises(anthropic.RateLimitError) as caught:
            anthropic_call(server, messages=USER_HI)
        assert caught.value.type == "rate_limit_error"
        assert anthropic_call(server, messages=USER_HI).content[0].text == "echo: hello there"


def test_server_errors_and_overloaded_use_the_vendor_error_body(fake_llm):
    fake_llm.inject_faults("server_error", "overloaded", None, "overloaded")
    with pytest.raises(anthropic.InternalServerError) as caught:
        anthropic_call(fake_llm, messages=USER_HI)
    assert (caught.value.status_code, caught.value.type) == (500, "api_error")
    with pytest.raises(anthropic.OverloadedError) as caught:
        anthropic_call(fake_llm, messages=USER_HI)
    assert caught.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": (
        "injected fault 'overloaded' (HTTP 529)")}, "request_id": caught.value.request_id}
    anthropic_call(fake_llm, messages=USER_HI)  # the None entry answers normally
    with pytest.raises(openai.InternalServerError) as caught:
        openai_call(fake_llm, messages=USER_HI)
    assert caught.value.status_code == 529
    assert [entry.fault for entry in fake_llm.requests] == ["server_error", "overloaded", None, "overloaded"]


def test_malformed_json_and_dropped_connection(fake_llm):
    fake_llm.inject_faults("malformed_json", "drop_connection", "drop_connection")
    with pytest.raises(json.JSONDecodeError):  # the SDKs let the decoder's error through
        openai_call(fake_llm, messages=USER_HI)
    with pytest.raises(openai.APIConnectionError):
        openai_call(fake_llm, messages=USER_HI)
    with pytest.raises(anthropic.APIConnectionError):
        anthropic_call(fake_llm, messages=USER_HI)


def test_hang_lasts_until_the_client_times_out(fake_llm):
    fake_llm.inject_faults("hang")
    started = time.perf_counter()
    with pytest.raises(anthropic.APITimeoutError):
        anthropic_call(fake_llm, timeout=0.3, messages=USER_HI)
    assert 0.25 < time.perf_counter() - started < 3


def test_fault_rates_are_seeded_and_reproducible():
    def faults(seed: int) -> list:
        with FakeLLMServer(fault_rates={"server_error": 0.5}, seed=seed) as server:
            for _ in range(12):
                try:
                    openai_call(server, messages=USER_HI)
                except openai.InternalServerError:
                    pass
            return [entry.fault for entry in server.requests]
    first = faults(7)
    assert first == faults(7)
    assert 0 < first.count("server_error") < 12


def test_bad_fault_configuration_is_refused():
    with pytest.raises(ValueError, match="unknown fault kinds"):
        FakeLLMServer(fault_schedule=["teapot"])
    with pytest.raises(ValueError, match="at most 1"):
        FakeLLMServer(fault_rates={"hang": 0.7, "server_error": 0.5})
    assert "drop_connection" in FAULT_KINDS


# -- lifecycle, latency, concurrency -------------------------------------------------------------------------


def test_lifecycle_and_addresses():
    server = FakeLLMServer()
    with pytest.raises(RuntimeError, match="Call start"):
        server.port  # noqa: B018
    with server:
        assert server.openai_base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.anthropic_base_url == f"http://127.0.0.1:{server.port}"
        assert server.env("k")["OPENAI_BASE_URL"] == server.openai_base_url
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    server.stop()  # a second stop is harmless


def test_latency_callable_sees_the_request():
    with FakeLLMServer(latency_s=lambda body: 0.3 if last_user_text(body) == "slow" else 0.0) as server:
        started = time.perf_counter()
        openai_call(server, messages=USER_HI)
        fast = time.perf_counter() - started
        openai_call(server, messages=[{"role": "user", "content": "slow"}])
        assert time.perf_counter() - started - fast >= 0.3


def test_fifty_concurrent_requests_with_latency_overlap():
    async def burst(server: FakeLLMServer) -> float:
        async with openai_client(server) as client:
            started = time.perf_counter()
            await asyncio.gather(*(client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": f"q{i}"}]) for i in range(50)))
            return time.perf_counter() - started

    with FakeLLMServer(latency_s=0.2) as server:
        cpu_started = time.process_time()
        elapsed = asyncio.run(burst(server))
        cpu = time.process_time() - cpu_started
        assert server.request_count == 50
    assert elapsed < 1.5, f"50 concurrent 200 ms requests took {elapsed:.2f} s: the server serialises them"
    assert cpu < 3.0, f"{cpu:.2f} s of CPU for 50 requests (client + server): the server is busy-waiting"


def test_sampling_parameters_are_refused_under_the_2026_api_version(fake_llm):
    # anthropic 2.x sends anthropic-version 2026-10-21: the API answers 400 to temperature/top_p/top_k
    with pytest.raises(anthropic.BadRequestError, match="temperature: Extra inputs are not permitted"):
        anthropic_call(fake_llm, messages=USER_HI, extra_body={"temperature": 1.0})
    older = {"anthropic-version": "2023-06-01"}
    assert anthropic_call(fake_llm, messages=USER_HI, extra_body={"temperature": 0.0}, extra_headers=older)


# -- rate limits: RPM and TPM buckets, headers and 429 bodies -------------------------------------------------


def raw_openai(server: FakeLLMServer, content: str = "hello there", times: int = 1, pause_s: float = 0.0):
    """(status, headers, body) of ``times`` calls made back to back on one client (the first one's, when once)."""
    async def one(client):
        try:
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-test", messages=[{"role": "user", "content": content}])
        except openai.APIStatusError as error:
            return error.status_code, error.response.headers, error.body
        return raw.status_code, raw.headers, raw.parse()

    async def go():
        async with openai_client(server) as client:
            results = []
            for _ in range(times):
                results.append(await one(client))
                await asyncio.sleep(pause_s)
            return results
    results = asyncio.run(go())
    return results[0] if times == 1 else results


def raw_anthropic(server: FakeLLMServer, content: str = "hello there"):
    async def go():
        async with anthropic_client(server) as client:
            try:
                raw = await client.messages.with_raw_response.create(
                    model="claude-test", max_tokens=64, messages=[{"role": "user", "content": content}])
            except anthropic.APIStatusError as error:
                return error.status_code, error.response.headers, error.body
            return raw.status_code, raw.headers, await raw.parse()
    return asyncio.run(go())


def test_rate_limited_server_sends_openai_headers_on_every_answer():
    with FakeLLMServer(rpm=6, tpm=150_000) as server:  # one request per 10 s: no refill between the calls
        (_, first, response), (_, second, _) = raw_openai(server, times=2)
    assert first["x-ratelimit-limit-requests"] == "6" and first["x-ratelimit-limit-tokens"] == "150000"
    assert first["x-ratelimit-remaining-requests"] == "5"
    used = response.usage.total_tokens  # input words + answer words, taken from the token bucket
    assert 150_000 - used <= int(first["x-ratelimit-remaining-tokens"]) <= 150_000 - used + 100
    assert second["x-ratelimit-remaining-requests"] == "4"
    assert go_duration_seconds(first["x-ratelimit-reset-requests"]) == pytest.approx(10, abs=1)  # "10s": 1 to refill


def test_rate_limited_server_sends_anthropic_headers_on_every_answer():
    with FakeLLMServer(rpm=50, tpm=40_000) as server:
        _, headers, _ = raw_anthropic(server)
    assert headers["anthropic-ratelimit-requests-limit"] == "50"
    assert headers["anthropic-ratelimit-requests-remaining"] == "49"
    assert headers["anthropic-ratelimit-tokens-limit"] == "40000"
    reset = headers["anthropic-ratelimit-requests-reset"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", reset)  # RFC 3339, as Anthropic writes it


def test_requests_past_the_rpm_get_openais_429():
    with FakeLLMServer(rpm=60) as server:
        server.limits.drain(requests=1)
        (first, *_), (status, headers, body) = raw_openai(server, times=2)
        assert first == 200
        assert server.rate_limited_count == 1 and server.requests[-1].fault == "rate_limit"
    assert status == 429
    assert body["code"] == "rate_limit_exceeded" and body["type"] == "requests"
    assert re.fullmatch(r"Rate limit reached for gpt-test in organization org-fake on requests per min \(RPM\): "
                        r"Limit 60, Used 60, Requested 1\. Please try again in \d+ms\. Visit "
                        r"https://platform\.openai\.com/account/rate-limits to learn more\.", body["message"])
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(headers["retry-after"]) and 0 < int(headers["retry-after-ms"]) <= 1000


def test_tokens_past_the_tpm_get_anthropics_429():
    with FakeLLMServer(tpm=1200) as server:  # 20 tokens per second
        server.limits.drain(tokens=0)
        status, headers, body = raw_anthropic(server, "a b c d e f g h i j " * 10)  # ~200 tokens
    assert status == 429
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "1,200 tokens per minute" in body["error"]["message"]
    assert int(headers["retry-after"]) >= 2 and "retry-after-ms" not in headers  # whole seconds, as Anthropic sends
    assert int(headers["anthropic-ratelimit-tokens-remaining"]) < 200


def test_a_request_larger_than_the_token_limit_is_always_refused():
    with FakeLLMServer(tpm=10) as server:
        status, _, body = raw_openai(server, "word " * 50)
    assert status == 429 and body["type"] == "tokens" and body["message"].startswith("Request too large")


def test_the_buckets_refill_continuously():
    with FakeLLMServer(rpm=6) as server:  # one request per 10 s
        server.limits.drain(requests=0.9)  # 1 s before the next request fits
        (refused, *_), (admitted, *_) = raw_openai(server, times=2, pause_s=1.1)
    assert (refused, admitted) == (429, 200)
    assert server.limits.admitted == 1 and server.limits.rejected == 1


def test_refused_requests_take_nothing_from_the_buckets():
    with FakeLLMServer(rpm=600, tpm=100) as server:
        server.limits.drain(requests=600, tokens=3)
        assert raw_openai(server, "one two three four five")[0] == 429
        assert server.limits.requests.level == pytest.approx(600, abs=1)


def test_errors_of_a_limited_server_carry_the_headers_too():
    with FakeLLMServer(rpm=600, fault_schedule=["server_error"]) as server:
        status, headers, _ = raw_openai(server)
    assert status == 500 and headers["x-ratelimit-limit-requests"] == "600"


def test_an_unlimited_server_sends_no_rate_limit_headers(fake_llm):
    _, headers, _ = raw_openai(fake_llm)
    assert not [name for name in headers if "ratelimit" in name]


@pytest.mark.parametrize("bad", [{"rpm": 0}, {"tpm": -1}, {"rpm": "600"}, {"slots": 0}])
def test_bad_limits_are_refused(bad):
    with pytest.raises(ArgumentError, match="FakeLLMServer"):
        FakeLLMServer(**bad)


def test_slots_queue_requests_like_a_busy_inference_server():
    async def burst(server: FakeLLMServer) -> float:
        async with openai_client(server) as client:
            started = time.perf_counter()
            await asyncio.gather(*(client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": f"q{i}"}]) for i in range(6)))
            return time.perf_counter() - started

    with FakeLLMServer(latency_s=0.1, slots=2) as server:
        elapsed = asyncio.run(burst(server))
    assert elapsed >= 0.3  # six requests, two at a time, 0.1 s each
