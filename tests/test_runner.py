from __future__ import annotations

import asyncio
import signal
import threading
import time
import traceback
from decimal import Decimal

import pandas as pd
import pytest

import promptlab as pl
from promptlab.errors import ProviderError
from promptlab.evaluation._runner import RunInterrupted, run_sync

PROMPT = pl.Prompt(name="sentiment", version="1.0.0", model="claude-3-5-sonnet-20241022", system="Classify.",
                   template="Text: {{ input }}", few_shot_examples=[{"input": "great", "output": "positive"}])
PROMPT_B = PROMPT.with_changes(version="1.1.0", system="Classify the sentiment.")


def suite(n: int = 4) -> pl.Suite:
    s = pl.Suite("t", labels=["positive", "negative"])
    for i in range(n):
        s.add_case(f"text {i}", "positive" if i % 2 == 0 else "negative", id=f"c{i}")
    return s


def answer_by_parity(request: pl.providers.Request) -> str:
    return "positive" if int(request.messages[-1].content.split()[-1]) % 2 == 0 else "negative"


class Flaky(pl.FakeProvider):
    """Fails the first `failures` calls of each case with the given error, then answers."""

    def __init__(self, failures: int, error: ProviderError, **kw):
        super().__init__(answer_by_parity, **kw)
        self.failures, self.error, self.seen = failures, error, {}

    async def complete(self, request):
        key = request.messages[-1].content
        self.seen[key] = self.seen.get(key, 0) + 1
        if self.seen[key] <= self.failures:
            self.calls.append(request)
            raise self.error
        return await super().complete(request)


def test_one_row_per_case_and_variant_in_the_schema():
    fake = pl.FakeProvider(answer_by_parity)
    results = pl.run(suite(), {"A": PROMPT, "B": PROMPT_B}, fake, progress=False, cache=False)
    df = results.df
    assert list(df.columns) == list(pl.evaluation.COLUMNS)
    assert len(df) == 8 and set(df["variant"]) == {"A", "B"}
    assert df["passed"].all() and (df["model"] == "fake:fake-model").all()
    assert (df["model_pinned"] == "claude-3-5-sonnet-20241022").all()
    assert df["prompt_hash"].nunique() == 2
    assert results.meta["prompts"]["B"]["ref"] == "sentiment@1.1.0"


def test_failed_calls_are_rows_with_na_not_zero():
    boom = ProviderError("boom", error_type="server", retryable=True)
    fake = pl.FakeProvider({"Text: text 0": boom}, default="positive")
    results = pl.run(suite(), PROMPT, fake, progress=False, cache=False, backoff=False, retries=1)
    row = results.df.set_index("case_id").loc["c0"]
    assert row["error_type"] == "server" and row["attempts"] == 2
    assert pd.isna(row["output"]) and pd.isna(row["passed"]) and pd.isna(row["input_tokens"])
    assert pd.isna(row["latency_s"]) and pd.isna(row["cost_usd"])
    assert results.df["error_type"].isna().sum() == 3


def test_retries_then_succeeds_and_does_not_retry_client_errors():
    flaky = Flaky(2, ProviderError("overloaded", error_type="overloaded", retryable=True))
    results = pl.run(suite(), PROMPT, flaky, progress=False, cache=False, backoff=False)
    assert (results.df["attempts"] == 3).all() and results.df["passed"].all()
    bad = Flaky(1, ProviderError("bad", error_type="bad_request", retryable=False))
    results = pl.run(suite(), PROMPT, bad, progress=False, cache=False, backoff=False, max_error_rate=1.0)
    assert (results.df["attempts"] == 1).all() and (results.df["error_type"] == "bad_request").all()


def test_backoff_honours_retry_after():
    flaky = Flaky(1, ProviderError("slow down", error_type="rate_limit", retryable=True, retry_after_s=0.3))
    start = time.perf_counter()
    results = pl.run(suite(1), PROMPT, flaky, progress=False, cache=False)
    assert time.perf_counter() - start >= 0.3
    assert results.df["passed"].all()


def test_timeout_becomes_a_row():
    slow = pl.FakeProvider("positive", latency_s=1.0)
    results = pl.run(suite(2), PROMPT, slow, progress=False, cache=False, timeout_s=0.05, retries=0,
                     max_error_rate=1.0)
    assert (results.df["error_type"] == "timeout").all()
    assert "timeout_s" in results.df["error"].iloc[0]


def test_fallback_records_who_answered():
    broken = Flaky(99, ProviderError("down", error_type="server", retryable=True))
    backup = pl.FakeProvider(answer_by_parity, model_name="backup-model")
    backup.name = "backup"
    results = pl.run(suite(), PROMPT, broken, progress=False, cache=False, backoff=False, retries=1,
                     fallbacks=[backup])
    assert (results.df["answered_by"] == "backup:backup-model").all()
    assert (results.df["model"] == "fake:fake-model").all() and results.df["passed"].all()


def test_past_max_error_rate_raises_with_the_rows():
    broken = Flaky(99, ProviderError("down", error_type="auth"))
    with pytest.raises(pl.errors.RunError, match="calls failed") as info:
        pl.run(suite(), PROMPT, broken, progress=False, cache=False, backoff=False)
    assert len(info.value.results.df) == 4 and "auth" in str(info.value)


def test_repeats_are_a_column():
    results = pl.run(suite(2), PROMPT, pl.FakeProvider(answer_by_parity), repeats=3, progress=False, cache=False)
    assert sorted(results.df["repeat"].tolist()) == [0, 0, 1, 1, 2, 2]


def test_cache_makes_the_second_run_free(tmp_path):
    cache = pl.ResponseCache(tmp_path / "c.sqlite")
    fake = pl.FakeProvider(answer_by_parity)
    first = pl.run(suite(), PROMPT, fake, progress=False, cache=cache)
    second = pl.run(suite(), PROMPT, fake, progress=False, cache=cache)
    assert len(fake.calls) == 4
    assert second.df["cached"].all() and second.meta["cache"] == {"hits": 4, "misses": 0, "enabled": True,
                                                                  "path": str(cache.path)}
    assert first.meta["cache"]["misses"] == 4
    pl.run(suite(), PROMPT, fake, progress=False, cache=False)
    assert len(fake.calls) == 8


def test_budget_stops_scheduling_and_keeps_what_it_has(monkeypatch):
    from promptlab.providers import _prices as prices_module

    # one USD per token, so a small budget buys few calls; monkeypatch keeps the price out of other tests
    monkeypatch.setitem(prices_module._overrides, "fake:fake-model",
                        prices_module.ModelPrice(Decimal(1_000_000), Decimal(1_000_000)))
    fake = pl.FakeProvider(answer_by_parity)
    budget = pl.Budget(usd=100)  # worst case per call ~35 USD (max_tokens 5), actual ~12
    results = pl.run(suite(12), PROMPT.with_changes(max_tokens=5), fake, progress=False, cache=False,
                     budget=budget)
    df = results.df
    paid = df["error_type"].isna()
    assert 3 < paid.sum() < 12 and (df.loc[~paid, "error_type"] == "budget_exceeded").all()
    assert budget.spent == Decimal(str(df.loc[paid, "cost_usd"].sum())) and budget.spent <= 100
    assert "budget" in results.meta["stopped"] and len(fake.calls) == paid.sum()


def test_budget_refuses_unpriced_models():
    with pytest.raises(pl.errors.RunError, match="needs prices"):
        pl.run(suite(), PROMPT, pl.FakeProvider("x", model_name="unpriced"), budget=pl.Budget(usd=1), progress=False)


def test_run_works_inside_a_running_loop():
    async def in_notebook():
        return pl.run(suite(), PROMPT, pl.FakeProvider(answer_by_parity), progress=False, cache=False)

    assert len(asyncio.run(in_notebook()).df) == 4


def test_a_failed_call_is_a_cache_miss_and_the_meta_names_the_cache_file(tmp_path):
    cache = pl.ResponseCache(tmp_path / "c.sqlite")
    broken = pl.FakeProvider({"Text: text 0": "positive"})  # the other cases are not scripted: failed calls
    results = pl.run(suite(), PROMPT, broken, progress=False, cache=cache, max_error_rate=1.0, retries=0)
    assert results.meta["cache"] == {"hits": 0, "misses": 4, "enabled": True, "path": str(cache.path)}
    assert len(cache) == 1  # only the answer is stored
    off = pl.run(suite(), PROMPT, broken, progress=False, cache=False, max_error_rate=1.0, retries=0)
    assert off.meta["cache"] == {"hits": 0, "misses": 0, "enabled": False, "path": None}


PLUMBING = ("/asyncio/", "/concurrent/", "/threading.py")


def frames_after_run_sync(error: BaseException) -> list[traceback.FrameSummary]:
    frames = traceback.extract_tb(error.__traceback__)
    names = [frame.name for frame in frames]
    return frames[names.index("run_sync") + 1:]


@pytest.mark.parametrize("in_a_running_loop", [False, True])
def test_errors_through_run_sync_carry_no_asyncio_or_thread_frames(in_a_running_loop):
    async def failing():
        raise ValueError("the original error")

    async def notebook_cell():
        return run_sync(failing())

    with pytest.raises(ValueError, match="the original error") as caught:
        asyncio.run(notebook_cell()) if in_a_running_loop else run_sync(failing())
    frames = frames_after_run_sync(caught.value)
    assert frames[-1].name == "failing"
    assert not [f.filename for f in frames if any(part in f.filename for part in PLUMBING)]


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals to a thread")
def test_an_interrupt_in_a_notebook_stops_the_run_and_says_what_was_kept(tmp_path):
    cache = pl.ResponseCache(tmp_path / "c.sqlite")
    provider = pl.FakeProvider(answer_by_parity, latency_s=0.02)

    def interrupt_after_five_calls():
        while len(provider.calls) < 5:
            time.sleep(0.005)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # what a kernel interrupt does

    async def notebook_cell():
        return pl.run(suite(40), PROMPT, provider, concurrency=1, progress=False, cache=cache)

    threading.Thread(target=interrupt_after_five_calls, daemon=True).start()
    loop = asyncio.new_event_loop()  # a loop without asyncio.run's SIGINT handler, like ipykernel's
    try:
        with pytest.raises(KeyboardInterrupt) as caught:
            loop.run_until_complete(notebook_cell())
    finally:
        loop.close()
    stopped = caught.value
    assert isinstance(stopped, RunInterrupted), repr(stopped)
    calls = len(provider.calls)
    time.sleep(0.2)
    assert len(provider.calls) == calls < 40  # cancelled: nothing goes on calling the model unseen
    assert (stopped.total, stopped.done, stopped.cache_path) == (40, len(cache), cache.path) and stopped.done >= 4
    assert str(stopped) == f"{stopped.done} of 40 calls done and cached; run it again to resume"


def test_arun_is_awaitable():
    results = asyncio.run(pl.arun(suite(), PROMPT, pl.FakeProvider(answer_by_parity), progress=False, cache=False))
    assert results.df["passed"].all()


def test_bad_arguments_are_clear():
    with pytest.raises(pl.errors.RunError, match="unknown run option"):
        pl.run(suite(), PROMPT, pl.FakeProvider(), progres=False)
    with pytest.raises(pl.errors.RunError, match="must be Prompt"):
        pl.run(suite(), {"A": "prompts/x.yaml"}, pl.FakeProvider())
    with pytest.raises(pl.errors.RunError, match="no cases"):
        pl.run(pl.Suite("empty"), PROMPT, pl.FakeProvider())
    with pytest.raises(pl.errors.MissingVariablesError):
        # no few-shot examples here: a prompt whose examples lack the variable is refused when it is built
        pl.run(suite(), pl.Prompt(name="p", version="1", model="fake:m", template="{{ subject }}"), pl.FakeProvider())
    with pytest.raises(pl.errors.ModelSpecError, match="cannot tell the provider"):
        pl.run(suite(), PROMPT, "mystery-model")


def test_scorer_errors_are_recorded():
    def exploding(case, output):
        raise ValueError("scorer bug")

    results = pl.run(suite(2), PROMPT, pl.FakeProvider("positive"), scorer=exploding, progress=False,
                     cache=False, max_error_rate=1.0)
    assert (results.df["error_type"] == "scoring_error").all()
    assert results.df["output"].notna().all() and "scorer bug" in results.df["error"].iloc[0]


def test_provider_instances_serve_string_ids_and_names_must_differ():
    fake = pl.FakeProvider(answer_by_parity)
    fake.name = "openai"
    results = pl.run(suite(2), PROMPT, "openai:gpt-4o-mini-2024-07-18", providers={"openai": fake},
                     progress=False, cache=False)
    assert (results.df["model"] == "openai:gpt-4o-mini-2024-07-18").all()
    assert fake.calls[0].model == "gpt-4o-mini-2024-07-18"
    with pytest.raises(pl.errors.RunError, match="both named 'fake'"):
        pl.run(suite(2), PROMPT, [pl.FakeProvider("x"), pl.FakeProvider("y")], progress=False, cache=False)
