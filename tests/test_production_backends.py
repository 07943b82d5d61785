"""The one suite every event-log backend passes: SQLite (`EventLog`), DuckDB (`ParquetLog`) and PostgreSQL
(``EventLog("postgresql://…")``) — same API, same aggregates, same A/B, monitoring and alert results.

`event_backend` (tests/conftest.py) loads the same events into each backend. Aggregates are pinned to pandas
group-bys of the frame the events came from; the analyses (A/B read, metrics, alert checks) must agree across
backends, so each is compared with the SQLite result on the same events.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from promptlab.errors import EventLogError
from promptlab.production import (
    Design,
    EventLog,
    TrafficSpec,
    analyze_experiment,
    check_rules,
    default_alert_rules,
    prompt_metrics,
    simulate_traffic,
)
from promptlab.production._eventlog import conform
from promptlab.production._query import SUM_COLUMNS, EventFilter, aggregate, first_seen_units, latency_sketches
from promptlab.production._schema import COLUMN_NAMES, hash_unit, to_ms
from promptlab.production._sketch import DEFAULT_ALPHA

T0 = to_ms("2025-01-06T00:00:00")
HOUR = 3_600_000


def ugly_events() -> pd.DataFrame:
    """Hand-made rows no simulator writes: NaN everywhere, unicode labels, an arm-less and a lonely arm, huge
    token counts, a ``?`` and a ``%`` inside text values."""
    rows = []
    for i in range(40):
        rows.append({
            "ts_ms": T0 + i * 90_000 + 7, "experiment": "exp ü" if i % 4 else None,
            "prompt": "p?%" if i % 2 else "🙂",
            "version": "1.0" if i % 3 else "2.0", "arm": [None, "A", "B", "Ω"][i % 4] if i != 39 else "solo",
            "unit_hash": hash_unit(f"u{i % 7}") if i % 5 else None, "request_id": f"r{i}",
            "latency_s": None if i % 6 == 0 else 0.05 * (i + 1),
            "input_tokens": None if i % 8 == 0 else 10 ** 9 + i, "output_tokens": i,
            "cost_usd": None if i % 3 == 0 else 0.0001 * i, "success": None if i % 9 == 0 else i % 2,
            "format_ok": None if i % 2 else int(i % 5 != 0), "error_type": ["timeout", None, "server"][i % 3],
            "quality": None if i % 4 else 1.0 + (i % 5), "model": "m-é", "outcome": "answered",
        })
    return pd.DataFrame(rows)


def traffic() -> pd.DataFrame:
    """Seeded simulated A/B traffic (12 hours) plus the ugly rows."""
    spec = TrafficSpec(hours=12, calls_per_hour=300, users=800)
    return pd.concat([simulate_traffic(spec, seed=7), ugly_events()], ignore_index=True)


def expected_aggregate(frame: pd.DataFrame, by: list[str], window_ms: int | None = None) -> pd.DataFrame:
    """The reference: pandas group-by sums over the same events (not our SQL)."""
    f = conform(frame)
    keys = list(by)
    if window_ms is not None:
        f["window_ms"] = f["ts_ms"] - f["ts_ms"] % window_ms
        keys.append("window_ms")
    f = f.assign(
        _success=f["success"].astype("Float64"), _fail=1 - f["format_ok"].astype("Float64"),
        _err=f["error_type"].notna().astype(int), _timeout=(f["error_type"] == "timeout").astype(int),
        _lat2=f["latency_s"] ** 2, _both=(f["input_tokens"].notna() & f["output_tokens"].notna()).astype(int),
        _cost2=f["cost_usd"] ** 2, _q2=f["quality"] ** 2)
    f["_in"] = f["input_tokens"].where(f["output_tokens"].notna())
    grouped = f.groupby(keys, dropna=False) if keys else f.groupby(lambda _: 0)
    out = grouped.agg(
        n=("prompt", "size"), success_n=("success", "count"), successes=("_success", "sum"),
        format_n=("format_ok", "count"), format_failures=("_fail", "sum"), errors=("_err", "sum"),
        timeouts=("_timeout", "sum"), latency_n=("latency_s", "count"), latency_sum=("latency_s", "sum"),
        latency_sumsq=("_lat2", "sum"), tokens_n=("_both", "sum"), input_tokens_sum=("_in", "sum"),
        cost_n=("cost_usd", "count"), cost_sum=("cost_usd", "sum"), quality_n=("quality", "count"),
        quality_sum=("quality", "sum"), quality_sumsq=("_q2", "sum"), first_ms=("ts_ms", "min"),
        last_ms=("ts_ms", "max"), units=("unit_hash", "nunique"))
    out = out.reset_index(drop=not keys)
    return out.sort_values(keys, na_position="first", kind="stable").reset_index(drop=True) if keys else out


def _same_numbers(got: pd.DataFrame, want: pd.DataFrame, columns) -> None:
    for name in columns:
        g = pd.to_numeric(got[name]).astype(float).to_numpy()
        w = pd.to_numeric(want[name]).astype(float).to_numpy()
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9, err_msg=name)


def test_every_backend_names_its_dialect(event_backend):
    source = event_backend(ugly_events())
    assert source.dialect == event_backend.name
    assert len(source) == 40


@pytest.mark.parametrize("by, window_ms", [([], None), (["arm"], None), (["prompt", "version", "arm"], None),
                                           (["experiment", "arm"], HOUR), (["error_type"], 600_000)])
def test_aggregates_match_pandas_on_every_backend(event_backend, by, window_ms):
    frame = traffic()
    source = event_backend(frame)
    got = aggregate(source, by, window_s=None if window_ms is None else window_ms / 1000, units=True)
    want = expected_aggregate(frame, by, window_ms)
    assert len(got) == len(want)
    for key in by:  # labels come back as they went in: unicode, None for missing
        assert got[key].tolist() == want[key].astype(object).where(want[key].notna(), None).tolist()
    _same_numbers(got, want, [c for c in want.columns if c not in by])


def test_filters_and_tail_counts_agree(event_backend):
    frame = traffic()
    source = event_backend(frame)
    where = EventFilter(prompt="p?%", arms=("A", "Ω"), exclude_arms=("B",)).between(T0, T0 + 20 * 90_000)
    got = aggregate(source, ["arm"], where=where, latency_over_s=0.3)
    f = conform(frame)
    f = f[(f["prompt"] == "p?%") & f["arm"].isin(["A", "Ω"]) & (f["ts_ms"] >= T0) & (f["ts_ms"] < T0 + 1_800_000)]
    assert got["arm"].tolist() == sorted(f["arm"].unique())
    assert got["n"].tolist() == f.groupby("arm").size().sort_index().tolist()
    assert got["latency_over"].tolist() == (f["latency_s"] > 0.3).groupby(f["arm"]).sum().sort_index().tolist()


def test_one_scan_by_latency_bucket_rolls_up_to_the_sums_and_the_sketches(event_backend):
    source = event_backend(traffic())
    fine = aggregate(source, ["arm"], window_s=3600, latency_buckets=DEFAULT_ALPHA)
    assert fine["bucket"].nunique() > 50  # really split by bucket, not one row per window
    keyed = fine.assign(arm=fine["arm"].fillna("<none>"))
    sums = [c for c in SUM_COLUMNS if not c.endswith("sumsq")]  # pandas' reference has no cost/latency sumsq
    rolled = keyed.groupby(["arm", "window_ms"])[sums].sum().reset_index()
    want = expected_aggregate(traffic(), ["arm"], window_ms=HOUR)
    want = want.assign(arm=want["arm"].fillna("<none>")).sort_values(["arm", "window_ms"]).reset_index(drop=True)
    _same_numbers(rolled.sort_values(["arm", "window_ms"]).reset_index(drop=True), want,
                  [c for c in sums if c in want and c != "output_tokens_sum"])
    timed = keyed[keyed["latency_n"] > 0].groupby(["arm", "bucket"])["latency_n"].sum()
    sketches = latency_sketches(source, ["arm"], window_s=3600)
    direct = sketches.assign(arm=sketches["arm"].fillna("<none>")).groupby(["arm", "bucket"])["bucket_n"].sum()
    assert timed.to_dict() == direct.to_dict()


def test_first_seen_units_match_pandas(event_backend):
    source = event_backend(traffic())
    got = first_seen_units(source, ["arm"], window_s=3600)
    f = conform(traffic()).dropna(subset=["unit_hash"])
    first = f.groupby(["arm", "unit_hash"], dropna=False)["ts_ms"].min().reset_index()
    first["window_ms"] = first["ts_ms"] - first["ts_ms"] % HOUR
    want = first.groupby(["arm", "window_ms"], dropna=False).size()
    assert want.sum() == f.groupby(["arm", "unit_hash"], dropna=False).ngroups > 100
    as_dict = lambda frame: {(None if pd.isna(a) else a, int(w)): int(n)  # noqa: E731
                             for a, w, n in zip(frame["arm"], frame["window_ms"], frame["units"], strict=True)}
    assert as_dict(got) == as_dict(want.rename("units").reset_index())


def test_query_takes_qmark_parameters_and_leaves_literals_alone(event_backend):
    source = event_backend(ugly_events())
    got = source.query("SELECT COUNT(*) AS n FROM events WHERE prompt = ? AND 'a?b' <> '%' AND ts_ms % 2 = ?",
                       ["p?%", 1])
    want = ((ugly_events()["prompt"] == "p?%") & (ugly_events()["ts_ms"] % 2 == 1)).sum()
    assert int(got["n"].iloc[0]) == want
    assert source.query("SELECT 1 AS one")["one"].tolist() == [1]


def test_frame_round_trips_every_value(event_backend):
    frame = ugly_events()
    got = event_backend(frame).frame()
    pd.testing.assert_frame_equal(got, conform(frame), check_exact=False, rtol=1e-12)
    assert event_backend(frame).frame(EventFilter(arms=("Ω",)), limit=3)["arm"].tolist() == ["Ω"] * 3


@pytest.mark.parametrize("statement", [
    "UPDATE events SET prompt = 'x'", "DELETE FROM events", "DROP TABLE events", "CREATE TABLE t (x INTEGER)",
    "INSERT INTO events (ts_ms, prompt) VALUES (1, 'x')", "SELECT 1; DELETE FROM events"])
def test_query_is_read_only_on_every_backend(event_backend, statement):
    source = event_backend(ugly_events())
    with pytest.raises(EventLogError):
        source.query(statement)
    assert len(source) == 40


def test_bad_sql_is_an_event_log_error_naming_the_columns(event_backend):
    source = event_backend(ugly_events())
    with pytest.raises(EventLogError, match="latency_s"):
        source.query("SELECT no_such_column FROM events")


# ---- the analyses give the same answers -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sqlite_reference(tmp_path_factory):
    """The SQLite backend's results on the shared traffic (what every backend must reproduce)."""
    frame = traffic()
    with EventLog(tmp_path_factory.mktemp("ref") / "e.db") as log:
        log.append_frame(frame)
        yield _analyses(log)


def _analyses(source) -> dict:
    design = Design("sentiment-rollout", ("A", "B"), (1.0, 1.0), "A")
    now = to_ms("2025-01-06T11:00:00")
    return {"ab": analyze_experiment(source, design, look_every_s=3600),
            "metrics": prompt_metrics(source, window_s=3600).df,
            "checks": check_rules(source, default_alert_rules(), now=now)}


def _assert_frames_agree(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_exact=False,
                                  rtol=1e-9, check_dtype=False)


def test_ab_read_is_the_same_on_every_backend(event_backend, sqlite_reference):
    got = _analyses(event_backend(traffic()))["ab"]
    want = sqlite_reference["ab"]
    for name in ("arms", "decision", "guardrails", "looks"):
        _assert_frames_agree(getattr(got, name), getattr(want, name))
    assert (got.status, got.reasons) == (want.status, want.reasons)
    assert got.srm is not None and math.isclose(got.srm.p_value, want.srm.p_value, rel_tol=1e-9)
    assert got.n == want.n > 2000


def test_monitoring_and_alert_checks_are_the_same_on_every_backend(event_backend, sqlite_reference):
    got = _analyses(event_backend(traffic()))
    _assert_frames_agree(got["metrics"], sqlite_reference["metrics"])
    _assert_frames_agree(got["checks"], sqlite_reference["checks"])
    assert len(got["checks"]) > 0


def test_an_empty_log_gives_empty_answers(event_backend):
    source = event_backend(ugly_events().iloc[:0])
    assert len(source) == 0
    assert aggregate(source, ["arm"]).empty
    assert source.frame().empty


# ---- the writing API of the appendable backends ------------------------------------------------------------------
def test_writing_api_is_the_same(log_backend):
    with log_backend.open(batch_size=3, unit_salt="pepper") as log:
        assert isinstance(log, EventLog)
        event = log.record("p", unit_id="alice@example.com", success=True, latency_s=0.25, arm="A")
        log.append(event)
        log.extend([event, event])
        assert log.append_frame(pd.DataFrame({"prompt": ["q", "q"], "success": [1, None]})) == 2
        log.flush()
        assert len(log) == 6
        frame = log.frame()
        salted = hash_unit("alice@example.com", "pepper")
        assert frame["unit_hash"].iloc[0] == salted == log.hash_unit("alice@example.com")
        summary = log.summary()
        assert (summary["events"], summary["prompts"]) == (6, {"p": 4, "q": 2})
        assert "pepper" not in repr(log) and "pepper" not in log._repr_html_()
        with pytest.raises(EventLogError, match="unknown event fields"):
            log.record("p", latency_ms=3)
        with pytest.raises(EventLogError, match="unknown event columns"):
            log.append_frame(pd.DataFrame({"prompt": ["p"], "latency_ms": [1]}))
    with pytest.raises(EventLogError, match="closed"):
        log.record("p")
    log.close()  # twice is fine


def test_reads_see_buffered_writes_and_parquet_export_matches(log_backend, tmp_path):
    from promptlab.production import ParquetLog

    frame = traffic()
    with log_backend.open(batch_size=10_000, max_delay_s=3600) as log:
        log.append_frame(frame.iloc[:100])
        log.record("late", arm="A")  # buffered, not yet written
        assert len(log) == 101
        path = log.to_parquet(tmp_path / "export.parquet", chunk_rows=37)
        want = aggregate(log, ["prompt", "arm"], units=True)
    pd.testing.assert_frame_equal(aggregate(ParquetLog(path), ["prompt", "arm"], units=True), want)
    assert set(COLUMN_NAMES) <= set(ParquetLog(path).frame().columns)
