"""Monitoring: PromptMetrics per version and window, intervals pinned to references, plots and HTML."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from promptlab.production import EventLog, ParquetLog, PromptMetrics, prompt_metrics
from promptlab.production._query import EventFilter
from promptlab.production._schema import to_ms

T0 = to_ms("2025-01-06T00:00:00")
HOUR = 3_600_000
Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)


def events() -> pd.DataFrame:
    # hour 0: 10 calls, 9 succeed, 1 format failure, 1 timeout, latency 1..10 s, quality on 4 calls
    h0 = pd.DataFrame({"ts_ms": T0 + np.arange(10), "prompt": "p", "version": "1.0", "success": [1] * 9 + [0],
                       "format_ok": [1] * 9 + [0], "error_type": [None] * 8 + ["timeout", None],
                       "latency_s": np.arange(1, 11, dtype=float), "input_tokens": 100, "output_tokens": 10,
                       "cost_usd": np.linspace(0.001, 0.010, 10), "quality": [4, 5, 3, 4] + [None] * 6})
    # hour 1: 100 calls of version 1.0 (latency 1..100 s, no format failure); 20 calls of version 2.0
    h1 = pd.DataFrame({"ts_ms": T0 + HOUR + np.arange(100), "prompt": "p", "version": "1.0", "success": 1,
                       "format_ok": 1, "latency_s": np.arange(1, 101, dtype=float)})
    v2 = pd.DataFrame({"ts_ms": T0 + HOUR + np.arange(20), "prompt": "p", "version": "2.0", "success": 1,
                       "format_ok": 1, "latency_s": 0.5, "arm": "shadow"})
    return pd.concat([h0, h1, v2], ignore_index=True)


@pytest.fixture
def log(tmp_path):
    with EventLog(tmp_path / "e.db") as log:
        log.append_frame(events())
        yield log


def test_rates_use_wilson_intervals(log):
    report = prompt_metrics(log)
    first = report.df.iloc[0]
    assert (first.prompt, first.version, first.n, first.window_start) == ("p", "1.0", 10, pd.Timestamp(T0, unit="ms",
                                                                                                       tz="UTC"))
    # statsmodels proportion_confint(9, 10, method='wilson'): 9/10 → [0.595850, 0.982124]
    assert (first.success_rate, first.success_rate_low, first.success_rate_high) == \
        (0.9, pytest.approx(0.595850, abs=1e-6), pytest.approx(0.982124, abs=1e-6))
    assert (first.format_failure_rate, first.timeout_rate, first.error_rate) == (0.1, 0.1, 0.1)
    second = report.df.iloc[1]
    # statsmodels proportion_confint(0, 20, method='wilson') → [0, 0.161125];
    # here 0/100 format failures → scipy's Wilson for 0/100
    assert second.format_failure_rate == 0 and second.format_failure_rate_low == pytest.approx(0, abs=1e-12)
    from scipy.stats import binomtest

    assert second.format_failure_rate_high == pytest.approx(binomtest(0, 100).proportion_ci(method="wilson").high)


def test_quantiles_means_and_tokens(log):
    first, second = prompt_metrics(log).df.iloc[:2].itertuples()
    # np.quantile(range(1, 101), 0.95, method='inverted_cdf') = 95; scipy.stats.quantile_test CI [90, 100]; p50 = 50
    # (read from DDSketch buckets: estimates within 1%, bounds at most one bucket γ wider)
    gamma = 1.01 / 0.99
    assert (second.latency_p95_s, second.latency_p50_s) == (pytest.approx(95, rel=0.01), pytest.approx(50, rel=0.01))
    assert 90 / gamma <= second.latency_p95_low_s <= 90 and 100 <= second.latency_p95_high_s <= 100 * gamma
    # 10 values cannot bound a p95 from above at 95%: the upper bound is inf
    assert first.latency_p95_s == pytest.approx(10, rel=0.01) and math.isinf(first.latency_p95_high_s)
    costs = np.linspace(0.001, 0.010, 10)
    half = Z95 * costs.std(ddof=1) / math.sqrt(10)  # CLT interval by hand
    assert first.cost_per_call_usd == pytest.approx(costs.mean())
    assert (first.cost_per_call_usd_low, first.cost_per_call_usd_high) == \
        (pytest.approx(costs.mean() - half), pytest.approx(costs.mean() + half))
    q = np.array([4, 5, 3, 4.0])
    assert (first.quality, first.quality_n) == (4.0, 4)
    assert first.quality_high == pytest.approx(4 + Z95 * q.std(ddof=1) / 2)
    assert first.tokens_per_call == 110 and math.isnan(second.tokens_per_call)
    assert math.isnan(second.quality) and second.quality_n == 0


def test_groups_windows_filters(log):
    report = prompt_metrics(log)
    assert report.df[["version", "n"]].values.tolist() == [["1.0", 10], ["1.0", 100], ["2.0", 20]]
    overall = prompt_metrics(log, window_s=None)
    assert overall.df["n"].tolist() == [110, 20]
    assert overall.df["window_end"].iloc[0] == pd.Timestamp(T0 + HOUR + 99 + 1, unit="ms", tz="UTC")
    no_shadow = prompt_metrics(log, where=EventFilter(exclude_arms=("shadow",)))
    assert no_shadow.df["version"].unique().tolist() == ["1.0"]
    by_arm = prompt_metrics(log, window_s=None, by=("version", "arm"))
    assert by_arm.df[["version", "arm", "n"]].values.tolist() == [["1.0", None, 110], ["2.0", "shadow", 20]]
    assert prompt_metrics(log, where=EventFilter(prompt="other")).df.empty


def test_rows_latest_repr_html(log):
    report = prompt_metrics(log)
    rows = report.rows()
    assert isinstance(rows[0], PromptMetrics) and rows[0].n == 10
    assert report.latest()["n"].tolist() == [100, 20]
    assert "\n" not in repr(report) and "windows=3" in repr(report)
    html = report._repr_html_()
    assert "Prompt metrics" in html and "90.0% [59.6%, 98.2%]" in html


def test_plots_are_returned_not_shown(log):
    report = prompt_metrics(log)
    fig = report.plot("success_rate")
    assert type(fig).__name__ == "Figure" and len(fig.data) == 4  # a band and a line per version
    assert len(report.plot("n").data) == 2  # no band for volume
    assert type(report.dashboard()).__name__ == "Figure"
    with pytest.raises(ValueError, match="metric='nope'"):
        report.plot("nope")


def test_parquet_gives_the_same_metrics(log, tmp_path):
    parquet = ParquetLog(log.to_parquet(tmp_path / "e.parquet"))
    pd.testing.assert_frame_equal(prompt_metrics(parquet).df, prompt_metrics(log).df, check_dtype=False)
