"""The A/B report's Bayesian and CUPED reads, read from an event log (SQLite and Parquet), pinned outside.

Bayesian: gbstats 0.8.0 values (written; gbstats pins numpy<2 and is not in the project venv). CUPED: each unit's
values recomputed here with pandas straight from the generated events, θ by statsmodels OLS and the interval
by scipy's Welch test on the adjusted values — an independent route from the report's SQL and sums.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as st

from promptlab.errors import ExperimentError, StatsError
from promptlab.production import Design, EventLog, ParquetLog, PrePeriod, PromptABTest, analyze_experiment
from promptlab.production._schema import hash_unit, to_ms
from promptlab.stats import BetaPrior, GaussianPrior

START = to_ms("2025-03-10T00:00:00")
DAY = 86_400_000
DESIGN = Design("exp", ("A", "B"), (1.0, 1.0), "A")


def counts_rows(arm: str, n: int, successes: int) -> pd.DataFrame:
    """n calls of one arm within an hour of the start, the first ``successes`` succeeding, one unit each."""
    success = np.zeros(n, dtype=int)
    success[:successes] = 1
    return pd.DataFrame({"ts_ms": START + np.arange(n), "experiment": "exp", "prompt": "p", "version": arm,
                         "arm": arm, "unit_hash": [hash_unit(f"{arm}{i}") for i in range(n)], "success": success,
                         "latency_s": 0.5})


def unit_traffic(seed: int = 0, units: int = 400, lift: float = 0.08) -> pd.DataFrame:
    """Units with a propensity: each makes 1–6 calls in the 10 days before the start (no experiment) and 1–6 in
    its arm after it; B's success probability is ``lift`` higher. A tenth of the units have no pre-period call."""
    rng = np.random.default_rng(seed)
    ids = np.array([hash_unit(f"user{i}") for i in range(units)], dtype=object)
    arms = np.array(["A", "B"] * (units // 2) + ["A"] * (units % 2), dtype=object)
    p = np.clip(rng.beta(2, 2, units), 0.02, 0.9)
    k_pre = np.where(np.arange(units) % 10 == 0, 0, rng.integers(1, 7, units))
    k_post = rng.integers(1, 7, units)
    pre_unit, post_unit = np.repeat(np.arange(units), k_pre), np.repeat(np.arange(units), k_post)
    post_p = p[post_unit] + np.where(arms[post_unit] == "B", lift, 0.0)
    pre = pd.DataFrame({"ts_ms": START - rng.integers(1, 10 * DAY, pre_unit.size), "experiment": None,
                        "prompt": "p", "version": "v1", "arm": None, "unit_hash": ids[pre_unit],
                        "success": (rng.random(pre_unit.size) < p[pre_unit]).astype(int), "latency_s": 0.4})
    post = pd.DataFrame({"ts_ms": START + rng.integers(0, 3 * DAY, post_unit.size), "experiment": "exp",
                         "prompt": "p", "version": arms[post_unit], "arm": arms[post_unit],
                         "unit_hash": ids[post_unit], "success": (rng.random(post_unit.size) < post_p).astype(int),
                         "latency_s": 0.5})
    post.loc[0, "ts_ms"] = START  # the experiment's first event is the start
    return pd.concat([pre, post], ignore_index=True).sort_values("ts_ms", kind="stable").reset_index(drop=True)


def log_of(tmp_path, frame: pd.DataFrame) -> EventLog:
    log = EventLog(tmp_path / "e.db")
    log.append_frame(frame)
    return log


def reference_units(frame: pd.DataFrame, lookback_days: float = 14) -> pd.DataFrame:
    """Per unit, computed with pandas from the raw events: arm, y (success rate in the experiment) and x (before
    it, over the look-back; the pooled mean of the others when the unit has no pre-period call)."""
    start = frame.loc[frame["experiment"] == "exp", "ts_ms"].min()
    post = frame[frame["experiment"] == "exp"].groupby("unit_hash").agg(arm=("arm", "first"), y=("success", "mean"))
    window = frame[(frame["ts_ms"] < start) & (frame["ts_ms"] >= start - lookback_days * DAY)]
    pre = window.groupby("unit_hash")["success"].mean()
    x = post.index.to_series().map(pre)
    return post.assign(x=x.fillna(x.mean()), has_pre=x.notna())


# ---- the Bayesian read -----------------------------------------------------------------------------------------
def test_bayesian_read_of_the_report_matches_gbstats(tmp_path):
    log = log_of(tmp_path, pd.concat([counts_rows("A", 1000, 200), counts_rows("B", 1000, 240)]))
    report = analyze_experiment(log, DESIGN, bayesian=True)
    row = report.bayesian.iloc[0]
    # gbstats 0.8.0: r = EffectBayesianABTest(ProportionStatistic(n=1000, sum=200), ProportionStatistic(n=1000,
    #   sum=240), EffectBayesianConfig()).compute_result(); r.chance_to_win, r.ci, r.expected, r.risk
    assert row["chance_to_win"] == pytest.approx(0.9755089862914813, abs=1e-12)
    assert [row["ci_low"], row["ci_high"]] == pytest.approx([0.0008923531615035452, 0.3991076468384962], abs=1e-12)
    assert row["lift"] == pytest.approx(0.2, abs=1e-12)
    assert [row["risk_baseline"], row["risk_arm"]] == pytest.approx([0.20093751048155092, 0.0009375104815510237],
                                                                    abs=1e-12)
    assert (row["arm"], row["baseline_rate"], row["arm_rate"]) == ("B", 0.2, 0.24)
    assert report.cuped is None
    assert report.status == "keep running"  # the always-valid decision (p 0.35) decides, not the 97.6% chance


def test_bayesian_read_with_a_proper_prior_matches_gbstats(tmp_path):
    log = log_of(tmp_path, pd.concat([counts_rows("A", 1000, 200), counts_rows("B", 1000, 240)]))
    test = PromptABTest("exp", {"A": "a", "B": "b"}, log=log)
    row = test.analyze(bayesian=GaussianPrior(0.0, 0.09)).bayesian.iloc[0]
    # gbstats 0.8.0: EffectBayesianConfig(prior_effect=GaussianPrior(mean=0, variance=0.09, proper=True))
    assert row["chance_to_win"] == pytest.approx(0.9688908767112544, abs=1e-12)
    assert [row["ci_low"], row["ci_high"]] == pytest.approx([-0.009162760999882003, 0.3680144356410301], abs=1e-12)
    assert "N(0, 0.09)" in row["prior"]


def test_bayesian_and_cuped_are_off_by_default_and_options_are_checked(tmp_path):
    log = log_of(tmp_path, pd.concat([counts_rows("A", 50, 10), counts_rows("B", 50, 12)]))
    report = analyze_experiment(log, DESIGN)
    assert report.bayesian is None and report.cuped is None and report.extra_tables == []
    with pytest.raises(ExperimentError, match="bayesian="):
        analyze_experiment(log, DESIGN, bayesian="yes")
    with pytest.raises(ExperimentError, match="cuped="):
        analyze_experiment(log, DESIGN, cuped={"metric": "success"})
    with pytest.raises(ExperimentError, match="metric"):
        PrePeriod(metric="unit_hash")
    with pytest.raises(ExperimentError, match="lookback_s"):
        PrePeriod(lookback_s=0)


def test_a_bayesian_read_of_an_empty_arm_is_na_not_a_coin_flip(tmp_path):
    log = log_of(tmp_path, counts_rows("A", 100, 20))
    row = analyze_experiment(log, DESIGN, bayesian=True).bayesian.iloc[0]
    assert math.isnan(row["chance_to_win"]) and "no units" in row["note"]


# ---- CUPED ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ["sqlite", "parquet"])
def test_cuped_read_matches_ols_and_welch_on_units_computed_independently(tmp_path, engine):
    frame = unit_traffic()
    log = log_of(tmp_path, frame)
    source = log if engine == "sqlite" else ParquetLog(log.to_parquet(tmp_path / "e.parquet"))
    row = analyze_experiment(source, DESIGN, cuped=True).cuped.iloc[0]
    units = reference_units(frame)
    a, b = units[units["arm"] == "A"], units[units["arm"] == "B"]
    theta = sm.OLS(units["y"].to_numpy(), sm.add_constant(units["x"].to_numpy())).fit().params[1]  # statsmodels
    adj_a, adj_b = a["y"] - theta * a["x"], b["y"] - theta * b["x"]
    welch = st.ttest_ind(adj_b, adj_a, equal_var=False)  # scipy Welch test on the adjusted unit values
    assert row["theta"] == pytest.approx(theta, rel=1e-9)
    assert [row["ci_low"], row["ci_high"]] == pytest.approx(list(welch.confidence_interval(0.95)), abs=1e-10)
    assert row["p_value"] == pytest.approx(welch.pvalue, abs=1e-10)
    raw = st.ttest_ind(b["y"], a["y"], equal_var=False)
    assert [row["unadjusted_low"], row["unadjusted_high"]] == pytest.approx(list(raw.confidence_interval(0.95)),
                                                                            abs=1e-10)
    adjusted_var = np.var(adj_a, ddof=1) / len(a) + np.var(adj_b, ddof=1) / len(b)
    raw_var = np.var(a["y"], ddof=1) / len(a) + np.var(b["y"], ddof=1) / len(b)
    assert row["variance_reduction"] == pytest.approx(1 - adjusted_var / raw_var, abs=1e-10)
    assert row["variance_reduction"] > 0.05  # a unit's past success rate predicts its present one
    assert (row["units"], row["units_with_pre"]) == (len(b), int(b["has_pre"].sum()))
    assert (row["baseline_units"], row["baseline_units_with_pre"]) == (len(a), int(a["has_pre"].sum()))
    assert "pooled pre-period mean" in row["note"]


def test_cuped_shows_beside_the_decision_in_the_card(tmp_path):
    log = log_of(tmp_path, unit_traffic())
    report = PromptABTest("exp", {"A": "a", "B": "b"}, log=log).analyze(bayesian=True, cuped=True)
    html = report._repr_html_()
    assert "CUPED-adjusted read" in html and "Bayesian read" in html and "not protected against peeking" in html
    assert "variance removed" in html
    assert not math.isnan(report.cuped.iloc[0]["chance_to_win"])  # the Bayesian read of the adjusted effect too


def test_cuped_pre_period_is_before_the_start_and_never_the_experiment(tmp_path):
    frame = unit_traffic(units=60)
    log = log_of(tmp_path, frame)
    # a later start turns the first day into pre-period — but only events outside the experiment may count
    late = START + DAY
    row = analyze_experiment(log, DESIGN, cuped=PrePeriod(start=late, lookback_s=30 * 86400)).cuped.iloc[0]
    units = reference_units(frame[(frame["experiment"].isna()) | (frame["ts_ms"] >= late)], lookback_days=30)
    start_rows = frame[(frame["experiment"] == "exp") & (frame["ts_ms"] >= late)]
    assert row["units"] == start_rows[start_rows["arm"] == "B"]["unit_hash"].nunique()
    assert row["units_with_pre"] <= row["units"] and row["units"] <= len(units)


def test_cuped_with_no_pre_period_data_is_the_unadjusted_read(tmp_path):
    frame = unit_traffic(units=80)
    frame = frame[frame["experiment"] == "exp"]  # nobody was seen before the start
    row = analyze_experiment(log_of(tmp_path, frame), DESIGN, cuped=True).cuped.iloc[0]
    assert row["theta"] == 0 and row["units_with_pre"] == 0
    assert [row["ci_low"], row["ci_high"]] == pytest.approx([row["unadjusted_low"], row["unadjusted_high"]])
    assert "no adjustment" in row["note"]


def test_units_in_two_arms_are_left_out_and_counted(tmp_path):
    frame = unit_traffic(units=80)
    stray = frame[(frame["experiment"] == "exp") & (frame["arm"] == "A")].head(1).assign(arm="B", version="B")
    row = analyze_experiment(log_of(tmp_path, pd.concat([frame, stray])), DESIGN, cuped=True).cuped.iloc[0]
    assert "1 unit(s) seen in more than one arm left out" in row["note"]


def test_cuped_on_another_metric_summed_per_unit(tmp_path):
    frame = unit_traffic(units=120)
    frame["cost_usd"] = np.where(frame["success"] == 1, 0.002, 0.001)
    row = analyze_experiment(log_of(tmp_path, frame), DESIGN,
                             cuped=PrePeriod(metric="cost_usd", per_unit="sum")).cuped.iloc[0]
    post = frame[frame["experiment"] == "exp"].groupby("unit_hash").agg(arm=("arm", "first"), y=("cost_usd", "sum"))
    assert row["metric"] == "cost_usd"
    assert row["arm_mean"] == pytest.approx(post[post["arm"] == "B"]["y"].mean(), rel=1e-12)


def test_an_arm_without_units_gives_an_na_cuped_row(tmp_path):
    frame = unit_traffic(units=40)
    frame = frame[frame["arm"].ne("B") | frame["experiment"].isna()]
    row = analyze_experiment(log_of(tmp_path, frame), DESIGN, cuped=True, bayesian=True).cuped.iloc[0]
    assert math.isnan(row["diff"]) and "2+ units" in row["note"]


# ---- compare(..., bayesian=...) -----------------------------------------------------------------------------
def _results(a: list[int], b: list[int], repeats: int = 1) -> pd.DataFrame:
    return pd.DataFrame([{"case_id": f"c{i:03d}", "variant": v, "model": "m", "repeat": r, "passed": bool(x),
                          "score": float(x)} for v, arm in (("A", a), ("B", b)) for i, x in enumerate(arm)
                         for r in range(repeats)])


def test_compare_shows_the_beta_binomial_read_only_when_asked():
    from promptlab.stats import beta_binomial, compare

    a = [1] * 60 + [0] * 40
    b = [1] * 72 + [0] * 28
    plain = compare(_results(a, b), "A")
    assert plain.bayesian is None and plain.extra_tables == []
    asked = compare(_results(a, b), "A", bayesian=True)
    row = asked.bayesian.iloc[0]
    ref = beta_binomial(60, 100, 72, 100)  # itself pinned to scipy quad in tests/test_stats_bayesian.py
    # P(p_B > p_A) for Beta(73, 29) vs Beta(61, 41): scipy.integrate.quad(lambda x: beta.pdf(x, 73, 29) *
    # beta.cdf(x, 61, 41), 0, 1)
    expected = __import__("scipy").integrate.quad(lambda x: st.beta.pdf(x, 73, 29) * st.beta.cdf(x, 61, 41), 0, 1)[0]
    assert row["chance_to_beat"] == pytest.approx(expected, abs=1e-9) == ref.chance_to_beat
    assert (row["cases"], row["variant"], row["baseline"]) == (100, "B", "A")
    assert "Bayesian read (Beta-Binomial)" in asked._repr_html_() and "chance to beat" in asked.summary_text()


def test_compare_bayesian_counts_cases_not_repeats():
    from promptlab.stats import compare

    once = compare(_results([1] * 6 + [0] * 4, [1] * 8 + [0] * 2), "A", bayesian=True).bayesian.iloc[0]
    thrice = compare(_results([1] * 6 + [0] * 4, [1] * 8 + [0] * 2, repeats=3), "A", bayesian=True).bayesian.iloc[0]
    assert thrice["cases"] == once["cases"] == 10
    assert thrice["chance_to_beat"] == pytest.approx(once["chance_to_beat"], abs=1e-12)


def test_compare_bayesian_by_category_and_with_a_prior():
    from promptlab.stats import compare

    frame = _results([1] * 30 + [0] * 10, [1] * 35 + [0] * 5)
    frame["category"] = ["x", "y"] * (len(frame) // 2)
    comparison = compare(frame, "A", bayesian=BetaPrior(0.5, 0.5))
    table = comparison.by_category().bayesian
    assert list(table["category"]) == ["x", "y"] and table["prior"].iloc[0] == "Beta(0.5, 0.5) on each rate"


def test_compare_bayesian_refuses_graded_scores_and_odd_options():
    from promptlab.stats import compare

    with pytest.raises(StatsError, match="pass/fail"):
        compare(_results([1, 0, 1], [1, 1, 1]), "A", metric="score", bayesian=True)
    with pytest.raises(StatsError, match="bayesian="):
        compare(_results([1, 0, 1], [1, 1, 1]), "A", bayesian=GaussianPrior())


def test_pl_compare_passes_bayesian_through(tmp_path, monkeypatch):
    import promptlab as pl

    monkeypatch.setenv("PROMPTLAB_RUNS_DIR", str(tmp_path / "runs"))
    comparison = pl.compare(_results([1] * 6 + [0] * 4, [1] * 8 + [0] * 2), "A", bayesian=True, record=False)
    assert comparison.bayesian is not None and len(comparison.bayesian) == 1
