"""Aggregation SQL, written once and rendered per engine: SQLite, DuckDB, PostgreSQL — or your warehouse.

The statistics of the production side take counts and sums: successes out of n for a rate, Σx and Σx² for a
mean and its variance. `aggregate` asks the log for exactly those, per group (prompt, version, arm …) and
optionally per time window. Latency quantiles are the one thing sums cannot give (quantiles do not average),
so `latency_sketches` asks the engine for DDSketch bucket counts instead (`promptlab.production._sketch`): one
count per group and log bucket, mergeable, read as quantiles within a relative error α. No analysis reads raw
rows.

The SQL is written once, in the portable subset (integer window arithmetic, CASE sums, COUNT of non-null
values, ``?`` parameters), and `render` turns it into the source's dialect with sqlglot (a maintained SQL
parser and transpiler; see docs/production-scale.md for why it and not Ibis). A source names its dialect in a
``dialect`` attribute (`DIALECTS`; none means ``"sqlite"``); ``?`` parameters stay ``?`` in every dialect (the
PostgreSQL log translates them for psycopg). `sql_for` gives the same queries for BigQuery, Snowflake and
Spark SQL, to run in a warehouse and hand the result to `promptlab.production.analyze`.

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
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..errors import EventLogError, MissingDependencyError
from ._schema import TABLE, to_ms
from ._sketch import COUNT_COLUMN, DEFAULT_ALPHA, KEY_COLUMN, group_sketches, key_sql

GROUP_KEYS = ("experiment", "prompt", "version", "arm", "model", "outcome", "error_type")
"""Columns `aggregate` can group by."""
WINDOW_KEY = "window_ms"
SUM_COLUMNS = ("n", "success_n", "successes", "format_n", "format_failures", "errors", "timeouts", "latency_n",
               "latency_sum", "latency_sumsq", "tokens_n", "input_tokens_sum", "output_tokens_sum", "cost_n",
               "cost_sum", "cost_sumsq", "quality_n", "quality_sum", "quality_sumsq")
MEASURES = {
    "n": "COUNT(*)",
    "success_n": "COUNT(success)",
    "successes": "SUM(success)",
    "format_n": "COUNT(format_ok)",
    "format_failures": "SUM(1 - format_ok)",
    "errors": "SUM(CASE WHEN error_type IS NOT NULL THEN 1 ELSE 0 END)",
    "timeouts": "SUM(CASE WHEN error_type = 'timeout' THEN 1 ELSE 0 END)",
    "latency_n": "COUNT(latency_s)",
    "latency_sum": "SUM(latency_s)",
    "latency_sumsq": "SUM(latency_s * latency_s)",
    "tokens_n": "SUM(CASE WHEN input_tokens IS NOT NULL AND output_tokens IS NOT NULL THEN 1 ELSE 0 END)",
    "input_tokens_sum": "SUM(CASE WHEN output_tokens IS NOT NULL THEN input_tokens END)",
    "output_tokens_sum": "SUM(CASE WHEN input_tokens IS NOT NULL THEN output_tokens END)",
    "cost_n": "COUNT(cost_usd)",
    "cost_sum": "SUM(cost_usd)",
    "cost_sumsq": "SUM(cost_usd * cost_usd)",
    "quality_n": "COUNT(quality)",
    "quality_sum": "SUM(quality)",
    "quality_sumsq": "SUM(quality * quality)",
    "first_ms": "MIN(ts_ms)",
    "last_ms": "MAX(ts_ms)",
}
"""Every column `aggregate` computes (besides ``units`` and ``latency_over``), with its SQL."""


DIALECTS = {"sqlite": "sqlite", "duckdb": "duckdb", "postgres": "postgres", "bigquery": "bigquery",
            "snowflake": "snowflake", "spark": "spark"}
"""promptlab's dialect names → sqlglot's. The first three run in tests; the warehouses are pinned as golden SQL."""


class Source(Protocol):
    """Anything that runs SQL on an ``events`` table: `EventLog`, `ParquetLog`, or your own warehouse adapter.

    A ``dialect`` class attribute (a key of `DIALECTS`) says which SQL it reads; without one it is ``"sqlite"``.
    """

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run ``sql`` with ``?`` parameters and return the rows as a DataFrame."""
        ...


def dialect_of(source: Any) -> str:
    """The SQL dialect a source reads (its ``dialect`` attribute, ``"sqlite"`` when it has none)."""
    dialect = getattr(source, "dialect", "sqlite")
    if dialect not in DIALECTS:
        raise EventLogError(f"{type(source).__name__}.dialect is {dialect!r}; use one of {sorted(DIALECTS)!r}.")
    return dialect


def _sqlglot() -> Any:
    try:
        import sqlglot
    except ImportError as exc:
        raise MissingDependencyError("rendering the aggregation SQL needs sqlglot: pip install sqlglot") from exc
    return sqlglot


@lru_cache(maxsize=1024)
def render(sql: str, dialect: str, pretty: bool = False) -> str:
    """The portable SQL text ``sql`` in ``dialect`` (a key of `DIALECTS`), its ``?`` parameters kept as ``?``.

    Rendered by sqlglot once per distinct text and dialect (cached): parameters are values, never part of the
    text, so the texts are few.
    """
    if dialect not in DIALECTS:
        raise EventLogError(f"unknown SQL dialect {dialect!r}; use one of {sorted(DIALECTS)!r}.")
    sqlglot = _sqlglot()
    tree = sqlglot.parse_one(sql)
    # sqlglot writes placeholders as %s for PostgreSQL; every Source reads ``?`` (the Postgres log translates)
    tree = tree.transform(lambda node: sqlglot.exp.Var(this="?") if isinstance(node, sqlglot.exp.Placeholder)
                          else node)
    if dialect == "duckdb":
        tree = tree.transform(_hashed_distinct)
    return tree.sql(dialect=DIALECTS[dialect], pretty=pretty)


def _hashed_distinct(node: Any) -> Any:
    """DuckDB: ``COUNT(DISTINCT unit_hash)`` → ``COUNT(DISTINCT hash(unit_hash))`` (NULLs still not counted).

    DuckDB counts distinct 64-bit integers about twice as fast as distinct strings (measured on 10M events:
    1.8 s of CPU instead of 3.8 s), and the distinct count of units is the costliest part of an A/B read. Two
    different units would have to share a 64-bit hash to change the count: about n²/2⁶⁵, 3·10⁻⁶ for 10M units.
    """
    from sqlglot import exp

    if isinstance(node, exp.Distinct) and isinstance(node.parent, exp.Count) and len(node.expressions) == 1:
        column = node.expressions[0]
        if isinstance(column, exp.Column) and column.name == "unit_hash":
            hashed = exp.Anonymous(this="hash", expressions=[column.copy()])  # hash(NULL) is not NULL: keep NULL
            kept = exp.Case(ifs=[exp.If(this=exp.Not(this=exp.Is(this=column.copy(), expression=exp.Null())),
                                        true=hashed)])
            return exp.Distinct(expressions=[kept])
    return node


def run_sql(source: Source, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    """Run portable SQL on a source, rendered in the source's dialect."""
    return source.query(render(sql, dialect_of(source)), list(params))


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


def _measures(measures: Sequence[str] | None) -> str:
    names = list(MEASURES) if measures is None else list(dict.fromkeys(["n", *measures]))
    bad = [m for m in names if m not in MEASURES]
    if bad:
        raise EventLogError(f"unknown aggregate columns {bad!r}; choose from {list(MEASURES)!r}.")
    return ",".join(f"\n    {MEASURES[m]} AS {m}" for m in names)


def aggregate_sql(by: Sequence[str] = (), *, where: EventFilter | None = None, window_s: float | None = None,
                  units: bool = False, latency_over_s: float | None = None,
                  measures: Sequence[str] | None = None,
                  latency_buckets: float | None = None) -> tuple[str, list[Any]]:
    """The aggregation query and its parameters (the one SQL text every engine runs, rendered by `render`)."""
    keys, window = _check_keys(by), _window_ms(window_s)
    select, group = _select_keys(keys, window)
    if latency_buckets is not None:  # one more key: the latency's sketch bucket (NULL latencies: the zero bucket)
        bucket = key_sql(latency_buckets)
        select.append(f"{bucket} AS {KEY_COLUMN}")
        group.append(bucket)
    extra, params = "", []
    if units:
        extra += ",\n    COUNT(DISTINCT unit_hash) AS units"
    if latency_over_s is not None:
        extra += ",\n    SUM(CASE WHEN latency_s > ? THEN 1 ELSE 0 END) AS latency_over"
        params.append(float(latency_over_s))
    clause, where_params = (where or EventFilter()).sql()
    head = ", ".join(select) + ("," if select else "")
    tail = f"\nGROUP BY {', '.join(group)}" if group else ""
    return (f"SELECT {head}{_measures(measures)}{extra}\nFROM {TABLE}\nWHERE {clause}{tail}",
            params + where_params)


def aggregate(source: Source, by: Sequence[str] = (), *, where: EventFilter | None = None,
              window_s: float | None = None, units: bool = False, latency_over_s: float | None = None,
              measures: Sequence[str] | None = None, latency_buckets: float | None = None) -> pd.DataFrame:
    """Counts and sums per group (and per time window): the sufficient statistics of every analysis.

    Args:
        source: an `EventLog`, a `ParquetLog`, or any `Source`.
        by: group keys from `GROUP_KEYS` (none: one row for everything selected).
        where: which events to read.
        window_s: also group by time windows of this many seconds (``window_ms`` = window start).
        units: also count distinct units (needed by the sample-ratio check).
        latency_over_s: also count events slower than this (a tail share for p95 guardrails).
        measures: compute only these columns of `MEASURES` (and ``n``): fewer sums, a faster scan.
        latency_buckets: also group by the latency's sketch bucket at this relative accuracy α (column
            ``bucket``; `promptlab.production._sketch`): each group's ``latency_n`` is then its bucket count, so
            one scan gives both the sums and the latency sketches (rows without a latency count in no sketch).

    Returns:
        One row per group with the columns in this module's docstring, sorted by the keys; no rows when no
        event matched.
    """
    sql, params = aggregate_sql(by, where=where, window_s=window_s, units=units, latency_over_s=latency_over_s,
                                measures=measures, latency_buckets=latency_buckets)
    frame = run_sql(source, sql, params)
    keys = [*by, *([WINDOW_KEY] if window_s is not None else []), *([KEY_COLUMN] if latency_buckets else [])]
    frame = frame[frame["n"].fillna(0) > 0] if "n" in frame else frame
    return _tidy(frame, keys)


def _tidy(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = frame.copy()
    counted = [c for c in (*SUM_COLUMNS, "units", "latency_over") if c in out]
    for name in counted:
        out[name] = pd.to_numeric(out[name]).fillna(0)
    integral = [c for c in counted if not c.endswith(("_sum", "_sumsq"))]
    for name in integral + [c for c in ("input_tokens_sum", "output_tokens_sum") if c in out]:
        out[name] = out[name].round().astype(np.int64)
    for name in ("first_ms", "last_ms", *(k for k in (WINDOW_KEY, KEY_COLUMN) if k in keys)):
        if name in out:
            out[name] = pd.to_numeric(out[name]).astype(np.int64)
    for key in keys:
        if key not in (WINDOW_KEY, KEY_COLUMN):
            out[key] = out[key].astype(object).where(out[key].notna(), None)
    if keys and len(out):
        out = out.sort_values(keys, na_position="first", kind="stable")
    return out.reset_index(drop=True)


def first_seen_sql(by: Sequence[str] = ("arm",), *, where: EventFilter | None = None,
                   window_s: float = 3600.0) -> tuple[str, list[Any]]:
    """The first-seen-units query: per group and window, the units whose first event (in the group) falls in
    that window. Cumulated over the windows it gives the distinct units at every look (what the sequential
    sample-ratio check reads), and its total is the groups' distinct units."""
    keys, window = _check_keys(by), _window_ms(window_s)
    clause, params = (where or EventFilter()).sql()
    head = ", ".join(keys) + ("," if keys else "")
    group = ", ".join([*keys, "unit_hash"])
    bucket = f"(first_ms - first_ms % {window})"
    return (f"SELECT {head} {bucket} AS {WINDOW_KEY}, COUNT(*) AS units\nFROM (SELECT {head} MIN(ts_ms) AS first_ms "
            f"FROM {TABLE} WHERE {clause} AND unit_hash IS NOT NULL GROUP BY {group}) AS firsts\n"
            f"GROUP BY {', '.join([*keys, bucket])}", params)


def first_seen_units(source: Source, by: Sequence[str] = ("arm",), *, where: EventFilter | None = None,
                     window_s: float = 3600.0) -> pd.DataFrame:
    """New distinct units per group and window (``window_ms``, ``units``): a unit counts in the window of its
    first event. Computed by the engine (see `first_seen_sql`); only the counts come back."""
    sql, params = first_seen_sql(by, where=where, window_s=window_s)
    frame = run_sql(source, sql, params)
    for name in (WINDOW_KEY, "units"):
        frame[name] = pd.to_numeric(frame[name]).astype(np.int64)
    return frame


def latency_sketch_sql(by: Sequence[str] = (), *, where: EventFilter | None = None,
                       window_s: float | None = None, alpha: float = DEFAULT_ALPHA) -> tuple[str, list[Any]]:
    """The bucket-count query of the latency sketches (one row per group, window and log bucket)."""
    keys, window = _check_keys(by), _window_ms(window_s)
    select, group = _select_keys(keys, window)
    bucket = key_sql(alpha)
    clause, params = (where or EventFilter()).sql()
    head = ", ".join([*select, f"{bucket} AS {KEY_COLUMN}", f"COUNT(*) AS {COUNT_COLUMN}"])
    return (f"SELECT {head}\nFROM {TABLE}\nWHERE {clause} AND latency_s IS NOT NULL\n"
            f"GROUP BY {', '.join([*group, bucket])}", params)


def latency_sketches(source: Source, by: Sequence[str] = (), *, where: EventFilter | None = None,
                     window_s: float | None = None, alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
    """Latency bucket counts per group (and window), computed by the engine: the group keys, ``window_ms`` when
    windowed, ``bucket`` and ``bucket_n``. Read them with `promptlab.production._sketch.group_sketches`."""
    sql, params = latency_sketch_sql(by, where=where, window_s=window_s, alpha=alpha)
    frame = run_sql(source, sql, params)
    for name in (KEY_COLUMN, COUNT_COLUMN, *([WINDOW_KEY] if window_s is not None else [])):
        frame[name] = pd.to_numeric(frame[name]).astype(np.int64)
    return frame


def latency_quantiles(source: Source, by: Sequence[str] = (), *, where: EventFilter | None = None,
                      window_s: float | None = None, qs: Sequence[float] = (0.5, 0.95),
                      confidence: float = 0.95, alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
    """Latency quantiles per group from engine-side sketches (`promptlab.production._sketch`): each within a
    relative error ``alpha`` of the exact sample quantile, with an interval covering the true quantile.

    Returns one row per group with, for each q (``p50``, ``p95`` …), columns ``p50_s``, ``p50_low_s`` and
    ``p50_high_s`` (an unreachable bound is ±inf: a p95 upper bound needs about 59 calls at 95%).
    """
    keys = [*by, *([WINDOW_KEY] if window_s is not None else [])]
    sketches = group_sketches(latency_sketches(source, by, where=where, window_s=window_s, alpha=alpha), keys,
                              alpha)
    rows = [[*key, *quantile_row(sketch, qs, confidence)] for key, sketch in sketches.items()]
    out = pd.DataFrame(rows, columns=[*keys, *_quantile_columns(qs)])
    if WINDOW_KEY in out:
        out[WINDOW_KEY] = out[WINDOW_KEY].astype(np.int64)
    for key in by:
        out[key] = out[key].astype(object).where(out[key].notna(), None)
    return out


WAREHOUSE_QUERIES = {
    "ab_looks": "per arm and look window: counts and sums of the decision and guardrails (analyze's table)",
    "srm_units": "per arm: distinct units over the whole experiment (the sample-ratio check)",
    "latency_sketch": "per arm: latency bucket counts (p50/p95 and the pooled p95 of the tail guardrail)",
    "metrics": "per prompt, version and hour: the monitor's counts and sums",
    "metrics_latency": "per prompt, version and hour: latency bucket counts (the monitor's p50/p95)",
}
"""The queries an analysis runs, by name: what `warehouse_sql` renders for a warehouse (and the golden files)."""


def _warehouse_query(name: str, arms: int, look_every_s: float, alpha: float) -> tuple[str, list[str]]:
    """(portable SQL, names of its ``?`` parameters in order) of one named query."""
    experiment = EventFilter(experiment="?", arms=tuple(f"arm_{i + 1}" for i in range(arms)))
    if name == "ab_looks":
        sql, _ = aggregate_sql(["arm"], where=experiment, window_s=look_every_s, latency_over_s=0.0)
        return sql, ["latency_over_s (LatencySketch.tail_threshold(0.95) of latency_sketch with arms pooled)",
                     "experiment", *experiment.arms]
    if name == "srm_units":
        return aggregate_sql(["arm"], where=experiment, units=True)[0], ["experiment", *experiment.arms]
    if name == "latency_sketch":
        return latency_sketch_sql(["arm"], where=experiment, alpha=alpha)[0], ["experiment", *experiment.arms]
    span = EventFilter(since_ms=0, until_ms=0)
    if name == "metrics":
        return aggregate_sql(["prompt", "version"], where=span, window_s=3600)[0], ["since_ms", "until_ms"]
    if name == "metrics_latency":
        return (latency_sketch_sql(["prompt", "version"], where=span, window_s=3600, alpha=alpha)[0],
                ["since_ms", "until_ms"])
    raise EventLogError(f"no query called {name!r}; the queries are {sorted(WAREHOUSE_QUERIES)!r}.")


def warehouse_sql(name: str, dialect: str = "bigquery", *, arms: int = 2, look_every_s: float = 3600.0,
                  alpha: float = DEFAULT_ALPHA) -> str:
    """One analysis query (`WAREHOUSE_QUERIES`) in a warehouse's dialect, to run where the events live.

    Its ``?`` parameters are listed in a leading comment, in order; the table is called ``events`` (qualify it
    for your warehouse). Hand the results to `promptlab.production.analyze`.

    Args:
        name: which query (a key of `WAREHOUSE_QUERIES`).
        dialect: ``bigquery``, ``snowflake``, ``spark`` (or any key of `DIALECTS`).
        arms: how many arms the experiment has (one ``?`` each).
        look_every_s: the look window of ``ab_looks`` (hourly by default).
        alpha: the relative accuracy of the latency sketches.
    """
    if not (isinstance(arms, int) and arms >= 1):
        raise EventLogError(f"arms={arms!r} must be the number of arms of the experiment, e.g. 2.")
    sql, params = _warehouse_query(name, arms, look_every_s, alpha)
    head = f"-- promptlab {name}: {WAREHOUSE_QUERIES[name]}\n-- parameters (?, in order): {', '.join(params)}\n"
    return head + render(sql, dialect, pretty=True) + "\n"


def _quantile_columns(qs: Sequence[float]) -> list[str]:
    cols = []
    for q in qs:
        name = quantile_name(q)
        cols += [f"{name}_s", f"{name}_low_s", f"{name}_high_s"]
    return cols


def quantile_name(q: float) -> str:
    """``0.95`` → ``"p95"``, ``0.5`` → ``"p50"``, ``0.999`` → ``"p99.9"``."""
    return f"p{100 * q:g}"


def quantile_row(sketch: Any, qs: Sequence[float], confidence: float) -> list[float]:
    """[estimate, low, high] for each q from a `LatencySketch` (NaNs when it is empty)."""
    out: list[float] = []
    for q in qs:
        ci = sketch.interval(q, confidence)
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
