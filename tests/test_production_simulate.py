"""Simulated traffic: seeded, fast, realistic, with the injected degradation the notebooks detect."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from promptlab.errors import ExperimentError
from promptlab.production import (
    AlertManager,
    Degradation,
    EventLog,
    ParquetLog,
    PromptABTest,
    TrafficSpec,
    assign_arm,
    hash_unit,
    prompt_metrics,
    simulate_traffic,
    write_traffic,
)
from promptlab.production._schema import COLUMN_NAMES, to_ms


@pytest.fixture(scope="module")
def degraded() -> pd.DataFrame:
    return simulate_traffic(degradation=Degradation(), seed=2)


def test_fifty_thousand_events_in_well_under_a_few_seconds():
    started = time.perf_counter()
    frame = simulate_traffic(seed=1)
    assert len(frame) > 50_000 and time.perf_counter() - started < 3
    assert list(frame.columns) == list(COLUMN_NAMES)[:6] + [c for c in COLUMN_NAMES[6:] if c != "request_id"]


def test_seeded_and_sticky(degraded):
    again = simulate_traffic(degradation=Degradation(), seed=2)
    pd.testing.assert_frame_equal(degraded, again)
    assert not simulate_traffic(seed=3).equals(degraded)
    per_unit = degraded.groupby("unit_hash")["arm"].nunique()
    assert (per_unit == 1).all()  # a unit keeps its arm
    arm_of = degraded.groupby("unit_hash")["arm"].first()
    seen = [u for u in (f"user-{i}" for i in range(300)) if hash_unit(u) in arm_of.index]
    assert len(seen) > 100  # the simulated units are hashed exactly as EventLog.record hashes them
    assert all(arm_of[hash_unit(u)] == assign_arm("sentiment-rollout", u, ["A", "B"], [1, 1]) for u in seen)


def test_volume_follows_the_time_of_day(degraded):
    hours = (degraded["ts_ms"] - to_ms(TrafficSpec().start)) // 3_600_000 % 24
    per_hour = degraded.groupby(hours).size()
    assert per_hour.loc[14] > 2 * per_hour.loc[2]  # mid-afternoon peak, night trough


def test_the_degradation_hits_arm_b_from_its_hour(degraded):
    hours = (degraded["ts_ms"] - to_ms(TrafficSpec().start)) / 3_600_000
    answered = degraded[degraded["error_type"].isna()]
    after = hours.loc[answered.index] >= 30

    def stats(frame):
        return 1 - frame["format_ok"].mean(), np.quantile(frame["latency_s"], 0.95)

    fmt_before, p95_before = stats(answered[(answered["arm"] == "B") & ~after])
    fmt_after, p95_after = stats(answered[(answered["arm"] == "B") & after])
    fmt_a, p95_a = stats(answered[(answered["arm"] == "A") & after])
    assert fmt_before == pytest.approx(0.015, abs=0.005) and fmt_after == pytest.approx(0.12, abs=0.015)
    assert p95_after / p95_before == pytest.approx(2.0, rel=0.1)
    assert fmt_a == pytest.approx(0.015, abs=0.006) and p95_a == pytest.approx(p95_before, rel=0.1)


def test_healthy_and_degraded_logs_read_as_the_notebooks_need(tmp_path, degraded):
    log = EventLog(tmp_path / "degraded.db")
    log.append_frame(degraded)
    report = PromptABTest("sentiment-rollout", {"A": "1.0.0", "B": "1.1.0"}, log=log).analyze()
    assert report.status == "stop B" and not report.srm.mismatch
    healthy = EventLog(tmp_path / "healthy.db")
    write_traffic(healthy, seed=2)
    assert PromptABTest("sentiment-rollout", {"A": "1.0.0", "B": "1.1.0"}, log=healthy).analyze().status == "ship B"
    metrics = prompt_metrics(log).df
    late_b = metrics[(metrics["version"] == "1.1.0") & (metrics["window_start"] >= "2025-01-07T08:00Z")]
    assert (late_b["format_failure_rate"] > 0.07).all()
    start = TrafficSpec().start
    alerts = AlertManager().replay(log, start=start + pd.Timedelta(hours=26), end=start + pd.Timedelta(hours=36))
    fired = alerts.firing.groupby("rule")["window_end"].min()
    assert fired["format_failures"] >= pd.Timestamp(start) + pd.Timedelta(hours=31)
    assert set(alerts.firing["version"]) == {"1.1.0"}
    fig = prompt_metrics(log).plot_alerts(alerts, "p95_latency_ms")
    marks = [t for t in fig.data if t.name == "alert fired"]
    assert marks and max(marks[0].y) > 2  # seconds, on the report's scale


def test_write_traffic_to_parquet_and_bad_degradation(tmp_path):
    spec = TrafficSpec(hours=2, calls_per_hour=300)
    frame = write_traffic(tmp_path / "t.parquet", spec, seed=0)
    assert len(ParquetLog(tmp_path / "t.parquet")) == len(frame)
    write_traffic(tmp_path / "t.db", spec, seed=0)
    assert len(EventLog(tmp_path / "t.db")) == len(frame)
    with pytest.raises(ExperimentError, match="degradation arm 'C'"):
        simulate_traffic(spec, degradation=Degradation(arm="C"))
