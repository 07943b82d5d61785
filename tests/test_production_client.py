"""Production client: cached resolution, retries, fallbacks, escalation, budget, and one event per call."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from promptlab import Prompt
from promptlab.errors import MissingAPIKeyError, PromptUnavailableError, ProviderError, TokenBudgetExceeded
from promptlab.production import ClientPolicy, EventLog, ProductionClient, TokenBudget, hash_unit
from promptlab.providers._fake import FakeProvider

PROMPT = Prompt(name="sentiment", version="1.0.0", model="fake:fake-model", system="Classify the text.",
                template="Text: {{ input }}")
FAST = ClientPolicy(retries=2, timeout_s=2.0, backoff_s=0.0)


class StubRegistry:
    """The duck-typed registry: ``get("name@alias") -> Prompt``."""

    def __init__(self, prompt: object = PROMPT):
        self.prompt, self.calls, self.fail = prompt, 0, False

    def get(self, ref: str) -> object:
        self.calls += 1
        if self.fail:
            raise ConnectionError("registry at https://user:SECRET-TOKEN@registry.example down")
        assert ref == "sentiment@production"
        return self.prompt


class Flaky:
    """A scripted provider function: raise the given errors in order, then answer."""

    def __init__(self, *errors: BaseException, answer: str = "positive"):
        self.errors, self.answer, self.calls = list(errors), answer, 0

    def __call__(self, request):
        self.calls += 1
        return self.errors.pop(0) if self.errors else self.answer


def rate_limited(retry_after_s: float | None = None) -> ProviderError:
    return ProviderError("429", error_type="rate_limit", retryable=True, retry_after_s=retry_after_s)


def client_for(tmp_path, provider, **options) -> tuple[ProductionClient, EventLog, StubRegistry]:
    log = EventLog(tmp_path / "events.db")
    registry = options.pop("registry", None) or StubRegistry()
    options.setdefault("policy", FAST)
    return ProductionClient(registry, "sentiment", provider, log=log, **options), log, registry


def test_answers_and_logs_one_event_with_a_hashed_unit(tmp_path):
    client, log, _ = client_for(tmp_path, FakeProvider("positive"))
    answer = client.complete("I love it", unit_id="alice@example.com")
    assert (answer.text, answer.outcome, answer.version, answer.attempts, answer.success) == \
        ("positive", "answered", "1.0.0", 1, True)
    assert answer.model == "fake:fake-model" and not answer.needs_human
    event = log.frame().iloc[0]
    assert (event.prompt, event.version, event.outcome, event.model, event.unit_hash) == \
        ("sentiment", "1.0.0", "answered", "fake:fake-model", hash_unit("alice@example.com"))
    assert bool(event.success) and event.request_id == answer.request_id
    # FakeProvider counts words: system 3 + "Text: I love it" 4 in, 1 out; the fake model has no price (NA)
    assert (event.input_tokens, event.output_tokens) == (7, 1) and event.cost_usd != event.cost_usd
    assert "\n" not in repr(answer) and "\n" not in repr(client)


def test_registry_answer_is_cached(tmp_path):
    client, _, registry = client_for(tmp_path, FakeProvider("ok"))
    client.complete("a")
    client.complete("b")
    assert registry.calls == 1
    uncached, _, registry2 = client_for(tmp_path / "2", FakeProvider("ok"), policy=ClientPolicy(registry_ttl_s=0))
    uncached.complete("a")
    uncached.complete("b")
    assert registry2.calls == 2


def test_registry_hiccup_serves_the_last_good_version_without_leaking_secrets(tmp_path, caplog):
    client, log, registry = client_for(tmp_path, FakeProvider("ok"), policy=ClientPolicy(registry_ttl_s=0))
    client.complete("a")
    registry.fail = True
    with caplog.at_level(logging.WARNING):
        answer = client.complete("b")
    assert answer.text == "ok" and answer.version == "1.0.0" and client.stale_serves == 1
    assert "ConnectionError" in caplog.text and "SECRET" not in caplog.text
    assert len(log) == 2


def test_a_registry_that_never_answered_raises(tmp_path):
    client, _, registry = client_for(tmp_path, FakeProvider("ok"))
    registry.fail = True
    with pytest.raises(PromptUnavailableError, match="sentiment@production") as info:
        client.complete("a")
    assert "SECRET" not in str(info.value)
    junk, _, _ = client_for(tmp_path / "2", FakeProvider("ok"), registry=StubRegistry(prompt="not a prompt"))
    with pytest.raises(PromptUnavailableError, match="ArgumentError"):
        junk.complete("a")


def test_retryable_errors_are_retried(tmp_path):
    script = Flaky(rate_limited(), rate_limited())
    client, log, _ = client_for(tmp_path, FakeProvider(script))
    answer = client.complete("a")
    assert (answer.text, answer.attempts, answer.errors, answer.outcome) == \
        ("positive", 3, ("rate_limit", "rate_limit"), "answered")
    assert log.frame()["error_type"].isna().all()


def test_non_retryable_errors_fall_back_to_a_simpler_model(tmp_path):
    bad = ProviderError("400", error_type="bad_request", retryable=False)
    primary, small = FakeProvider(Flaky(bad, bad)), FakeProvider("negative", model_name="fake-small")
    client, log, _ = client_for(tmp_path, primary, fallbacks=[("fake-small", small)])
    answer = client.complete("a")
    assert (answer.text, answer.outcome, answer.model, answer.attempts) == \
        ("negative", "fallback", "fake:fake-small", 2)
    assert len(primary.calls) == 1 and small.calls[0].model == "fake-small"
    assert log.frame()["outcome"].tolist() == ["fallback"]


def test_fallback_given_by_name_uses_the_same_provider(tmp_path):
    def script(request):
        return rate_limited() if request.model == "fake-model" else f"answer from {request.model}"

    client, _, _ = client_for(tmp_path, FakeProvider(script), fallbacks=["fake-small"])
    answer = client.complete("a")
    assert answer.text == "answer from fake-small" and answer.attempts == 4 and answer.outcome == "fallback"


def test_everything_failing_escalates_to_a_human(tmp_path):
    client, log, _ = client_for(tmp_path, FakeProvider(lambda r: rate_limited()), fallbacks=["fake-small"])
    answer = client.complete("a")
    assert answer.needs_human and answer.text is None and answer.outcome == "escalated" and not answer.success
    assert answer.attempts == 6 and answer.errors == ("rate_limit",) * 6
    event = log.frame().iloc[0]
    assert (event.outcome, event.error_type, bool(event.success)) == ("escalated", "rate_limit", False)


def test_long_retry_after_moves_on_at_once(tmp_path):
    primary = FakeProvider(Flaky(rate_limited(retry_after_s=60)))
    client, _, _ = client_for(tmp_path, primary, fallbacks=[("fake-small", FakeProvider("ok"))])
    answer = client.complete("a")
    assert answer.outcome == "fallback" and len(primary.calls) == 1


def test_timeouts_are_retried_then_escalated(tmp_path):
    slow = FakeProvider("late", latency_s=0.3)
    client, _, _ = client_for(tmp_path, slow, policy=ClientPolicy(retries=1, timeout_s=0.02, backoff_s=0.0))
    answer = client.complete("a")
    assert answer.needs_human and answer.errors == ("timeout", "timeout")


def test_a_buggy_provider_escalates_but_configuration_errors_raise(tmp_path):
    client, _, _ = client_for(tmp_path, FakeProvider(Flaky(RuntimeError("bug"))))
    assert client.complete("a").errors == ("exception",)
    budget = TokenBudget(tmp_path / "b.db", limit_tokens=10_000, period="total")
    broken, _, _ = client_for(tmp_path / "2", FakeProvider(Flaky(MissingAPIKeyError("no key"))), budget=budget)
    with pytest.raises(MissingAPIKeyError):
        broken.complete("a")
    assert budget.used == 0  # the reservation was given back


def test_budget_is_enforced_settled_and_refusals_are_logged(tmp_path):
    budget = TokenBudget(tmp_path / "b.db", limit_tokens=600, name="support", period="total")
    client, log, _ = client_for(tmp_path, FakeProvider("positive"), budget=budget)
    client.complete("I love it")
    assert budget.used == 8  # settled to the reported 7 in + 1 out, not the worst case
    budget.charge(600 - 8 - 100)
    with pytest.raises(TokenBudgetExceeded, match="'support'") as info:
        client.complete("I love it")
    assert info.value.used == 500 and info.value.requested > 100
    refused = log.frame().iloc[-1]
    assert (refused.outcome, refused.error_type, bool(refused.success)) == ("refused", "budget_exceeded", False)


def test_validator_sets_format_ok(tmp_path):
    def is_json(text: str) -> bool:
        json.loads(text)
        return True

    client, log, _ = client_for(tmp_path, FakeProvider({"Text: a": '{"label": 1}', "Text: b": "label: 1"}),
                                validator=is_json)
    good, bad = client.complete("a"), client.complete("b")
    assert (good.format_ok, good.success, bad.format_ok, bad.success) == (True, True, False, False)
    assert log.frame()["format_ok"].tolist() == [True, False]


def test_sync_face_works_inside_a_running_loop_and_async_face(tmp_path):
    client, log, _ = client_for(tmp_path, FakeProvider("ok"))

    async def inside_jupyter():
        sync = client.complete("a")  # a loop is running here, as in a notebook
        concurrent = await asyncio.gather(*(client.acomplete(str(i)) for i in range(5)))
        return sync, concurrent

    sync, concurrent = asyncio.run(inside_jupyter())
    assert sync.text == "ok" and [a.text for a in concurrent] == ["ok"] * 5 and len(log) == 6


def test_real_openai_sdk_path_through_the_loopback_server(tmp_path):
    from promptlab.providers._openai import OpenAIProvider
    from promptlab.testing import FakeLLMServer

    prompt = PROMPT.with_changes(model="openai:gpt-4o-mini-2024-07-18")
    with FakeLLMServer(answers={"Text: great": "positive"}, fault_schedule=["rate_limit"],
                       retry_after_s=0.01) as server:
        provider = OpenAIProvider(base_url=server.openai_base_url, api_key="sk-test-SECRET")
        client, log, _ = client_for(tmp_path, provider, registry=StubRegistry(prompt))
        answer = client.complete("great", unit_id=17)
        assert server.request_count == 2
    assert (answer.text, answer.attempts, answer.errors) == ("positive", 2, ("rate_limit",))
    assert answer.model == "openai:gpt-4o-mini-2024-07-18" and answer.cost_usd is not None
    event = log.frame().iloc[0]
    assert event.cost_usd == pytest.approx(float(answer.cost_usd)) and event.unit_hash == hash_unit(17)
    log.close()
    stored = (tmp_path / "events.db").read_bytes()
    assert b"SECRET" not in stored


def test_default_output_is_served_when_every_model_fails(tmp_path):
    policy = ClientPolicy(retries=0, backoff_s=0.0, default_output="neutral")
    client, log, _ = client_for(tmp_path, FakeProvider(lambda r: rate_limited()), policy=policy)
    answer = client.complete("a")
    assert (answer.text, answer.outcome, answer.model, answer.success, answer.needs_human) == \
        ("neutral", "fallback", None, False, False)
    event = log.frame().iloc[0]
    assert (event.outcome, event.error_type, bool(event.success)) == ("fallback", "rate_limit", False)


def test_a_registry_that_is_down_is_not_asked_on_every_request(tmp_path):
    client, _, registry = client_for(tmp_path, FakeProvider("ok"), policy=ClientPolicy(registry_ttl_s=60))
    client.complete("a")
    registry.fail = True
    client._fetched_at -= 61  # the cached version has expired
    for _ in range(5):
        assert client.complete("b").text == "ok"
    assert registry.calls == 2 and client.stale_serves == 1
