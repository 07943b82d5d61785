"""Rows stream as calls finish: each call is scored into its row at once, a big run spills its rows to disk in
chunks instead of holding one object per call, and the frame comes back the same, in plan order. Rows also say
which server answered (``served_by``)."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import pandas as pd
import pytest

import promptlab as pl
from promptlab.errors import ProviderError
from promptlab.evaluation import _rowsink
from promptlab.providers._base import Completion

PROMPT = pl.Prompt(name="p", version="1", model="fake:m", system="Classify.", template="Text: {{ input }}")


def suite(n: int) -> pl.Suite:
    s = pl.Suite("s", labels=["positive", "negative"])
    for i in range(n):
        s.add_case(f"text {i}", "positive" if i % 3 else "negative", id=f"c{i}", category=["a", "b"][i % 2])
    return s


class Jittery(pl.FakeProvider):
    """Answers after a random delay (calls finish out of plan order); some cases fail, some answer wrong."""

    def __init__(self, seed: int = 0):
        super().__init__(lambda r: "positive", default=None)
        self.rng = random.Random(seed)

    async def complete(self, request):
        await asyncio.sleep(self.rng.uniform(0, 0.004))
        number = int(request.messages[-1].content.split()[-1])
        if number % 7 == 3:
            raise ProviderError("no", error_type="bad_request", retryable=False)
        return await super().complete(request)


def run(n: int, **options) -> pl.Results:
    return pl.run(suite(n), PROMPT, Jittery(), progress=False, cache=False, concurrency=8, max_error_rate=1.0,
                  **options)


def comparable(results: pl.Results) -> pd.DataFrame:
    return results.df.drop(columns=["run_id", "latency_s"])


def test_a_spilled_run_gives_the_same_frame_in_plan_order(monkeypatch):
    whole = run(53)
    monkeypatch.setattr(_rowsink, "CHUNK_ROWS", 5)
    spilled = run(53)
    assert list(spilled.df["case_id"]) == [f"c{i}" for i in range(53)]  # plan order, though calls finished out of it
    pd.testing.assert_frame_equal(comparable(spilled), comparable(whole))
    assert (spilled.df["error_type"] == "bad_request").sum() == len([i for i in range(53) if i % 7 == 3])
    assert spilled.df["passed"].notna().sum() == 53 - 8


def test_a_run_never_holds_more_than_a_chunk_of_rows(monkeypatch):
    monkeypatch.setattr(_rowsink, "CHUNK_ROWS", 10)
    held, add = [], _rowsink.RowSink.add

    def watched(self, row):
        add(self, row)
        held.append(len(self.rows))

    monkeypatch.setattr(_rowsink.RowSink, "add", watched)
    results = run(95)
    assert len(held) == 95 and max(held) < 10 and len(results.df) == 95


def test_rows_of_calls_never_made_close_the_frame_in_plan_order(monkeypatch):
    monkeypatch.setattr(_rowsink, "CHUNK_ROWS", 4)
    broken = pl.FakeProvider(lambda request: ProviderError("down", error_type="auth"))
    with pytest.raises(pl.errors.RunError) as info:
        pl.run(suite(30), PROMPT, broken, progress=False, cache=False, concurrency=2)
    df = info.value.results.df
    assert list(df["case_id"]) == [f"c{i}" for i in range(30)]
    assert set(df["error_type"]) == {"auth", "not_run"} and (df["error_type"] == "not_run").sum() > 0


def test_the_spill_folder_is_removed(monkeypatch, tmp_path):
    monkeypatch.setattr(_rowsink, "CHUNK_ROWS", 3)
    monkeypatch.setattr(_rowsink.tempfile, "tempdir", str(tmp_path))
    run(10)
    assert not list(tmp_path.glob("promptlab-rows-*"))


# -- served_by ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Served(Completion):
    served_by: str | None = None  # the shared contract's field (providers/_base.py), for a branch without it


class PoolLike(pl.FakeProvider):
    """Answers like a server pool: each completion names the server that answered."""

    async def complete(self, request):
        done = await super().complete(request)
        server = f"http://10.0.0.{int(request.messages[-1].content.split()[-1]) % 2}:8000/v1"
        return _Served(**{**{f.name: getattr(done, f.name) for f in dataclasses.fields(Completion)},
                          "served_by": server})


def test_rows_record_which_server_answered():
    results = pl.run(suite(4), PROMPT, PoolLike("positive"), progress=False, cache=False)
    assert list(results.df["served_by"]) == ["http://10.0.0.0:8000/v1", "http://10.0.0.1:8000/v1"] * 2
    assert results.df["served_by"].dtype == "string"


def test_served_by_is_na_for_a_single_endpoint_and_for_failed_calls():
    results = run(8)
    assert results.df["served_by"].isna().all()
