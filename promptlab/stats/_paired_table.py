"""The paired table behind `compare`: results rows → one row per (model, case, repeat) key and one column per
variant, in canonical order (case id, then repeat), built with bincount; and the guardrails (cost, p95 latency,
error rate) of each (variant, model[, category]) group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._quantiles import grouped_quantile, live_latency


@dataclass(frozen=True)
class _Paired:
    """One row per (model, case_id, repeat) key and one column per variant, built with bincount."""

    values: np.ndarray  # (keys, variants) metric value, NaN when missing or unknown
    present: np.ndarray  # (keys, variants) a row exists
    model: np.ndarray  # (keys,) model code
    case: np.ndarray  # (keys,) case code
    category: np.ndarray  # (keys,) category code
    variants: tuple[str, ...]
    models: tuple[str, ...]
    categories: tuple[str, ...]


@dataclass(frozen=True)
class _Rows:
    """Row-level codes and guardrail values, for cost, latency and error rates per group."""

    variant: np.ndarray
    model: np.ndarray
    category: np.ndarray
    cost: np.ndarray
    latency: np.ndarray
    error: np.ndarray


def _codes(column: pd.Series) -> tuple[np.ndarray, tuple]:
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    return codes.astype(np.int64), tuple(str(u) if not pd.isna(u) else "NA" for u in uniques)


def _sorted_codes(column: pd.Series) -> tuple[np.ndarray, int]:
    """Codes that follow the sorted values (case ids, repeats), and how many distinct values there are."""
    try:
        codes, uniques = pd.factorize(column, sort=True, use_na_sentinel=False)
    except TypeError:  # mixed types (ints and strings as case ids): sort them as text
        codes, uniques = pd.factorize(column.astype(str), sort=True, use_na_sentinel=False)
    return codes.astype(np.int64), len(uniques)


def _metric_values(frame: pd.DataFrame, metric: str) -> np.ndarray:
    column = frame[metric]
    if metric == "passed":
        return column.astype("boolean").to_numpy(dtype=float, na_value=np.nan)
    return _floats(column)


def _column(frame: pd.DataFrame, name: str, fill: Any) -> pd.Series:
    return frame[name] if name in frame else pd.Series(fill, index=frame.index)


def _prepare(frame: pd.DataFrame, metric: str, pool_models: bool = False) -> tuple[_Paired, _Rows]:
    """The paired table, its rows in a canonical order: by case id, then repeat. Variants, models and
    categories keep the order they first appear in; every sum and the bootstrap's resampling follow the case
    order, so shuffling the results' rows changes no statistic."""
    vcode, variants = _codes(frame["variant"])
    mcode, models = _codes(frame["model"])
    if pool_models:
        mcode, models = np.zeros_like(mcode), (" + ".join(models),)
    ccode, n_cases = _sorted_codes(frame["case_id"])
    rcode, n_repeats = _sorted_codes(frame["repeat"])
    gcode, categories = _codes(_column(frame, "category", "NA"))
    order = np.lexsort((rcode, ccode))
    frame = frame.iloc[order]
    vcode, mcode, ccode, rcode, gcode = (x[order] for x in (vcode, mcode, ccode, rcode, gcode))
    key = (mcode * n_cases + ccode) * max(1, n_repeats) + rcode
    kcode, kunique = pd.factorize(key)
    first = np.unique(kcode, return_index=True)[1]
    value = _metric_values(frame, metric)
    paired = _Paired(*_wide(kcode, vcode, value, len(kunique), len(variants)), mcode[first], ccode[first],
                     gcode[first], variants, models, categories)
    return paired, _guard_rows(frame, vcode, mcode, gcode, metric)


def _wide(kcode: np.ndarray, vcode: np.ndarray, value: np.ndarray, keys: int,
          variants: int) -> tuple[np.ndarray, np.ndarray]:
    """The (keys × variants) mean of the metric (duplicates averaged) and whether any row exists."""
    flat, size = kcode * variants + vcode, keys * variants
    ok = ~np.isnan(value)
    sums = np.bincount(flat[ok], weights=value[ok], minlength=size)
    counts = np.bincount(flat[ok], minlength=size)
    present = np.bincount(flat, minlength=size) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return mean.reshape(keys, variants), present.reshape(keys, variants)


def _floats(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _guard_rows(frame: pd.DataFrame, vcode: np.ndarray, mcode: np.ndarray, gcode: np.ndarray,
                metric: str) -> _Rows:
    # One rule with Results.latency(): a cached answer's latency is a past call's, so it is left out.
    latency = (live_latency(frame).to_numpy(dtype=float, na_value=np.nan) if "latency_s" in frame
               else np.full(len(frame), np.nan))
    cost = _floats(_column(frame, "cost_usd", np.nan))
    error = (frame["error_type"].notna() if "error_type" in frame else frame[metric].isna()).to_numpy(bool)
    return _Rows(vcode, mcode, gcode, cost, latency, error)


def _shares_model(p: _Paired, ib: int, iv: int) -> bool:
    return bool(set(p.model[p.present[:, ib]].tolist()) & set(p.model[p.present[:, iv]].tolist()))


@dataclass(frozen=True)
class _GuardTable:
    """Cost, p95 latency and error rate per (variant, model[, category]) group id."""

    width_m: int
    width_g: int
    cost: dict[int, float]
    p95: dict[int, float]
    error: dict[int, float]


def _guard_table(rows: _Rows, by_category: bool) -> _GuardTable:
    width_m = int(rows.model.max(initial=0) + 1)
    width_g = int(rows.category.max(initial=0) + 1) if by_category else 1
    cat = rows.category if by_category else np.zeros_like(rows.model)
    gid = (rows.variant * width_m + rows.model) * width_g + cat
    p95 = grouped_quantile(rows.latency, gid, 0.95)
    error = _group_mean(gid, rows.error.astype(float))
    return _GuardTable(width_m, width_g, _group_mean(gid, rows.cost), p95, error)


def _guards(g: _GuardTable, table: pd.DataFrame, ib: int, iv: int, by_category: bool) -> pd.DataFrame:
    """Cost, p95 latency and error rate of both arms for each row of ``table`` (same model / category)."""
    tcat = table["_category"].to_numpy() if by_category else np.zeros(len(table), dtype=np.int64)
    out = {}
    for side, code in (("baseline", ib), ("variant", iv)):
        ids = (code * g.width_m + table["_model"].to_numpy()) * g.width_g + tcat
        out[f"{side}_cost_usd"] = [g.cost.get(i, math.nan) for i in ids]
        out[f"{side}_p95_s"] = [g.p95.get(i, math.nan) for i in ids]
        out[f"{side}_error_rate"] = [g.error.get(i, math.nan) for i in ids]
    guard = pd.DataFrame(out, index=table.index)
    guard["cost_diff_usd"] = guard["variant_cost_usd"] - guard["baseline_cost_usd"]
    guard["p95_diff_s"] = guard["variant_p95_s"] - guard["baseline_p95_s"]
    guard["error_rate_diff"] = guard["variant_error_rate"] - guard["baseline_error_rate"]
    return guard


def _group_mean(gid: np.ndarray, values: np.ndarray) -> dict[int, float]:
    ok = ~np.isnan(values)
    if not ok.any():
        return {}
    sums, counts = np.bincount(gid[ok], values[ok]), np.bincount(gid[ok])
    return {int(i): float(sums[i] / counts[i]) for i in np.flatnonzero(counts)}
