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
  answer. A structured request without a scripted answer gets a minimal instance of its JSON schema; a text
  scripted for a schema with one required property becomes that property (``{"label": "positive"}``).
* **latency** — seconds (fixed, or a callable of the request JSON) awaited before every response, faults
  included; waiting is ``asyncio.sleep``, so many concurrent requests cost almost no CPU.
* **served model** — the ``model`` reported in responses: the requested one, or ``served_model`` (assign it
  mid-test to simulate a model changing behind a pinned alias).
* **validation** — malformed requests get a 400 in the vendor's error format, as the real API would answer:
  missing ``model``/``messages``, streaming, a ``system`` role inside Anthropic ``messages``, sampling
  parameters (``temperature``, ``top_p``, ``top_k``) under ``anthropic-version`` 2026-10-21 or later, OpenAI
  sampling parameters out of range, and the shape of structured requests: ``response_format`` (type, name,
  an object schema that is valid JSON Schema, and under ``strict`` every object closed and fully required),
  Anthropic tools (name, an object ``input_schema``) and ``tool_choice`` naming a defined tool.
* **stop sequences and max tokens** — a text answer is cut at the first stop sequence
  (finish ``stop`` / ``stop_sequence``) and at ``max_tokens`` words (finish ``length`` / ``max_tokens``).
* **faults** — by rate (``fault_rates={"rate_limit": 0.1}``, seeded) or by a deterministic schedule
  (``fault_schedule=["rate_limit", None, "hang"]``: the n-th request received gets the n-th entry; ``None``
  answers normally; `inject_faults` appends to the schedule). Kinds are in `FAULT_KINDS`.
* **rate limits** — ``rpm=`` and ``tpm=`` put a requests and a tokens per-minute token bucket in front of the
  answers (each holds one minute's allowance and refills continuously); every response then carries the vendor's
  rate-limit headers (``x-ratelimit-*`` / ``anthropic-ratelimit-*``) and a request past a limit gets the vendor's
  429 body with ``retry-after``. ``server.limits.drain(...)`` plays another client that used the allowance;
  `rate_limited_count` counts the refusals. ``slots=`` answers that many requests at once, the rest queue, like an
  inference server's batch.
* **counting** — `request_count`, `counts_by_path`, and `requests` (path, body, headers): the log never
  holds credential headers (``Authorization``, ``x-api-key``, ``api-key``, cookies), only whether one was
  sent.

Token counts are an approximation: whitespace-separated words of the system text and message texts
(input) and of the answer (output). Nothing here reaches the network.
"""


from .._face import declare

declare(__name__, globals(), {
    "FakeLLMServer": "._server", "ReceivedRequest": "._server", "fake_llm_server_fixture": "._server",
    "OPENAI_PATH": "._wire", "ANTHROPIC_PATH": "._wire", "FAULT_KINDS": "._wire",
    "approx_tokens": "._wire", "example_for_schema": "._wire", "last_user_text": "._wire",
})
