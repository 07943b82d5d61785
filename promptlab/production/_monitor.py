"""Monitoring: the starting document's ``PromptMetrics`` per prompt, version and time window, with intervals.

`prompt_metrics` reads an event log (SQLite `EventLog` or DuckDB `ParquetLog`) and returns a `MetricsReport`:
one row per prompt × version × window with

* ``success_rate``, ``format_failure_rate``, ``timeout_rate``, ``error_rate`` — Wilson intervals (a rate of
  0/40 still gets an honest upper bound);
* ``latency_p50_s``, ``latency_p95_s`` — `promptlab.stats._quantiles.QUANTILE_METHOD` quantiles read from DDSketch
  bucket counts (`promptlab.production._sketch`: within 1% of the exact sample quantile), with distribution-free
  order-statistic intervals widened to their buckets' edges (a p95 upper bound needs about 59 calls at 95%;
  before that it is ``inf``);
* ``tokens_per_call``, ``cost_per_call_usd`` and ``quality`` — means with CLT intervals (cost and quality over
  the calls that have them: ``cost_n``, ``quality_n``).

Rates, tokens and costs come from counts and sums computed where the data lives, and the quantiles from bucket
counts computed there too: no raw row leaves the engine. The report shows as a table in notebooks
(``_repr_html_``) and draws plotly figures (`MetricsReport.plot`, `MetricsReport.dashboard`) that are returned,
never shown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from ..stats._intervals import wilson_interval
from ._query import WINDOW_KEY, EventFilter, Source, aggregate, latency_quantiles, mean_var, merge_on

RATES = {"success_rate": ("successes", "success_n"), "format_failure_rate": ("format_failures", "format_n"),
         "timeout_rate": ("timeouts", "n"), "error_rate": ("errors", "n")}
"""Rate metrics: (events counted, calls counted over)."""
MEANS = {"cost_per_call_usd": "cost", "quality": "quality", "mean_latency_s": "latency"}
"""Mean metrics: the prefix of their count/sum/sum-of-squares columns."""


@dataclass(frozen=True)
class PromptMetrics:
    """The numbers of one prompt version over one window (a row of `MetricsReport.df`).

    Every estimate has its interval (``_low``/``_high``) at the report's confidence; NaN means no data.
    """

    prompt: str | None
    version: str | None
    window_start: pd.Timestamp | None
    n: int
    success_rate: float
    success_rate_low: float
    success_rate_high: float
    format_failure_rate: float
    format_failure_rate_low: float
    format_failure_rate_high: float
    timeout_rate: float
    timeout_rate_low: float
    timeout_rate_high: float
    error_rate: float
    error_rate_low: float
    error_rate_high: float
    latency_p50_s: float
    latency_p50_low_s: float
    latency_p50_high_s: float
    latency_p95_s: float
    latency_p95_low_s: float
    latency_p95_high_s: float
    mean_latency_s: float
    tokens_per_call: float
    cost_per_call_usd: float
    cost_per_call_usd_low: float
    cost_per_call_usd_high: float
    quality: float
    quality_low: float
    quality_high: float
    quality_n: int


METRIC_COLUMNS = [f.name for f in fields(PromptMetrics)]


def rate_columns(agg: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Rates with Wilson intervals from the aggregate's counts."""
    out = {}
    for name, (events, over) in RATES.items():
        cis = [wilson_interval(int(k), int(n), confidence) for k, n in zip(agg[events], agg[over], strict=True)]
        out[name] = [c.estimate for c in cis]
        out[f"{name}_low"] = [c.low if n else math.nan for c, n in zip(cis, agg[over], strict=True)]
        out[f"{name}_high"] = [c.high if n else math.nan for c, n in zip(cis, agg[over], strict=True)]
    return pd.DataFrame(out, index=agg.index)


def mean_columns(agg: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Means with CLT intervals (mean ± z·sd/√n) from counts, sums and sums of squares."""
    z = float(st.norm.ppf(0.5 + confidence / 2))
    out = {}
    for name, prefix in MEANS.items():
        stats = [mean_var(n, s, q) for n, s, q in zip(agg[f"{prefix}_n"], agg[f"{prefix}_sum"],
                                                       agg[f"{prefix}_sumsq"], strict=True)]
        means = np.array([m for m, _ in stats], dtype=float)
        se = np.array([math.sqrt(v / n) if n > 1 else math.nan
                       for (_, v), n in zip(stats, agg[f"{prefix}_n"], strict=True)], dtype=float)
        out[name], out[f"{name}_low"], out[f"{name}_high"] = means, means - z * se, means + z * se
    with np.errstate(invalid="ignore", divide="ignore"):
        tokens = (agg["input_tokens_sum"] + agg["output_tokens_sum"]) / agg["tokens_n"].replace(0, np.nan)
    out["tokens_per_call"] = tokens.astype(float).to_numpy()
    return pd.DataFrame(out, index=agg.index)


def metrics_frame(agg: pd.DataFrame, quantiles: pd.DataFrame, keys: Sequence[str],
                  confidence: float) -> pd.DataFrame:
    """Aggregates + latency quantiles → one row of metrics per group (columns of `METRIC_COLUMNS` + keys)."""
    rates, means = rate_columns(agg, confidence), mean_columns(agg, confidence)
    base = pd.concat([agg[list(keys) + ["n", "quality_n", "first_ms", "last_ms"]], rates, means], axis=1)
    q = quantiles.rename(columns={"p50_s": "latency_p50_s", "p50_low_s": "latency_p50_low_s",
                                  "p50_high_s": "latency_p50_high_s", "p95_s": "latency_p95_s",
                                  "p95_low_s": "latency_p95_low_s", "p95_high_s": "latency_p95_high_s"})
    if not len(base):
        return base.reindex(columns=[*base.columns, *(c for c in q.columns if c not in keys)])
    return merge_on(base, q, keys)


def prompt_metrics(source: Source, *, window_s: float | None = 3600.0, by: Sequence[str] = ("prompt", "version"),
                   where: EventFilter | None = None, confidence: float = 0.95) -> MetricsReport:
    """Metrics per prompt × version × time window, with intervals.

    Args:
        source: an `EventLog`, a `ParquetLog` or any `Source`.
        window_s: window length in seconds (hourly by default); None for one row per group over everything.
        by: group keys (any of `promptlab.production._query.GROUP_KEYS`; add ``"arm"`` to split experiments).
        where: which events (a prompt, a time range — `EventFilter.between`; shadow calls are included
            unless ``EventFilter(exclude_arms=("shadow",))``).
        confidence: coverage of every interval.
    """
    keys = [*by, *([WINDOW_KEY] if window_s is not None else [])]
    agg = aggregate(source, by, where=where, window_s=window_s)
    quantiles = latency_quantiles(source, by, where=where, window_s=window_s, confidence=confidence)
    frame = metrics_frame(agg, quantiles, keys, confidence)
    frame = _finish(frame, by, window_s)
    return MetricsReport(frame, tuple(by), window_s, confidence)


def _finish(frame: pd.DataFrame, by: Sequence[str], window_s: float | None) -> pd.DataFrame:
    out = frame.copy()
    if WINDOW_KEY in out:
        out["window_start"] = pd.to_datetime(out[WINDOW_KEY], unit="ms", utc=True)
        out["window_end"] = out["window_start"] + pd.to_timedelta(window_s, unit="s")
    else:
        out["window_start"] = pd.to_datetime(out["first_ms"], unit="ms", utc=True)
        out["window_end"] = pd.to_datetime(out["last_ms"] + 1, unit="ms", utc=True)
    for key in ("prompt", "version"):
        if key not in out:
            out[key] = None
    columns = [*dict.fromkeys([*by, *METRIC_COLUMNS, "window_end"])]
    return out[columns].sort_values([*by, "window_start"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class MetricsReport:
    """`PromptMetrics` per group and window, as a DataFrame (`df`) that shows as a table and draws plots.

    Attributes:
        df: one row per group × window; columns are the group keys, `METRIC_COLUMNS` and ``window_end``.
        by: the group keys.
        window_s: the window length (None: one window over everything).
        confidence: coverage of the intervals.
    """

    df: pd.DataFrame
    by: tuple[str, ...]
    window_s: float | None
    confidence: float

    def rows(self) -> list[PromptMetrics]:
        """The rows as `PromptMetrics` objects."""
        return [PromptMetrics(**{k: getattr(r, k) for k in METRIC_COLUMNS})
                for r in self.df.reindex(columns=METRIC_COLUMNS).itertuples(index=False)]

    def latest(self) -> pd.DataFrame:
        """The last window of each group."""
        if self.df.empty:
            return self.df
        keys = list(self.by) or ["prompt"]
        return self.df.groupby(keys, dropna=False, sort=False).tail(1).reset_index(drop=True)

    def plot(self, metric: str = "success_rate"):
        """One metric over time per group, with its interval as a band (a plotly figure)."""
        from ._plots import plot_metric

        return plot_metric(self, metric)

    def plot_alerts(self, alerts: Any, metric: str = "format_failure_rate"):
        """A metric over time with the windows where alerts on it fired marked (``alerts``: an `AlertReport`,
        e.g. from `AlertManager.replay`, or its ``checks``)."""
        from ._plots import plot_alerts

        return plot_alerts(self, getattr(alerts, "checks", alerts), metric)

    def dashboard(self):
        """Six panels over time: success, format failures, p95 latency, quality, cost per call, volume."""
        from ._plots import plot_dashboard

        return plot_dashboard(self)

    def __repr__(self) -> str:
        groups = self.df.groupby(list(self.by), dropna=False).ngroups if self.by and len(self.df) else len(self.df)
        span = ""
        if len(self.df):
            span = f", {self.df['window_start'].min():%Y-%m-%d %H:%M} → {self.df['window_end'].max():%Y-%m-%d %H:%M}"
        window = "all" if self.window_s is None else f"{self.window_s:g}s"
        calls = int(self.df["n"].sum())
        return f"MetricsReport(groups={groups}, windows={len(self.df)}, window={window}, calls={calls}{span})"

    def _repr_html_(self) -> str:
        from .._display import metrics_html

        return metrics_html(self)
