"""A/B tests: sticky hashing, recording, and the always-valid read pinned to gbstats and scipy."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from promptlab.errors import ExperimentError
from promptlab.production import (
    Design,
    EventLog,
    Guardrails,
    LatencySketch,
    ParquetLog,
    PromptABTest,
    analyze_experiment,
    assign_arm,
    assignment_bucket,
    hash_unit,
)
from promptlab.production._schema import to_ms
from promptlab.stats._sequential import always_valid_proportions

T0 = to_ms("2025-01-06T00:00:00")
HOUR = 3_600_000


def arm_rows(arm: str, n: int, successes: int, *, hour: int = 0, errors: int = 0, units: bool = True,
             latency: np.ndarray | None = None, cost: np.ndarray | None = None,
             experiment: str = "exp") -> pd.DataFrame:
    """n calls of one arm in one hour: the first ``successes`` succeed, the last ``errors`` fail with an error."""
    success = np.zeros(n, dtype=int)
    success[:successes] = 1
    error = np.array([None] * n, dtype=object)
    if errors:
        error[n - errors:] = "server"
    return pd.DataFrame({
        "ts_ms": T0 + hour * HOUR + np.arange(n), "experiment": experiment, "prompt": "p", "version": arm,
        "arm": arm, "unit_hash": [hash_unit(f"{arm}-{hour}-{i}") for i in range(n)] if units else None,
        "success": success, "error_type": error,
        "latency_s": np.full(n, 0.5) if latency is None else latency,
        "cost_usd": np.full(n, 0.001) if cost is None else cost,
    })


def log_of(tmp_path, *frames: pd.DataFrame) -> EventLog:
    log = EventLog(tmp_path / "e.db")
    log.append_frame(pd.concat(frames, ignore_index=True))
    return log


DESIGN = Design("exp", ("A", "B"), (1.0, 1.0), "A")


# ---- assignment ------------------------------------------------------------------------------------------
def test_assignment_is_pinned_and_uses_sha256():
    # reference: hashlib by hand — int(sha256(b"promptlab.ab\0exp-1\0user-1")[:8]) / 2**64
    assert assignment_bucket("exp-1", "user-1") == 0.6649970184759681
    assert assignment_bucket("exp-1", "42") == 0.20056259669314264
    assert [assign_arm("exp-1", u, ["A", "B"], [1, 1]) for u in ("user-1", "user-2", "user-3", "42")] == \
        ["B", "A", "B", "A"]
    # weights 1:1:2 put A in [0, .25), B in [.25, .5), C in [.5, 1)
    assert [assign_arm("exp-1", u, ["A", "B", "C"], [1, 1, 2]) for u in ("user-1", "user-2", "42")] == ["C", "B", "A"]


def test_assignment_is_stable_across_processes():
    code = ("from promptlab.production import assign_arm;"
            "print(''.join(assign_arm('exp-1', f'u{i}', ['A', 'B'], [1, 1]) for i in range(40)))")
    here = "".join(assign_arm("exp-1", f"u{i}", ["A", "B"], [1, 1]) for i in range(40))
    for seed in ("123",):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == here


def test_assignment_follows_the_weights_and_experiments_are_independent():
    counts = Counter(assign_arm("exp", i, ["A", "B"], [9, 1]) for i in range(20_000))
    # binomial(20000, 0.1): sd 42; 5 sd either side
    assert abs(counts["B"] - 2000) < 210
    same = sum(assign_arm("e1", i, ["A", "B"], [1, 1]) == assign_arm("e2", i, ["A", "B"], [1, 1]) for i in range(4000))
    assert abs(same - 2000) < 160


def test_sticky_and_random_assignment(tmp_path):
    with EventLog(tmp_path / "e.db") as log:
        test = PromptABTest("exp", {"A": "v1", "B": "v2"}, log=log, seed=7)
        assert {test.assign("user-9") for _ in range(20)} == {assign_arm("exp", "user-9", ["A", "B"], [1, 1])}
        draws = [test.assign() for _ in range(2000)]
        again = PromptABTest("exp", {"A": "v1", "B": "v2"}, log=log, seed=7)
        assert draws == [again.assign() for _ in range(2000)]
        assert 900 < draws.count("A") < 1100
        arm, prompt = test.prompt_for("user-9")
        assert prompt == {"A": "v1", "B": "v2"}[arm]


def test_bad_designs_are_refused(tmp_path):
    with EventLog(tmp_path / "e.db") as log:
        with pytest.raises(ExperimentError, match="two or more arms"):
            PromptABTest("exp", {"A": "v1"}, log=log)
        with pytest.raises(ExperimentError, match="weights"):
            PromptABTest("exp", {"A": "v1", "B": "v2"}, log=log, weights=[1, 0])
        with pytest.raises(ExperimentError, match="baseline 'C'"):
            PromptABTest("exp", ["v1", "v2"], log=log, baseline="C")
        test = PromptABTest("exp", ["v1", "v2"], log=log)
        with pytest.raises(ExperimentError, match="arm 'Z'"):
            test.record("Z", success=True)


def test_record_writes_experiment_arm_and_hashed_unit(tmp_path):
    class FakePrompt:
        name, version = "sentiment", "2.0.0"

    with EventLog(tmp_path / "e.db") as log:
        test = PromptABTest("exp", {"A": FakePrompt(), "B": "v2"}, log=log)
        test.record("A", unit_id="alice", success=True, latency_s=0.3, cost_usd=0.001)
        test.record("B", unit_id="bob", success=False)
        frame = log.frame()
    assert frame[["prompt", "version", "arm", "experiment"]].values.tolist() == \
        [["sentiment", "2.0.0", "A", "exp"], ["exp", "v2", "B", "exp"]]
    assert frame["unit_hash"].tolist() == [hash_unit("alice"), hash_unit("bob")]


# ---- the read --------------------------------------------------------------------------------------------
def test_decision_matches_statistics_md_t1(tmp_path):
    log = log_of(tmp_path, arm_rows("A", 1000, 200), arm_rows("B", 1000, 240))
    report = analyze_experiment(log, DESIGN)
    row = report.decision.iloc[0]
    # gbstats 0.8.0 SequentialTwoSidedTTest on T1 (200/1000 vs 240/1000, S=5000):
    # p 0.3456753217, CS [−0.0178025758, 0.0978025758]
    assert row.p_value == pytest.approx(0.3456753217, abs=1e-9)
    assert (row.ci_low, row.ci_high) == (pytest.approx(-0.0178025758, abs=1e-9), pytest.approx(0.0978025758, abs=1e-9))
    assert row["diff"] == pytest.approx(0.04) and row.verdict == "inconclusive"
    arms = report.arms.set_index("arm")
    # statsmodels proportion_confint(x, 1000, method='wilson'):
    # 200/1000 → [0.1763770904, 0.2259189646]; 240/1000 → [0.2145565252, 0.2674333892]
    assert arms.loc["A", ["success_low", "success_high"]].tolist() == pytest.approx([0.1763770904, 0.2259189646])
    assert arms.loc["B", ["success_low", "success_high"]].tolist() == pytest.approx([0.2145565252, 0.2674333892])
    assert report.status == "keep running"


def test_srm_on_calls_without_units_matches_statistics_md(tmp_path):
    log = log_of(tmp_path, arm_rows("A", 5000, 2500, units=False), arm_rows("B", 5200, 2600, units=False))
    srm = analyze_experiment(log, DESIGN).srm
    # scipy.stats.chisquare([5000, 5200]) → χ² 3.9215686275, p 0.0476703807, no SRM at 0.001
    assert (srm.chi2, srm.p_value, srm.mismatch) == (pytest.approx(3.9215686275), pytest.approx(0.0476703807), False)


def test_srm_counts_distinct_units(tmp_path):
    a, b = arm_rows("A", 10_000, 5000), arm_rows("B", 10_300, 5150)
    repeat = a.head(500).assign(ts_ms=a["ts_ms"].head(500) + 10)  # returning units add calls, not units
    report = analyze_experiment(log_of(tmp_path, a, b, repeat), DESIGN)
    assert report.arms["units"].tolist() == [10_000, 10_300] and report.arms["n"].tolist() == [10_500, 10_300]
    # scipy.stats.chisquare([10000, 10300]) → χ² 4.4334975369, p 0.0352402238
    assert report.srm.chi2 == pytest.approx(4.4334975369) and report.srm.p_value == pytest.approx(0.0352402238)


def test_ship_stop_and_srm_statuses(tmp_path):
    ship = analyze_experiment(log_of(tmp_path / "1", arm_rows("A", 1000, 500), arm_rows("B", 1000, 700)), DESIGN)
    assert ship.status == "ship B" and ship.decision.verdict[0] == "better"
    stop = analyze_experiment(log_of(tmp_path / "2", arm_rows("A", 1000, 800), arm_rows("B", 1000, 600)), DESIGN)
    assert stop.status == "stop B" and "significantly lower" in stop.reasons[0]
    skewed = analyze_experiment(log_of(tmp_path / "3", arm_rows("A", 1000, 500), arm_rows("B", 1400, 980)), DESIGN)
    assert skewed.srm.mismatch and skewed.status == "keep running"
    assert "sample ratio mismatch" in skewed.reasons[0]


def test_guardrail_error_rate_pinned_and_stops_a_winner(tmp_path):
    log = log_of(tmp_path, arm_rows("A", 1000, 500, errors=200), arm_rows("B", 1000, 600, errors=240))
    g = analyze_experiment(log, DESIGN).guardrails.set_index("guardrail").loc["error_rate"]
    # errors 200/1000 vs 240/1000 are the T1 counts (gbstats 0.8.0
    # SequentialTwoSidedTTest): p 0.3456753217, CS [−0.0178025758, 0.0978025758]
    assert g.p_value == pytest.approx(0.3456753217, abs=1e-9) and g.ci_low == pytest.approx(-0.0178025758, abs=1e-9)
    assert not g.degraded
    log2 = log_of(tmp_path / "2", arm_rows("A", 1000, 500, errors=20), arm_rows("B", 1000, 700, errors=150))
    report = analyze_experiment(log2, DESIGN)
    assert report.decision.verdict[0] == "better" and report.status == "stop B"
    assert "guardrail error_rate" in report.reasons[0]


def test_guardrail_margin_tolerates_a_small_rise(tmp_path):
    frames = arm_rows("A", 2000, 1000, errors=20), arm_rows("B", 2000, 1000, errors=100)
    strict = analyze_experiment(log_of(tmp_path / "1", *frames), DESIGN)
    lenient = analyze_experiment(log_of(tmp_path / "2", *frames),
                                 Design("exp", ("A", "B"), (1, 1), "A", guardrails=Guardrails(error_rate=0.05)))
    assert strict.guardrails.degraded[0] and not lenient.guardrails.degraded[0]


def _mixture_p(theta: float, v: float, n: int, alpha: float = 0.05, tuning: float = 5000) -> float:
    """The normal-mixture p (docs/statistics.md §4), by hand: ρ², τ², Λ, p = min(1, 1/Λ)."""
    rho2 = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / tuning
    tau2 = n * v * rho2
    lam = math.sqrt(v / (v + tau2)) * math.exp(theta ** 2 * tau2 / (2 * v * (v + tau2)))
    return min(1.0, 1 / lam)


def test_cost_guardrail_by_hand(tmp_path):
    cost_a = np.r_[np.full(500, 0.001), np.full(500, 0.003)]
    cost_b = np.r_[np.full(500, 0.0012), np.full(500, 0.0032)]
    log = log_of(tmp_path, arm_rows("A", 1000, 500, cost=cost_a), arm_rows("B", 1000, 500, cost=cost_b))
    g = analyze_experiment(log, DESIGN).guardrails.set_index("guardrail").loc["cost_per_call_usd"]
    v = cost_a.var(ddof=1) / 1000 + cost_b.var(ddof=1) / 1000
    assert g["diff"] == pytest.approx(0.0002)
    assert g.p_value == pytest.approx(_mixture_p(0.0002, v, 2000), rel=1e-6)
    assert g.degraded == (g.ci_low > 0)


def test_latency_quantiles_and_tail_guardrail(tmp_path):
    lat = np.arange(1, 1001) / 10
    log = log_of(tmp_path, arm_rows("A", 1000, 500, latency=lat), arm_rows("B", 1000, 500, latency=lat * 2))
    report = analyze_experiment(log, DESIGN)
    a = report.arms.set_index("arm").loc["A"]
    ci = st.quantile_test(lat, q=95.0, p=0.95).confidence_interval(0.95)  # reference: scipy order statistics
    # np.quantile(lat, [0.95, 0.5], method='inverted_cdf') = 95, 50; read from sketches: within 1% (alpha), the
    # interval at most one bucket (γ) wider than scipy's on each side
    gamma = 1.01 / 0.99
    assert (a.p95_s, a.p50_s) == (pytest.approx(95.0, rel=0.01), pytest.approx(50.0, rel=0.01))
    assert ci.low / gamma <= a.p95_low_s <= ci.low and ci.high <= a.p95_high_s <= ci.high * gamma
    tail = report.guardrails.set_index("guardrail").loc["latency_tail"]
    # pooled p95 of both arms = 95th percentile of {lat} ∪ {2·lat}; B has far more calls above it
    assert tail.degraded and report.status == "stop B"
    # the threshold: the upper edge of the pooled p95's bucket, counted from bucket counts, equals numpy's count
    pooled = np.r_[lat, lat * 2]
    threshold = LatencySketch.from_values(pooled).tail_threshold(0.95)
    exact = np.quantile(pooled, 0.95, method="inverted_cdf")
    assert exact <= threshold <= exact * gamma ** 2  # the top of the p95's bucket: at most one bucket above it
    assert (tail.baseline, tail.value) == (np.mean(lat > threshold), np.mean(lat * 2 > threshold))


def test_running_minimum_over_looks(tmp_path):
    frames = (arm_rows("A", 500, 100, hour=0), arm_rows("B", 500, 170, hour=0),
              arm_rows("A", 500, 250, hour=1), arm_rows("B", 500, 235, hour=1))
    report = analyze_experiment(log_of(tmp_path, *frames), DESIGN)
    reference = always_valid_proportions([100, 350], [500, 1000], [170, 405], [500, 1000])
    row = report.decision.iloc[0]
    assert row.p_value == pytest.approx(reference["p_look"].min())
    assert row.ci_low == pytest.approx(reference["ci_low"].max())
    assert row.ci_high == pytest.approx(reference["ci_high"].min())
    looks = report.looks
    assert looks["n"].tolist() == [1000, 2000] and looks["window_ms"].tolist() == [T0, T0 + HOUR]


def test_effect_that_changes_sign_is_read_from_the_last_look(tmp_path):
    frames = (arm_rows("A", 1000, 200, hour=0), arm_rows("B", 1000, 400, hour=0),
              arm_rows("A", 4000, 3200, hour=1), arm_rows("B", 4000, 2000, hour=1))
    row = analyze_experiment(log_of(tmp_path, *frames), DESIGN).decision.iloc[0]
    reference = always_valid_proportions([200, 3400], [1000, 5000], [400, 2400], [1000, 5000])
    assert row.verdict == "worse" and "changed over time" in row.note
    assert row.p_value == pytest.approx(reference["p_look"].iloc[-1])


def test_three_arms_use_a_bonferroni_family(tmp_path):
    log = log_of(tmp_path, arm_rows("A", 1000, 200), arm_rows("B", 1000, 240), arm_rows("C", 1000, 300))
    design = Design("exp", ("A", "B", "C"), (1, 1, 1), "A")
    report = analyze_experiment(log, design)
    c = report.decision.set_index("arm").loc["C"]
    reference = always_valid_proportions(200, 1000, 300, 1000, alpha=0.025)
    assert c.alpha_family == 0.025 and c.p_value == pytest.approx(reference.p_value)
    assert c.p_adj == pytest.approx(min(1, 2 * reference.p_value)) and c.ci_low == pytest.approx(reference.ci_low)
    assert report.status == "ship C"


def test_no_events_and_repr_html_plot(tmp_path):
    with EventLog(tmp_path / "e.db") as log:
        empty = PromptABTest("exp", {"A": "v1", "B": "v2"}, log=log).analyze()
        assert empty.status == "keep running" and empty.reasons == ("no events yet for this experiment",)
        assert "A/B test exp" in empty._repr_html_()
    log = log_of(tmp_path / "2", arm_rows("A", 1000, 200), arm_rows("B", 1000, 240))
    test = PromptABTest("exp", {"A": "v1", "B": "v2"}, log=log)
    report = test.analyze()
    assert "\n" not in repr(report) and "status='keep running'" in repr(report)
    assert "\n" not in repr(test) and "arms=[A=1, B=1]" in repr(test)
    html = test._repr_html_()
    assert "keep running" in html and "guardrails" in html
    fig = report.plot()
    assert type(fig).__name__ == "Figure" and len(fig.data) >= 3


def test_parquet_log_gives_the_same_read(tmp_path):
    log = log_of(tmp_path, arm_rows("A", 1000, 200, hour=0), arm_rows("B", 1000, 260, hour=1, errors=30))
    sqlite_report = analyze_experiment(log, DESIGN)
    parquet_report = analyze_experiment(ParquetLog(log.to_parquet(tmp_path / "e.parquet")), DESIGN)
    for name in ("arms", "decision", "guardrails"):
        pd.testing.assert_frame_equal(getattr(sqlite_report, name), getattr(parquet_report, name), check_dtype=False)
    assert sqlite_report.status == parquet_report.status


def test_degenerate_arms_are_smoothed_so_total_failure_is_seen(tmp_path):
    log = log_of(tmp_path, arm_rows("A", 1000, 1000), arm_rows("B", 50, 0, errors=50))
    report = analyze_experiment(log, DESIGN)
    errors = report.guardrails.set_index("guardrail").loc["error_rate"]
    # 0/1000 vs 50/50 errors have zero variance; Agresti–Caffo makes them 1/1002 and 51/52
    reference = always_valid_proportions(1, 1002, 51, 52)
    assert errors.p_value == pytest.approx(reference.p_value) and errors.degraded
    assert errors["diff"] == 1.0 and report.status == "stop B"
