"""Analysis pushed down to the engine: SQL written once and rendered per dialect (executed on every backend,
golden files for the warehouses), latency sketches pinned to the ddsketch library and to numpy, and
`analyze` of an aggregate table computed elsewhere.

Golden files: ``PROMPTLAB_REGEN_GOLDEN=1 pytest tests/test_production_pushdown.py -k golden`` rewrites
tests/golden/sql/<dialect>/*.sql; review the diff before committing it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from promptlab.errors import EventLogError, ExperimentError
from promptlab.production import Design, EventLog, LatencySketch, analyze, analyze_experiment, warehouse_sql
from promptlab.production._query import (
    DIALECTS,
    WAREHOUSE_QUERIES,
    EventFilter,
    aggregate,
    latency_quantiles,
    latency_sketches,
    render,
)
from promptlab.production._schema import to_ms
from promptlab.production._simulate import Degradation, TrafficSpec, simulate_traffic
from promptlab.production._sketch import ZERO_KEY, group_sketches, keys_of, rank_interval

GOLDEN = Path(__file__).resolve().parent / "golden" / "sql"
WAREHOUSES = ("bigquery", "snowflake", "spark")
T0 = to_ms("2025-01-06T00:00:00")
HOUR = 3_600_000
ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
DESIGN = Design("sentiment-rollout", ("A", "B"), (1.0, 1.0), "A")


def traffic(n_hours: float = 6, per_hour: float = 2000, seed: int = 3) -> pd.DataFrame:
    spec = TrafficSpec(hours=n_hours, calls_per_hour=per_hour, users=3000)
    return simulate_traffic(spec, degradation=Degradation(start_hour=3), seed=seed)


# ---- sketches against the ddsketch library and numpy --------------------------------------------------------
def test_bucket_keys_are_ddsketchs_logarithmic_mapping(event_backend):
    ddsketch = pytest.importorskip("ddsketch")
    rng = np.random.default_rng(1)
    x = np.r_[rng.lognormal(-0.5, 1.2, 3000), 1e-6, 0.001, 1.0, 37.5, 600.0]
    mapping = ddsketch.LogarithmicMapping(ALPHA)  # reference: ddsketch's bucket of every value
    expected = np.array([mapping.key(v) for v in x])
    assert (keys_of(x, ALPHA) == expected).all()
    source = event_backend(pd.DataFrame({"prompt": "p", "ts_ms": T0, "latency_s": x}))
    buckets = latency_sketches(source, alpha=ALPHA).sort_values("bucket")
    keys, counts = np.unique(expected, return_counts=True)
    assert buckets["bucket"].tolist() == keys.tolist() and buckets["bucket_n"].tolist() == counts.tolist()


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_quantiles_equal_ddsketch_where_both_read_the_same_rank(q, event_backend):
    ddsketch = pytest.importorskip("ddsketch")
    rng = np.random.default_rng(7)
    x = rng.lognormal(0.0, 0.8, 1001)  # n = 1001: ddsketch's rank q·(n−1) = our ⌈n·q⌉ − 1
    reference = ddsketch.DDSketch(ALPHA)
    for v in x:
        reference.add(float(v))
    source = event_backend(pd.DataFrame({"prompt": "p", "ts_ms": T0, "latency_s": x}))
    got = latency_quantiles(source, qs=(q,), alpha=ALPHA).iloc[0]
    assert got[f"p{100 * q:g}_s"] == pytest.approx(reference.get_quantile_value(q), rel=1e-12)


@pytest.mark.parametrize("n", [1, 2, 19, 100, 999, 20_000])
def test_quantiles_within_alpha_of_numpy_and_intervals_cover_scipys(n):
    rng = np.random.default_rng(n)
    x = np.round(rng.lognormal(-0.3, 1.0, n), 3)  # rounded: ties, as real latencies have
    sketch = LatencySketch.from_values(x, ALPHA)
    for q in (0.5, 0.9, 0.95, 0.99):
        exact = float(np.quantile(x, q, method="inverted_cdf"))  # reference: numpy's inverted_cdf
        ci = sketch.interval(q, 0.95)
        assert abs(ci.estimate - exact) <= ALPHA * exact * (1 + 1e-12)
        ref = st.quantile_test(x, q=exact, p=q).confidence_interval(0.95)  # reference: scipy order statistics
        ref_low = -math.inf if np.isnan(ref.low) else ref.low
        ref_high = math.inf if np.isnan(ref.high) else ref.high
        assert ci.low <= ref_low and ci.high >= ref_high  # the sketch interval contains the exact one ...
        if math.isfinite(ref_low):  # ... and is at most a bucket wider on each side
            assert ci.low >= ref_low / GAMMA * (1 - 1e-12)
        if math.isfinite(ref_high):
            assert ci.high <= ref_high * GAMMA * (1 + 1e-12)


@pytest.mark.parametrize("n", [10, 59, 100, 1000, 5003])
@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_rank_interval_is_scipys_quantile_test(n, q):
    ranks = np.arange(n, dtype=float)  # values = their own ranks: scipy's interval is then a pair of ranks
    ref = st.quantile_test(ranks, q=ranks[n // 2], p=q).confidence_interval(0.95)
    low, high = rank_interval(n, q, 0.95)
    assert low == (None if np.isnan(ref.low) else int(ref.low))
    assert high == (None if np.isnan(ref.high) else int(ref.high))


def test_sketches_merge_exactly_across_windows_and_arms():
    rng = np.random.default_rng(5)
    parts = [rng.lognormal(0, 1, n) for n in (10, 1000, 333)]
    merged = LatencySketch.from_values(parts[0]).merge(*(LatencySketch.from_values(p) for p in parts[1:]))
    whole = LatencySketch.from_values(np.concatenate(parts))
    assert (merged.keys == whole.keys).all() and (merged.counts == whole.counts).all()
    with pytest.raises(EventLogError, match="different accuracy"):
        merged.merge(LatencySketch.from_values(parts[0], 0.02))


def test_ugly_latencies_nan_zero_one_value_and_empty():
    sketch = LatencySketch.from_values([np.nan, 0.0, 0.0, 2.5])
    assert sketch.n == 3 and sketch.keys[0] == ZERO_KEY
    assert sketch.quantile(0.5) == 0.0 and sketch.quantile(1.0) == pytest.approx(2.5, rel=ALPHA)
    empty = LatencySketch.from_values([np.nan])
    assert empty.n == 0 and math.isnan(empty.quantile(0.95)) and math.isnan(empty.interval(0.95).high)
    one = LatencySketch.from_values([0.7]).interval(0.95)
    assert one.estimate == pytest.approx(0.7, rel=ALPHA) and math.isinf(one.low) and math.isinf(one.high)
    with pytest.raises(EventLogError, match="quantile level"):
        one_sketch = LatencySketch.from_values([1.0])
        one_sketch.quantile(1.5)
    with pytest.raises(EventLogError, match="alpha"):
        LatencySketch.from_values([1.0], alpha=0.0)
    assert LatencySketch.from_values(np.r_[np.full(90, 1.0), np.full(10, 9.0)]).count_above(2.0) == 10


# ---- the same SQL on every engine --------------------------------------------------------------------------
def test_aggregates_and_sketches_agree_with_pandas_on_every_backend(event_backend):
    frame = traffic()
    frame.loc[frame.index[:50], "arm"] = "ünïcode-arm ✓"  # unicode labels survive every engine
    source = event_backend(frame)
    got = aggregate(source, ["arm"], window_s=3600, units=True, latency_over_s=1.5)
    hours = (frame["ts_ms"] - frame["ts_ms"] % HOUR)
    by = frame.assign(window_ms=hours).groupby(["arm", "window_ms"])
    expected_n = by.size()
    assert got.set_index(["arm", "window_ms"])["n"].sort_index().tolist() == expected_n.sort_index().tolist()
    assert got["latency_over"].sum() == int((frame["latency_s"] > 1.5).sum())
    assert got["latency_sumsq"].sum() == pytest.approx(float((frame["latency_s"] ** 2).sum()), rel=1e-9)
    sketches = group_sketches(latency_sketches(source, ["arm"]), ["arm"])
    for arm, part in frame.groupby("arm"):
        exact = float(np.quantile(part["latency_s"].dropna(), 0.95, method="inverted_cdf"))
        assert sketches[(arm,)].quantile(0.95) == pytest.approx(exact, rel=ALPHA)


def test_render_keeps_qmark_parameters_and_refuses_unknown_dialects():
    sql = "SELECT arm, (ts_ms - ts_ms % 60000) AS w, COUNT(*) AS n FROM events WHERE arm IN (?, ?) GROUP BY arm"
    for dialect in DIALECTS:
        text = render(sql, dialect)
        assert text.count("?") == 2 and "%s" not in text
    assert "MOD(ts_ms, 60000)" in render(sql, "bigquery")
    with pytest.raises(EventLogError, match="unknown SQL dialect"):
        render(sql, "oracle-ish")

    class Odd:
        dialect = "nope"

        def query(self, sql, params=()):  # pragma: no cover - never reached
            raise AssertionError

    with pytest.raises(EventLogError, match="dialect"):
        aggregate(Odd())


# ---- golden SQL for the warehouses -------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", WAREHOUSES)
@pytest.mark.parametrize("name", sorted(WAREHOUSE_QUERIES))
def test_golden_warehouse_sql(dialect, name):
    sqlglot = pytest.importorskip("sqlglot")
    text = warehouse_sql(name, dialect)
    path = GOLDEN / dialect / f"{name}.sql"
    if os.environ.get("PROMPTLAB_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run PROMPTLAB_REGEN_GOLDEN=1 pytest {__file__} -k golden"
    assert text == path.read_text(encoding="utf-8"), f"{path} changed; regenerate it and review the diff"
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    parsed = sqlglot.parse_one(body.replace("?", "0"), read=DIALECTS[dialect])  # the warehouse's parser reads it
    assert parsed.find(sqlglot.exp.From) is not None
    params = text.splitlines()[1].split(":", 1)[1].split(", ")
    assert body.count("?") == len(params)


def test_golden_files_match_the_queries_executed_here(event_backend):
    """The warehouse text is the rendering of the SQL that runs on the engines: run each query's DuckDB/SQLite
    rendering with the parameters its golden header names, and compare with the analysis functions."""
    frame = traffic()
    source = event_backend(frame)
    text = warehouse_sql("srm_units", getattr(source, "dialect", "sqlite"))
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    got = source.query(body, [DESIGN.experiment, "A", "B"]).sort_values("arm")
    expected = aggregate(source, ["arm"], where=EventFilter(experiment=DESIGN.experiment, arms=("A", "B")),
                         units=True)
    assert got["units"].tolist() == expected["units"].tolist() and got["n"].tolist() == expected["n"].tolist()


# ---- analyze(): an aggregate table from elsewhere ----------------------------------------------------------
def _warehouse_tables(source):
    """What a user's warehouse returns for the three queries: `warehouse_sql` rendered in this engine's dialect,
    run with the parameters its header lists — exactly what a user does in BigQuery or Snowflake."""
    def run(name, params):
        text = warehouse_sql(name, getattr(source, "dialect", "sqlite"))
        return source.query("\n".join(line for line in text.splitlines() if not line.startswith("--")), params)

    experiment = [DESIGN.experiment, *DESIGN.arms]
    latency = run("latency_sketch", experiment)
    pooled = LatencySketch.from_buckets(latency["bucket"].astype(int), latency["bucket_n"].astype(int))
    looks = run("ab_looks", [pooled.tail_threshold(0.95), *experiment])
    units = run("srm_units", experiment)[["arm", "units"]]
    return looks, units, latency


def test_analyze_of_aggregates_is_the_engine_report(event_backend):
    source = event_backend(traffic())
    engine = analyze_experiment(source, DESIGN)
    looks, units, latency = _warehouse_tables(source)
    shouted = looks.rename(columns=str.upper)  # Snowflake returns unquoted names in upper case
    report = analyze(shouted, DESIGN, units=units, latency=latency)
    for part in ("arms", "decision", "guardrails", "looks"):
        pd.testing.assert_frame_equal(getattr(report, part), getattr(engine, part), check_dtype=False)
    assert (report.status, report.reasons) == (engine.status, engine.reasons)
    assert report.srm.p_value == engine.srm.p_value


def test_analyze_validates_the_table():
    good = pd.DataFrame({"arm": ["A", "B"], "n": [100, 100], "successes": [50, 60], "success_n": [100, 100]})
    with pytest.raises(ExperimentError, match="lacks the columns"):
        analyze(good.drop(columns="successes"), baseline="A")
    with pytest.raises(ExperimentError, match="DataFrame"):
        analyze([1, 2, 3], baseline="A")
    with pytest.raises(ExperimentError, match="exceeds"):
        analyze(good.assign(successes=[50, 160]), baseline="A")
    with pytest.raises(ExperimentError, match="non-negative"):
        analyze(good.assign(n=[100, np.nan]), baseline="A")
    with pytest.raises(ExperimentError, match="more than one row"):
        analyze(pd.concat([good, good]), baseline="A")
    with pytest.raises(ExperimentError, match="design does not"):
        analyze(good.assign(arm=["A", "Z"]), DESIGN)
    with pytest.raises(ExperimentError, match="baseline"):
        analyze(good)


def test_analyze_reports_missing_guardrails_as_unknown_and_handles_one_empty_arm():
    only_counts = pd.DataFrame({"arm": ["A", "B"], "n": [1000, 1000], "successes": [500, 600],
                                "success_n": [1000, 1000]})
    report = analyze(only_counts, baseline="A")
    guard = report.guardrails.set_index("guardrail")
    assert guard["p_value"].isna().all() and not guard["degraded"].any()
    assert report.arms["error_rate"].isna().all() and report.arms["cost_per_call_usd"].isna().all()
    assert report.decision.iloc[0]["verdict"] == "better"
    empty_b = analyze(only_counts.iloc[:1], Design("x", ("A", "B"), (1, 1), "A"))
    assert empty_b.decision.iloc[0]["verdict"] == "inconclusive" and empty_b.arms.set_index("arm").loc["B", "n"] == 0


# ---- the columnar SQLite reader ----------------------------------------------------------------------------
def test_columnar_sqlite_reader_equals_the_tuple_path_on_ugly_rows(tmp_path):
    pytest.importorskip("adbc_driver_sqlite")
    from promptlab.production._columnar import sqlite_frame
    from promptlab.production._eventlog import conform
    from promptlab.production._schema import COLUMN_NAMES

    n = 3000  # the text column is NULL for far more rows than one default Arrow batch, then holds text
    frame = pd.DataFrame({"prompt": "p ✓ 日本", "ts_ms": T0 + np.arange(n),
                          "latency_s": np.where(np.arange(n) % 7, 0.5, np.nan),
                          "error_type": [None] * (n - 5) + ["timeout"] * 5, "success": np.arange(n) % 2})
    with EventLog(tmp_path / "e.db") as log:
        log.append_frame(frame)
        sql = f"SELECT {', '.join(COLUMN_NAMES)} FROM events WHERE ts_ms >= ? ORDER BY ts_ms, event_id"
        expected = conform(log.query(sql, [T0]))
        got = sqlite_frame(log.path, sql, [T0])
        assert got is not None
        pd.testing.assert_frame_equal(conform(got), expected)
        assert sqlite_frame(log.path, "DELETE FROM events") is None and len(log) == n  # read-only: refused
        assert sqlite_frame(log.path, "SELECT nonsense FROM nowhere") is None  # the caller's path raises it


def test_distinct_units_ignore_missing_units_on_every_backend(event_backend):
    # DuckDB counts distinct hashes of the unit (faster); a missing unit must still not count as one
    frame = pd.DataFrame({"prompt": "p", "ts_ms": T0, "arm": ["A"] * 5 + ["B"] * 3,
                          "unit_hash": ["00000000000000a1", "00000000000000a1", "00000000000000a2", None, None,
                                        None, None, None]})
    got = aggregate(event_backend(frame), ["arm"], units=True, measures=())
    assert got["units"].tolist() == [2, 0] and got["n"].tolist() == [5, 3]
