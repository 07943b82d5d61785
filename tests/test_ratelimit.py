"""The rate limiter: header reading, declared and learned limits, token reservation and settlement, the AIMD
window — alone with a fake clock, and inside the real SDK providers against the fake server's buckets."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime

import pytest

from promptlab.errors import ArgumentError, ProviderError
from promptlab.evaluation._retry import RetryPolicy, call_with_retries
from promptlab.providers import Message, Request
from promptlab.providers._anthropic import AnthropicProvider
from promptlab.providers._openai import OpenAIProvider
from promptlab.providers._ratelimit import (
    RateLimiter,
    RateLimits,
    estimate_input_tokens,
    limiter_stats,
    reset_limiters,
)
from promptlab.providers._ratelimit_headers import (
    go_duration_seconds,
    go_duration_text,
    read_rate_limit_headers,
)
from promptlab.testing import FakeLLMServer


@pytest.fixture(autouse=True)
def _fresh_limiters():
    reset_limiters()
    yield
    reset_limiters()


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(text: str = "hello there", max_tokens: int = 50, model: str = "m") -> Request:
    return Request(model=model, system="", messages=(Message("user", text),), max_tokens=max_tokens)


# -- headers --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("6m0s", 360.0), ("1s", 1.0), ("12ms", 0.012), ("1.5s", 1.5), ("1h2m3s", 3723.0), ("250us", 0.00025),
    ("2", 2.0), ("0.5", 0.5),
])
def test_go_durations_as_openai_writes_resets(text, seconds):
    assert go_duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "6 m", "1x", "-"])
def test_unreadable_durations_are_unknown(text):
    assert go_duration_seconds(text) is None


@pytest.mark.parametrize("seconds", [0.004, 0.25, 1.5, 59.9, 61.25, 360.0])
def test_go_duration_text_reads_back(seconds):
    assert go_duration_seconds(go_duration_text(seconds)) == pytest.approx(seconds, abs=0.001)


def test_openai_headers():
    limits = read_rate_limit_headers({
        "x-ratelimit-limit-requests": "5000", "x-ratelimit-limit-tokens": "160000",
        "x-ratelimit-remaining-requests": "4999", "x-ratelimit-remaining-tokens": "159976",
        "x-ratelimit-reset-requests": "12ms", "x-ratelimit-reset-tokens": "6m0s"})
    assert (limits.requests.limit, limits.requests.remaining, limits.requests.reset_s) == (5000, 4999, 0.012)
    assert (limits.tokens.limit, limits.tokens.remaining, limits.tokens.reset_s) == (160000, 159976, 360.0)


def test_anthropic_headers_reset_is_an_rfc3339_time():
    now = datetime(2025, 8, 21, 12, 40, 30, tzinfo=UTC).timestamp()
    limits = read_rate_limit_headers({
        "anthropic-ratelimit-requests-limit": "1000", "anthropic-ratelimit-requests-remaining": "999",
        "anthropic-ratelimit-requests-reset": "2025-08-21T12:40:59Z",
        "anthropic-ratelimit-tokens-limit": "96000", "anthropic-ratelimit-tokens-remaining": "95000",
        "anthropic-ratelimit-tokens-reset": "2025-08-21T12:41:00Z"}, now=now)
    assert (limits.requests.limit, limits.requests.remaining, limits.requests.reset_s) == (1000, 999, 29.0)
    assert (limits.tokens.limit, limits.tokens.remaining, limits.tokens.reset_s) == (96000, 95000, 30.0)


def test_negative_and_missing_header_values_are_unknown_not_zero():
    # Azure sends -1 for limits it does not report
    limits = read_rate_limit_headers({"x-ratelimit-limit-tokens": "-1", "x-ratelimit-remaining-tokens": "-1",
                                      "x-ratelimit-remaining-requests": "7"})
    assert limits.tokens.limit is None and limits.tokens.remaining is None
    assert limits.requests.remaining == 7 and limits.requests.limit is None
    assert read_rate_limit_headers({"content-type": "application/json"}).empty
    assert read_rate_limit_headers(None).empty


# -- declared limits ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [{"rpm": 0}, {"rpm": -5}, {"tpm": float("nan")}, {"rpm": True},
                                 {"max_in_flight": 0}, {"max_in_flight": 2.5}])
def test_bad_declared_limits_are_refused(bad):
    with pytest.raises(ArgumentError, match="RateLimits"):
        RateLimits(**bad)


def test_rate_limits_from_a_mapping_and_unknown_keys():
    assert RateLimits.coerce({"rpm": 600, "tpm": 150_000}) == RateLimits(rpm=600, tpm=150_000)
    with pytest.raises(ArgumentError, match="rqm"):
        RateLimits.coerce({"rqm": 600})


def test_provider_rate_limits_argument_per_model_and_off():
    provider = OpenAIProvider(api_key="k", base_url="http://127.0.0.1:9/v1",
                              rate_limits={"small": {"rpm": 60}, "*": {"rpm": 6}})
    assert provider.limiter("small").limits == RateLimits(rpm=60)
    assert provider.limiter("other").limits == RateLimits(rpm=6)
    off = OpenAIProvider(api_key="k", base_url="http://127.0.0.1:9/v1", rate_limits=False)
    assert off.limiter("small") is None
    with pytest.raises(ArgumentError, match="rate_limits"):
        OpenAIProvider(api_key="k", base_url="http://127.0.0.1:9/v1", rate_limits=600)


def test_one_limiter_per_endpoint_and_model_in_the_process():
    a = OpenAIProvider(api_key="k", base_url="http://127.0.0.1:9/v1/")
    b = OpenAIProvider(api_key="k", base_url="HTTP://127.0.0.1:9/v1", rate_limits={"rpm": 60})
    assert a.limiter("m") is b.limiter("m")  # the same account: one budget
    assert a.limiter("m").limits == RateLimits(rpm=60)  # the later declaration wins
    assert a.limiter("m") is not a.limiter("other")
    assert {s["key"] for s in limiter_stats()} == {"openai/http://127.0.0.1:9/v1/m",
                                                   "openai/http://127.0.0.1:9/v1/other"}


def test_request_bucket_starts_full_and_refills_continuously():
    clock = Clock()
    limiter = RateLimiter(("t",), RateLimits(rpm=60), clock=clock)  # one request per second
    tickets = [limiter._try_admit(1, 1, 1) for _ in range(60)]
    assert all(not isinstance(t, float) and t is not None for t in tickets)
    assert limiter._try_admit(1, 1, 1) == pytest.approx(1.0)  # the 61st waits one second
    clock.now += 0.5
    assert limiter._try_admit(1, 1, 1) == pytest.approx(0.5)
    clock.now += 0.5
    assert not isinstance(limiter._try_admit(1, 1, 1), float)


def test_tokens_are_reserved_then_settled_with_real_usage():
    clock = Clock()
    limiter = RateLimiter(("t",), RateLimits(tpm=1000), clock=clock)
    req = request("one two three four", max_tokens=100)
    input_estimate, reserve = limiter.estimate(req)
    assert input_estimate == estimate_input_tokens(req) == 5 + 8  # ceil(18 / 4) + 4 per message (2 messages)
    assert reserve == input_estimate + 100  # no answer seen yet: the output is reserved at max_tokens
    ticket = limiter._try_admit(reserve, input_estimate, 100)
    assert limiter.stats()["tpm_level"] == pytest.approx(1000 - reserve)
    limiter.settle(ticket, input_tokens=10, output_tokens=3)
    assert limiter.stats()["tpm_level"] == pytest.approx(1000 - 13)
    # later reservations use what answers really took: output 3, input scaled by 10/13
    assert limiter.estimate(req) == (13, pytest.approx(10 + 3))


def test_a_call_larger_than_the_bucket_waits_for_a_full_bucket_not_forever():
    clock = Clock()
    limiter = RateLimiter(("t",), RateLimits(tpm=600), clock=clock)
    limiter._tokens.level = 0
    assert limiter._try_admit(5000, 10, 10) == pytest.approx(60.0)


# -- learning from headers ---------------------------------------------------------------------------------------


def test_limits_are_learned_from_headers_and_counted_from_the_calls_sent_since():
    clock = Clock()
    limiter = RateLimiter(("t",), clock=clock)
    first = limiter._try_admit(20, 10, 10)
    later = [limiter._try_admit(20, 10, 10) for _ in range(3)]  # sent after the first, before its answer
    clock.now += 1.0
    limiter.settle(first, headers={"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "100",
                                   "x-ratelimit-limit-tokens": "6000", "x-ratelimit-remaining-tokens": "3000"},
                   input_tokens=10, output_tokens=10)
    stats = limiter.stats()
    assert (stats["rpm"], stats["rpm_source"], stats["tpm"], stats["tpm_source"]) == (600, "headers", 6000, "headers")
    # 100 left when the first was admitted, +10/s for the second since, -3 sent after it
    assert stats["rpm_level"] == pytest.approx(100 + 10 - 3)
    # 3000 left, +100/s for a second, -60 reserved by the three sent after it
    assert stats["tpm_level"] == pytest.approx(3000 + 100 - 60)
    assert all(not isinstance(t, float) for t in later)


def test_headers_never_raise_a_declared_limit():
    clock = Clock()
    limiter = RateLimiter(("t",), RateLimits(rpm=60), clock=clock)
    for _ in range(50):
        ticket = limiter._try_admit(1, 1, 1)
        limiter.settle(ticket, headers={"x-ratelimit-limit-requests": "10000",
                                        "x-ratelimit-remaining-requests": "9999"})
    stats = limiter.stats()
    assert stats["rpm"] == 60 and stats["rpm_source"] == "declared" and stats["rpm_level"] == pytest.approx(10)


# -- the AIMD window -----------------------------------------------------------------------------------------------


def test_sustained_429s_halve_the_window_once_per_round_and_successes_grow_it_back():
    limiter = RateLimiter(("t",), clock=Clock())
    tickets = [limiter._try_admit(1, 1, 1) for _ in range(22)]
    assert limiter.window_text() == "open"
    limiter.fail(tickets[0], error_type="rate_limit", status=429)
    limiter.fail(tickets[1], error_type="rate_limit", status=429)
    assert limiter.window_text() == "open"  # two refusals may be chance
    limiter.fail(tickets[2], error_type="rate_limit", status=429)
    assert limiter.window == pytest.approx(10.0)  # half of the 20 in flight
    for ticket in tickets[3:12]:  # sent before the cut: their 429s are the same congestion, not a new one
        limiter.fail(ticket, error_type="rate_limit", status=429)
    assert limiter.window == pytest.approx(10.0)
    assert limiter._try_admit(1, 1, 1) is None  # 10 still in flight: the window is full
    for ticket in tickets[12:]:
        limiter.settle(ticket)
    assert limiter.window == pytest.approx(11.0, abs=0.1)  # +1 per window of successes
    late = limiter._try_admit(1, 1, 1)
    limiter.fail(late, error_type="overloaded", status=529)  # a new round: cut again
    assert limiter.window == pytest.approx(1.0)  # half of min(window, in flight + 1) = half of 1... floored at 1
    assert limiter.stats()["window_cuts"] == 2 and limiter.stats()["overloaded"] == 1


def test_a_full_window_makes_callers_wait_until_a_call_ends():
    async def go():
        limiter = RateLimiter(("t",), RateLimits(max_in_flight=2))
        first, second = await limiter.acquire(request()), await limiter.acquire(request())
        waiting = asyncio.ensure_future(limiter.acquire(request()))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        limiter.settle(first)
        third = await asyncio.wait_for(waiting, 1.0)
        limiter.settle(second)
        limiter.settle(third)
        return limiter.stats()

    stats = asyncio.run(go())
    assert stats["in_flight"] == 0 and stats["waited"] == 1


def test_429s_at_random_are_retried_without_throttling():
    limiter = RateLimiter(("t",), clock=Clock())
    for i in range(200):  # one call in ten refused, without rate-limit headers
        ticket = limiter._try_admit(1, 1, 1)
        if i % 10 == 0:
            limiter.fail(ticket, error_type="rate_limit", status=429)
        else:
            limiter.settle(ticket)
    stats = limiter.stats()
    assert stats["rate_limited"] == 20 and stats["window_cuts"] == 0 and stats["window"] == "open"


def test_waiting_callers_are_admitted_in_order_at_the_bucket_rate():
    async def go():
        limiter = RateLimiter(("t",), RateLimits(rpm=600))  # 10 per second
        limiter._requests.level = 0
        started = time.monotonic()
        order = []

        async def one(i):
            ticket = await limiter.acquire(request())
            order.append(i)
            limiter.settle(ticket)

        await asyncio.gather(*(one(i) for i in range(5)))
        return order, time.monotonic() - started

    order, seconds = asyncio.run(go())
    assert order == [0, 1, 2, 3, 4]
    assert 0.45 <= seconds < 1.5  # five requests at 10/s from an empty bucket


# -- inside the providers, against the fake server -----------------------------------------------------------------


def _burst(provider, n: int, concurrency: int, text=lambda i: f"case {i}", retries: int = 6):
    policy = RetryPolicy(retries=retries, timeout_s=20, backoff_s=0.05, max_backoff_s=0.2)

    async def go():
        semaphore = asyncio.Semaphore(concurrency)
        rng = random.Random(0)

        async def one(i):
            async with semaphore:
                return await call_with_retries(provider, request(text(i), max_tokens=8), policy, rng)

        try:
            return await asyncio.gather(*(one(i) for i in range(n)))
        finally:
            await provider.aclose()

    started = time.monotonic()
    outcomes = asyncio.run(go())
    return outcomes, time.monotonic() - started


def test_declared_limits_pace_calls_below_the_server_limit_without_429s():
    with FakeLLMServer(rpm=600) as server:  # 10 requests per second
        provider = OpenAIProvider(api_key="k", base_url=server.openai_base_url, rate_limits={"rpm": 600})
        server.limits.drain(requests=0)  # another client used this minute's allowance
        provider.limiter("m")._requests.level = 0  # ...and this process knows it
        outcomes, seconds = _burst(provider, 15, concurrency=15)
        assert all(o.completion is not None for o in outcomes)
        assert server.rate_limited_count == 0
        assert 1.3 <= seconds < 4.0  # 15 requests at 10/s


def test_undeclared_limits_are_learned_from_the_headers_and_429s_stop():
    with FakeLLMServer(rpm=600) as server:
        provider = OpenAIProvider(api_key="k", base_url=server.openai_base_url)
        server.limits.drain(requests=0)
        outcomes, _ = _burst(provider, 30, concurrency=10)
        assert all(o.completion is not None for o in outcomes)
        stats = provider.limiter("m").stats()
        assert stats["rpm"] == 600 and stats["rpm_source"] == "headers"
        # the first wave, sent before any header was seen, meets an empty bucket; after it, pacing holds
        assert server.rate_limited_count <= 10 + 3


def test_token_limits_are_reserved_and_settled_against_the_server_bucket():
    def long_text(i: int) -> str:
        return f"case {i} " + "word " * 60  # ~62 input words, 8 output at most

    with FakeLLMServer(tpm=6000) as server:  # 100 tokens per second
        provider = OpenAIProvider(api_key="k", base_url=server.openai_base_url, rate_limits={"tpm": 6000})
        server.limits.drain(tokens=200)
        provider.limiter("m")._tokens.level = 200
        outcomes, seconds = _burst(provider, 8, concurrency=8, text=long_text)
        assert all(o.completion is not None for o in outcomes)
        assert server.rate_limited_count == 0
        used = server.limits.tokens_used
        assert used >= 8 * 64
        assert seconds >= (used - 200) / 100 * 0.8  # paced by the token bucket
        stats = provider.limiter("m").stats()
        assert stats["in_flight"] == 0


def test_anthropic_headers_drive_the_limiter_too():
    with FakeLLMServer(rpm=600) as server:
        provider = AnthropicProvider(api_key="k", base_url=server.anthropic_base_url)
        server.limits.drain(requests=0)
        outcomes, _ = _burst(provider, 20, concurrency=8)
        assert all(o.completion is not None for o in outcomes)
        stats = provider.limiter("m").stats()
        assert stats["rpm"] == 600 and stats["rpm_source"] == "headers"
        assert server.rate_limited_count <= 8 + 3


def test_429s_without_headers_cut_the_window():
    with FakeLLMServer(fault_schedule=["rate_limit"] * 6, retry_after_s=0.01) as server:
        provider = OpenAIProvider(api_key="k", base_url=server.openai_base_url)
        outcomes, _ = _burst(provider, 12, concurrency=12)
        assert all(o.completion is not None for o in outcomes)
        stats = provider.limiter("m").stats()
        assert stats["rate_limited"] == 6 and stats["window_cuts"] >= 1 and stats["window"] != "open"


def test_a_call_that_stays_rate_limited_is_a_rate_limit_error_not_a_crash():
    with FakeLLMServer(tpm=100) as server:  # the request is larger than the whole token limit
        provider = OpenAIProvider(api_key="k", base_url=server.openai_base_url)
        outcomes, _ = _burst(provider, 1, concurrency=1, text=lambda i: "word " * 200, retries=1)
        (outcome,) = outcomes
        assert outcome.completion is None and outcome.attempts == 2
        error = outcome.last_error
        assert isinstance(error, ProviderError) and error.error_type == "rate_limit" and error.status == 429
        assert "Request too large" in str(error)
        assert provider.limiter("m").stats()["in_flight"] == 0


def test_a_run_through_the_runner_records_rate_limited_calls_as_rows():
    import promptlab as pl
    import promptlab.evaluation._results  # noqa: F401  (loaded now: the bucket must not refill while it loads)
    import promptlab.evaluation._scoring  # noqa: F401

    with FakeLLMServer(rpm=6) as server:  # one request per 10 s
        suite = pl.Suite("s")
        for i in range(4):
            suite.add_case(f"case {i}", "x", id=f"c{i}")
        prompt = pl.Prompt(name="p", version="1", model="openai:m", template="{{ input }}", max_tokens=5)
        provider = OpenAIProvider(api_key="k", base_url=server.openai_base_url, rate_limits=False)
        server.limits.drain(requests=2)  # two calls get through, the other two are refused
        results = pl.run(suite, prompt, provider, concurrency=4, retries=0, progress=False,
                         cache=False, max_error_rate=1.0)
    errors = results.df["error_type"]
    assert (errors == "rate_limit").sum() == 2 and errors.isna().sum() == 2


def test_the_runner_and_the_production_client_share_one_limiter():
    import promptlab as pl
    from promptlab.production._client import ProductionClient

    class Registry:
        def get(self, ref):
            return prompt

    prompt = pl.Prompt(name="p", version="1", model="openai:m", template="{{ input }}", max_tokens=5)
    with FakeLLMServer(rpm=600) as server:
        suite = pl.Suite("s")
        for i in range(3):
            suite.add_case(f"case {i}", "x", id=f"c{i}")
        batch = OpenAIProvider(api_key="k", base_url=server.openai_base_url)
        pl.run(suite, prompt, "openai:m", providers={"openai": batch}, progress=False, cache=False)
        app = ProductionClient(Registry(), "p", OpenAIProvider(api_key="k", base_url=server.openai_base_url))
        answers = [app.complete(f"live {i}") for i in range(2)]
        assert all(a.text for a in answers)
        (stats,) = [s for s in limiter_stats() if s["key"].startswith("openai/http://127.0.0.1")]
    assert stats["admitted"] == 3 + 2 and stats["rpm_source"] == "headers"


def test_waiting_for_the_limiter_does_not_count_against_the_call_timeout():
    import promptlab as pl

    with FakeLLMServer(rpm=600) as server:
        # 10 calls a second: the last of 12 waits ~1.1 s in line, longer than the 0.6 s each call is allowed
        provider = OpenAIProvider(api_key="k", base_url=server.openai_base_url, rate_limits={"rpm": 600})
        provider.limiter("m")._requests.level = 0
        suite = pl.Suite("queued", labels=["positive", "negative"])
        for i in range(12):
            suite.add_case(f"case {i}", "positive", id=f"c{i}")
        prompt = pl.Prompt(name="q", version="1", model="openai:m", template="{{ input }}")
        results = pl.run(suite, prompt, providers={"openai": provider}, concurrency=12, timeout_s=0.6,
                         retries=0, cache=False, progress=False, record=False)
    assert results.df["error_type"].isna().all(), results.df["error"].dropna().tolist()
    assert (results.df["attempts"] == 1).all()
    assert provider.limiter("m").stats()["waited"] >= 5
