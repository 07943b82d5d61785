"""Aggregation SQL, written once, run on SQLite (`EventLog`) or DuckDB (`ParquetLog`).

The statistics of the production side take counts and sums: successes out of n for a rate, Σx and Σx² for a
mean and its variance. `aggregate` asks the log for exactly those, per group (prompt, version, arm …) and
optionally per time window, with SQL that both engines read the same way (integer window arithmetic, CASE
sums, COUNT of non-null values, ``?`` parameters). Latency quantiles are the one thing sums cannot give
(quantiles do not average), so `latency_quantiles` reads the latency column of the selected events and takes
`promptlab.stats._quantiles.QUANTILE_METHOD` quantiles with order-statistic intervals per group.

A *source* is anything with ``query(sql, params) -> DataFrame`` over a table called ``events`` with the
columns of `promptlab.production._eventlog.EVENT_COLUMNS`.

Columns of `aggregate` (besides the group keys and ``window_ms``):

================== ===================================================================================
n                  events
success_n          events whose success is known; ``successes`` of them succeeded
format_n           events whose format was checked; ``format_failures`` of them failed
errors, timeouts   events with any error_type; with error_type ``timeout``
latency_n          events with a latency; ``latency_sum``, ``latency_sumsq`` (seconds)
tokens_n           events with both token counts; ``input_tokens_sum``, ``output_tokens_sum`` over them
cost_n             events with a known cost; ``cost_sum``, ``cost_sumsq`` (USD)
quality_n          scored events; ``quality_sum``, ``quality_sumsq``
first_ms, last_ms  first and last event time
units              distinct unit hashes (only with ``units=True``; costs a distinct count)
latency_over       events slower than ``latency_over_s`` (only when given)
================== ===================================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..errors import EventLogError
from ..stats._quantiles import quantile_ci
from ._schema import TABLE, to_ms

GROUP_KEYS = ("experiment", "prompt", "version", "arm", "model", "outcome", "error_type")
"""Columns `aggregate` can group by."""
WINDOW_KEY = "window_ms"
SUM_COLUMNS = ("n", "success_n", "successes", "format_n", "format_failures", "errors", "timeouts", "latency_n",
               "latency_sum", "latency_sumsq", "tokens_n", "input_tokens_sum", "output_tokens_sum", "cost_n",
               "cost_sum", "cost_sumsq", "quality_n", "quality_sum", "quality_sumsq")
_AGG_SQL = """
    COUNT(*) AS n,
    COUNT(success) AS success_n,
    SUM(success) AS successes,
    COUNT(format_ok) AS format_n,
    SUM(1 - format_ok) AS format_failures,
    SUM(CASE WHEN error_type IS NOT NULL THEN 1 ELSE 0 END) AS errors,
    SUM(CASE WHEN error_type = 'timeout' THEN 1 ELSE 0 END) AS timeouts,
    COUNT(latency_s) AS latency_n,
    SUM(latency_s) AS latency_sum,
    SUM(latency_s * latency_s) AS latency_sumsq,
    SUM(CASE WHEN input_tokens IS NOT NULL AND output_tokens IS NOT NULL THEN 1 ELSE 0 END) AS tokens_n,
    SUM(CASE WHEN output_tokens IS NOT NULL THEN input_tokens END) AS input_tokens_sum,
    SUM(CASE WHEN input_tokens IS NOT NULL THEN output_tokens END) AS output_tokens_sum,
    COUNT(cost_usd) AS cost_n,
    SUM(cost_usd) AS cost_sum,
    SUM(cost_usd * cost_usd) AS cost_sumsq,
    COUNT(quality) AS quality_n,
    SUM(quality) AS quality_sum,
    SUM(quality * quality) AS quality_sumsq,
    MIN(ts_ms) AS first_ms,
    MAX(ts_ms) AS last_ms"""


class Source(Protocol):
    """Anything that runs SQL on an ``events`` table: `EventLog`, `ParquetLog`, or your own warehouse adapter."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run ``sql`` with ``?`` parameters and return the rows as a DataFrame."""
        ...


@dataclass(frozen=True)
class EventFilter:
    """Which events an analysis reads. Every field left None matches everything.

    Attributes:
        prompt: the prompt's name.
        version: the prompt's version.
        experiment: the experiment id.
        arms: keep only these arms.
        exclude_arms: drop these arms (events without an arm are kept).
        since_ms: from this time on (inclusive), Unix ms — see `between`.
        until_ms: before this time (exclusive), Unix ms.
    """

    prompt: str | None = None
    version: str | None = None
    experiment: str | None = None
    arms: tuple[str, ...] | None = None
    exclude_arms: tuple[str, ...] = ()
    since_ms: int | None = None
    until_ms: int | None = None

    def between(self, since: Any = None, until: Any = None) -> EventFilter:
        """The same filter for the time range [since, until) (datetimes, ISO strings or Unix ms)."""
        return replace(self, since_ms=None if since is None else to_ms(since),
                       until_ms=None if until is None else to_ms(until))

    def sql(self) -> tuple[str, list[Any]]:
        """The WHERE clause (``1=1`` when empty) and its ``?`` parameters."""
        clauses, params = ["1=1"], []
        for name in ("prompt", "version", "experiment"):
            if (value := getattr(self, name)) is not None:
                clauses.append(f"{name} = ?")
                params.append(value)
        if self.arms is not None:
            clauses.append(f"arm IN ({', '.join('?' * len(self.arms))})" if self.arms else "1=0")
            params.extend(self.arms)
        if self.exclude_arms:
            clauses.append(f"(arm IS NULL OR arm NOT IN ({', '.join('?' * len(self.exclude_arms))}))")
            params.extend(self.exclude_arms)
        if self.since_ms is not None:
            clauses.append("ts_ms >= ?")
            params.append(int(self.since_ms))
        if self.until_ms is not None:
            clauses.append("ts_ms < ?")
            params.append(int(self.until_ms))
        return " AND ".join(clauses), params


def _check_keys(by: Sequence[str]) -> list[str]:
    keys = list(by)
    bad = [k for k in keys if k not in GROUP_KEYS]
    if bad:
        raise EventLogError(f"cannot group events by {bad!r}; group by any of {list(GROUP_KEYS)!r}.")
    return keys


def _window_ms(window_s: float | None) -> int | None:
    if window_s is None:
        return None
    if not window_s > 0:
        raise EventLogError(f"window_s={window_s!r} must be a positive number of seconds, e.g. 3600.")
    return int(round(window_s * 1000))


def _select_keys(keys: list[str], window: int | None) -> tuple[list[str], list[str]]:
    """SELECT expressions and GROUP BY expressions for the keys (and the window bucket)."""
    select, group = list(keys), list(keys)
    if window is not None:
        bucket = f"(ts_ms - ts_ms % {window})"
        select.append(f"{bucket} AS {WINDOW_KEY}")
        group.append(bucket)
    return select, group


def aggregate_sql(by: Sequence[str] = (), *, where: EventFilter | None = None, window_s: float | None = None,
                  units: bool = False, latency_over_s: float | None = None) -> tuple[str, list[Any]]:
    """The aggregation query and its parameters (the one SQL text both engines run)."""
    keys, window = _check_keys(by), _window_ms(window_s)
    select, group = _select_keys(keys, window)
    extra, params = "", []
    if units:
        extra += ",\n    COUNT(DISTINCT unit_hash) AS units"
    if latency_over_s is not None:
        extra += ",\n    SUM(CASE WHEN latency_s > ? THEN 1 ELSE 0 END) AS latency_over"
        params.append(float(latency_over_s))
    clause, where_params = (where or EventFilter()).sql()
    head = ", ".join(select) + ("," if select else "")
    tail = f"\nGROUP BY {', '.join(group)}" if group else ""
    return f"SELECT {head}{_AGG_SQL}{extra}\nFROM {TABLE}\nWHERE {clause}{tail}", params + where_params


def aggregate(source: Source, by: Sequence[str] = (), *, where: EventFilter | None = None,
              window_s: float | None = None, units: bool = False,
              latency_over_s: float | None = None) -> pd.DataFrame:
    """Counts and sums per group (and per time window): the sufficient statistics of every analysis.

    Args:
        source: an `EventLog`, a `ParquetLog`, or any `Source`.
        by: group keys from `GROUP_KEYS` (none: one row for everything selected).
        where: which events to read.
        window_s: also group by time windows of this many seconds (``window_ms`` = window start).
        units: also count distinct units (needed by the sample-ratio check).
        latency_over_s: also count events slower than this (a tail share for p95 guardrails).

    Returns:
        One row per group with the columns in this module's docstring, sorted by the keys; no rows when no
        event matched.
    """
    sql, params = aggregate_sql(by, where=where, window_s=window_s, units=units, latency_over_s=latency_over_s)
    frame = source.query(sql, params)
    keys = [*by, *([WINDOW_KEY] if window_s is not None else [])]
    frame = frame[frame["n"].fillna(0) > 0] if "n" in frame else frame
    return _tidy(frame, keys)


def _tidy(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = frame.copy()
    counted = [c for c in (*SUM_COLUMNS, "units", "latency_over") if c in out]
    for name in counted:
        out[name] = pd.to_numeric(out[name]).fillna(0)
    integral = [c for c in counted if not c.endswith(("_sum", "_sumsq"))]
    for name in integral + ["input_tokens_sum", "output_tokens_sum"]:
        out[name] = out[name].round().astype(np.int64)
    for name in ("first_ms", "last_ms", *([WINDOW_KEY] if WINDOW_KEY in keys else [])):
        out[name] = pd.to_numeric(out[name]).astype(np.int64)
    for key in keys:
        if key != WINDOW_KEY:
            out[key] = out[key].astype(object).where(out[key].notna(), None)
    if keys and len(out):
        out = out.sort_values(keys, na_position="first", kind="stable")
    return out.reset_index(drop=True)


def latency_values(source: Source, by: Sequence[str] = (), *, where: EventFilter | None = None,
                   window_s: float | None = None) -> pd.DataFrame:
    """The latency of every selected event with its group keys (for quantiles, which sums cannot give)."""
    keys, window = _check_keys(by), _window_ms(window_s)
    select, _ = _select_keys(keys, window)
    clause, params = (where or EventFilter()).sql()
    cols = ", ".join([*select, "latency_s"])
    return source.query(f"SELECT {cols} FROM {TABLE} WHERE {clause} AND latency_s IS NOT NULL", params)


def latency_quantiles(source: Source, by: Sequence[str] = (), *, where: EventFilter | None = None,
                      window_s: float | None = None, qs: Sequence[float] = (0.5, 0.95),
                      confidence: float = 0.95) -> pd.DataFrame:
    """Latency quantiles per group with distribution-free intervals (`promptlab.stats._quantiles.quantile_ci`).

    Returns one row per group with, for each q (``p50``, ``p95`` …), columns ``p50_s``, ``p50_low_s`` and
    ``p50_high_s`` (an unreachable bound is ±inf: a p95 upper bound needs about 59 calls at 95%).
    """
    values = latency_values(source, by, where=where, window_s=window_s)
    keys = [*by, *([WINDOW_KEY] if window_s is not None else [])]
    if values.empty:
        return pd.DataFrame(columns=[*keys, *_quantile_columns(qs)])
    rows = []
    groups = values.groupby(keys, dropna=False, sort=False) if keys else [((), values)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        rows.append([*key, *quantile_row(part["latency_s"].to_numpy(dtype=float), qs, confidence)])
    out = pd.DataFrame(rows, columns=[*keys, *_quantile_columns(qs)])
    if WINDOW_KEY in out:
        out[WINDOW_KEY] = out[WINDOW_KEY].astype(np.int64)
    for key in by:
        out[key] = out[key].astype(object).where(out[key].notna(), None)
    return out


def _quantile_columns(qs: Sequence[float]) -> list[str]:
    cols = []
    for q in qs:
        name = quantile_name(q)
        cols += [f"{name}_s", f"{name}_low_s", f"{name}_high_s"]
    return cols


def quantile_name(q: float) -> str:
    """``0.95`` → ``"p95"``, ``0.5`` → ``"p50"``, ``0.999`` → ``"p99.9"``."""
    return f"p{100 * q:g}"


def quantile_row(values: np.ndarray, qs: Sequence[float], confidence: float) -> list[float]:
    """[estimate, low, high] for each q (NaNs when there are no values)."""
    out: list[float] = []
    for q in qs:
        if values.size == 0:
            out += [math.nan, math.nan, math.nan]
            continue
        ci = quantile_ci(values, q, confidence)
        out += [ci.estimate, ci.low, ci.high]
    return out


# ---- small helpers shared by the analyses ------------------------------------------------------------------
def mean_var(n: float, total: float, sumsq: float) -> tuple[float, float]:
    """Mean and sample variance (ddof=1) from a count, a sum and a sum of squares (NaN when undefined)."""
    if n <= 0:
        return math.nan, math.nan
    mean = total / n
    if n < 2:
        return mean, math.nan
    return mean, max(0.0, (sumsq - total * total / n) / (n - 1))


def merge_on(left: pd.DataFrame, right: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Left-join two per-group frames on their keys, None keys matching None."""
    if not keys:
        return pd.concat([left.reset_index(drop=True), right.reset_index(drop=True)], axis=1)
    fill = "\x00none"
    lk = left.assign(**{k: left[k].astype(object).fillna(fill) for k in keys if k != WINDOW_KEY})
    rk = right.assign(**{k: right[k].astype(object).fillna(fill) for k in keys if k != WINDOW_KEY})
    out = lk.merge(rk, on=list(keys), how="left")
    for k in keys:
        if k != WINDOW_KEY:
            out[k] = out[k].where(out[k] != fill, None)
    return out
