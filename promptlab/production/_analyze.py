"""`analyze`: an A/B read from an aggregate table computed in the user's own warehouse.

When the events live in BigQuery, Snowflake or Spark, the heavy part — counts and sums per arm and look window,
distinct units, latency bucket counts — runs there (`promptlab.production._query.warehouse_sql` renders the
queries for each warehouse), and only those few rows come back. `analyze` checks that table (columns, types,
impossible counts, every problem named with a way to fix it) and returns the same `ABTestReport` as
`analyze_experiment` reading a log: the per-arm table, the always-valid decision at every look, guardrails, the
sample-ratio check and the status — through the same function
(`promptlab.production._experiment.report_from_cumulative`).

A guardrail whose columns the table lacks is reported as unknown (NaN, never degraded), never as 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ExperimentError
from ._experiment import ABTestReport, Design, _cumulative, report_from_cumulative
from ._query import WINDOW_KEY
from ._sketch import COUNT_COLUMN, DEFAULT_ALPHA, KEY_COLUMN, LatencySketch, group_sketches


def _srm_looks(design: Design, cumulative: dict[str, pd.DataFrame], units: pd.DataFrame | None
               ) -> dict[str, np.ndarray]:
    """The looks the sequential SRM reads: cumulative calls per look from the table's windows; distinct units only
    as one final look, since a warehouse's `srm_units` gives each arm's total, not when each unit was first seen
    (one look is a valid read of an always-valid test, just not a watched one)."""
    k = len(design.arms)
    calls = (np.column_stack([cumulative[arm]["n"].to_numpy(dtype=float) for arm in design.arms])
             if len(cumulative[design.arms[0]]) else np.empty((0, k)))
    counts = {} if units is None else dict(zip(units["arm"], units["units"], strict=True))
    final = np.array([float(int(counts.get(arm, 0))) for arm in design.arms])  # as the arm table reads them
    return {"n": calls, "units": final[None, :] if final.sum() > 0 else np.empty((0, k))}


REQUIRED = ("arm", "n", "successes", "success_n")
"""Columns every aggregate table needs (one row per arm, or per arm and ``window_ms`` look)."""
OPTIONAL = {"errors": ("error_rate",), "latency_n": ("latency_tail",), "latency_over": ("latency_tail",),
            "latency_sum": (), "cost_n": ("cost_per_call_usd",), "cost_sum": ("cost_per_call_usd",),
            "cost_sumsq": ("cost_per_call_usd",)}
"""Optional columns → the guardrails that need them (a missing one makes those guardrails unknown)."""
_HINT = ("compute it with promptlab.production.warehouse_sql('ab_looks', dialect) — or aggregate(log, ['arm'], "
         "window_s=3600, latency_over_s=...) on a log")


def _columns(frame: Any) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ExperimentError(f"analyze needs a pandas DataFrame of per-arm counts; got {type(frame).__name__}. "
                              f"{_HINT[0].upper()}{_HINT[1:]}.")
    out = frame.copy()
    out.columns = [str(c).lower() for c in out.columns]  # Snowflake returns unquoted names in upper case
    missing = [c for c in REQUIRED if c not in out]
    if missing:
        raise ExperimentError(f"the aggregate table lacks the columns {missing!r} (it has {list(frame.columns)!r}); "
                              f"{_HINT}.")
    return out


def _numbers(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Numeric count/sum columns (warehouses may return decimals or strings); NaN or negative is refused."""
    out = frame.copy()
    for name in names:
        values = pd.to_numeric(out[name], errors="coerce")
        bad = out[name][values.isna() | (values < 0)]
        if len(bad):
            raise ExperimentError(f"column {name!r} must hold non-negative numbers on every row; row "
                                  f"{bad.index[0]!r} has {bad.iloc[0]!r}. Counts of nothing are 0, not NULL.")
        out[name] = values.astype(float)
    return out


def _check_counts(frame: pd.DataFrame) -> None:
    checks = [("successes", "success_n"), ("success_n", "n"), ("errors", "n"), ("latency_over", "latency_n"),
              ("latency_n", "n"), ("cost_n", "n")]
    for part, whole in checks:
        if part in frame and whole in frame and (frame[part] > frame[whole]).any():
            row = frame.index[(frame[part] > frame[whole]).to_numpy()][0]
            raise ExperimentError(f"{part} ({frame.loc[row, part]!r}) exceeds {whole} ({frame.loc[row, whole]!r}) "
                                  f"on row {row!r} (arm {frame.loc[row, 'arm']!r}); the table's columns are "
                                  "mixed up or summed over different rows.")


def _windows(frame: pd.DataFrame, design: Design) -> pd.DataFrame:
    out = frame.copy()
    out["arm"] = out["arm"].astype(object)
    unknown = sorted({str(a) for a in out["arm"]} - set(design.arms))
    if unknown:
        raise ExperimentError(f"the table has arms {unknown!r} that the design does not: {list(design.arms)!r}. "
                              "Filter them out in the query, or name them in the Design.")
    if WINDOW_KEY not in out:
        out[WINDOW_KEY] = 0  # one look over everything
    out[WINDOW_KEY] = pd.to_numeric(out[WINDOW_KEY], errors="coerce")
    if out[WINDOW_KEY].isna().any():
        raise ExperimentError("column 'window_ms' must be the look window's start in Unix ms on every row; some "
                              "rows have none.")
    repeated = out.duplicated(["arm", WINDOW_KEY])
    if repeated.any():
        row = out[repeated].iloc[0]
        raise ExperimentError(f"arm {row['arm']!r} has more than one row for window_ms {int(row[WINDOW_KEY])!r}; "
                              "group the query by arm and window only (sum shards before analyzing).")
    for name in OPTIONAL:
        if name not in out:
            out[name] = 0.0  # stands in for the computation; the guardrails it feeds are blanked afterwards
    return out


def _design(frame: pd.DataFrame, design: Design | None, baseline: str | None,
            weights: Mapping[str, float] | None, experiment: str) -> Design:
    if design is not None:
        if not isinstance(design, Design):
            raise ExperimentError(f"design must be a promptlab.production.Design; got {type(design).__name__}.")
        return design
    arms = tuple(dict.fromkeys(str(a) for a in frame["arm"]))
    if baseline is None:
        raise ExperimentError(f"name the baseline arm: analyze(frame, baseline='A') (the table's arms: "
                              f"{list(arms)!r}), or pass a Design.")
    shares = dict(weights or {})
    if set(shares) - set(arms):
        raise ExperimentError(f"weights name arms {sorted(set(shares) - set(arms))!r} the table does not have "
                              f"({list(arms)!r}).")
    return Design(experiment, arms, tuple(float(shares.get(a, 1.0)) for a in arms), baseline)


def _units(units: pd.DataFrame | Mapping[str, int] | None) -> pd.DataFrame | None:
    if units is None:
        return None
    if isinstance(units, Mapping):
        units = pd.DataFrame({"arm": list(units), "units": list(units.values())})
    frame = _columns_like(units, ("arm", "units"), "units")
    return _numbers(frame, ["units"])


def _columns_like(frame: Any, names: Sequence[str], what: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ExperimentError(f"{what}= must be a DataFrame with columns {list(names)!r}; got {type(frame).__name__}.")
    out = frame.copy()
    out.columns = [str(c).lower() for c in out.columns]
    missing = [c for c in names if c not in out]
    if missing:
        query = "srm_units" if what == "units" else "latency_sketch"
        raise ExperimentError(f"{what}= lacks the columns {missing!r} (it has {list(frame.columns)!r}); "
                              f"compute it with warehouse_sql({query!r}).")
    return out


def _latency(latency: pd.DataFrame | None, alpha: float) -> dict[str, LatencySketch]:
    if latency is None:
        return {}
    frame = _numbers(_columns_like(latency, ("arm", KEY_COLUMN, COUNT_COLUMN), "latency"), [COUNT_COLUMN])
    frame[KEY_COLUMN] = pd.to_numeric(frame[KEY_COLUMN], errors="coerce")
    if frame[KEY_COLUMN].isna().any():
        raise ExperimentError("latency= column 'bucket' must hold the integer bucket keys of latency_sketch.")
    frame[KEY_COLUMN] = frame[KEY_COLUMN].astype(np.int64)
    frame[COUNT_COLUMN] = frame[COUNT_COLUMN].round().astype(np.int64)
    return {key[0]: sketch for key, sketch in group_sketches(frame, ["arm"], alpha).items()}


def _blank_unknown(guardrails: pd.DataFrame, arms: pd.DataFrame, present: set[str]) -> None:
    """Guardrails and arm columns whose inputs the table lacks are unknown (NaN), never 0."""
    unknown = {g for name, gs in OPTIONAL.items() if name not in present for g in gs}
    rows = guardrails["guardrail"].isin(unknown)
    guardrails.loc[rows, ["baseline", "value", "diff", "p_value"]] = math.nan
    guardrails.loc[rows, ["ci_low", "ci_high"]] = [-math.inf, math.inf]
    guardrails.loc[rows, "degraded"] = False
    blank = {"errors": "error_rate", "latency_sum": "mean_latency_s", "cost_sum": "cost_per_call_usd"}
    for name, column in blank.items():
        if name not in present:
            arms[column] = math.nan


def analyze(frame: pd.DataFrame, design: Design | None = None, *, baseline: str | None = None,
            weights: Mapping[str, float] | None = None, experiment: str = "warehouse",
            units: pd.DataFrame | Mapping[str, int] | None = None, latency: pd.DataFrame | None = None,
            alpha: float = DEFAULT_ALPHA) -> ABTestReport:
    """The A/B report of an aggregate table computed elsewhere (e.g. in your warehouse).

    Args:
        frame: one row per arm and look window with ``arm``, ``n``, ``successes``, ``success_n`` and, for the
            looks, ``window_ms``; for the guardrails ``errors``, ``latency_n``, ``latency_over``, ``cost_n``,
            ``cost_sum``, ``cost_sumsq`` (and ``latency_sum`` for the mean latency) — the columns of
            ``warehouse_sql("ab_looks")``, upper- or lower-case.
        design: the experiment's `Design` (or give ``baseline`` and optionally ``weights`` instead).
        baseline: the baseline arm, when no design is given (equal weights unless ``weights``).
        weights: planned traffic share per arm, when no design is given.
        experiment: the experiment's name in the report, when no design is given.
        units: distinct units per arm (``warehouse_sql("srm_units")`` or ``{"A": 5012, ...}``) for the
            sample-ratio check on units; without it the check runs on calls.
        latency: latency bucket counts per arm (``warehouse_sql("latency_sketch")``: ``arm``, ``bucket``,
            ``bucket_n``) for p50/p95.
        alpha: the relative accuracy the latency buckets were computed with.
    """
    table = _columns(frame)
    design = _design(table, design, baseline, weights, experiment)
    present = set(table.columns)
    table = _numbers(table, [c for c in (*REQUIRED[1:], *OPTIONAL) if c in table])
    _check_counts(table)
    windows = _windows(table, design)
    cumulative = _cumulative(windows, design.arms)
    per_arm = _units(units)
    return report_from_cumulative(design, cumulative, _latency(latency, alpha), per_arm,
                                  _srm_looks(design, cumulative, per_arm),
                                  adjust=lambda arms, guardrails: _blank_unknown(guardrails, arms, present))
