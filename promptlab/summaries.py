"""The summary tables behind `Results` (accuracy, categories, failures, latency, cost, format compliance).

Each function takes the results frame and returns a tidy DataFrame; the statistics themselves (Wilson
interval, quantile interval) come from `promptlab.stats`, their one owner.

Intervals: one answer per case → Wilson; K repeats per case → the mean of per-case pass rates with the CLT
interval of the standard error over cases (answers to one case are not independent, so the SE is taken over
cases, not over raw answers — Miller 2024, "Adding Error Bars to Evals").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import stats
from .display import fmt_pct


def _wilson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    interval = stats.wilson_interval(int(successes), int(n), confidence=confidence)
    return float(interval.low), float(interval.high)


def _group_accuracy(group: pd.DataFrame, confidence: float) -> pd.Series:
    scored = group["passed"].dropna().astype(bool)
    n, k = len(scored), int(scored.sum())
    low, high = _wilson(k, n, confidence)
    row = {"n": n, "passed": k, "accuracy": k / n if n else np.nan, "ci_low": low, "ci_high": high,
           "errors": int(group["passed"].isna().sum())}
    if group["repeat"].nunique() > 1:
        row.update(_over_cases(group, confidence))
    return pd.Series(row)


def _over_cases(group: pd.DataFrame, confidence: float) -> dict[str, Any]:
    """Per-case pass rates, averaged; SE over cases and a CLT interval on that scale (clipped to [0, 1])."""
    scored = group.dropna(subset=["passed"])
    if scored.empty:
        return {"cases": 0, "se_cases": np.nan}
    result = stats.case_mean_se(scored["passed"].astype(float).to_numpy(), scored["case_id"].to_numpy(),
                                confidence)
    return {"cases": result.n, "accuracy": result.mean, "se_cases": result.se,
            "ci_low": max(0.0, result.low), "ci_high": min(1.0, result.high)}


def accuracy_table(df: pd.DataFrame, by: list[str], confidence: float) -> pd.DataFrame:
    """Accuracy per group with its interval (Wilson; over cases when there are repeats)."""
    if df.empty:
        return pd.DataFrame(columns=by + ["n", "passed", "accuracy", "ci_low", "ci_high", "errors"])
    table = df.groupby(by, sort=False, dropna=False)[["passed", "repeat", "case_id"]].apply(
        _group_accuracy, confidence=confidence)
    table = table.reset_index()
    for column in ("n", "passed", "errors", "cases"):
        if column in table:
            table[column] = table[column].astype("Int64")
    return table


FAILURE_COLUMNS = ["case_id", "variant", "model", "repeat", "category", "input", "expected", "actual", "reason"]


def failures_table(df: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """Scored answers that failed, hardest categories first (adversarial, edge, then the rest)."""
    failed = df[df["passed"].eq(False).fillna(False).astype(bool)].rename(columns={"output": "actual"})
    order = {"adversarial": 0, "edge_case": 1}
    failed = failed.assign(_rank=failed["category"].map(lambda c: order.get(c, 2)))
    failed = failed.sort_values(["_rank", "case_id", "variant"], kind="stable")[FAILURE_COLUMNS]
    return failed.head(limit).reset_index(drop=True) if limit else failed.reset_index(drop=True)


def _latency_row(values: pd.Series, confidence: float) -> pd.Series:
    values = values.dropna().to_numpy(dtype=float)
    row: dict[str, Any] = {"n": len(values)}
    for q, name in ((0.5, "p50"), (0.95, "p95")):
        if len(values) == 0:
            row.update({f"{name}_s": np.nan, f"{name}_ci_low": np.nan, f"{name}_ci_high": np.nan})
            continue
        ci = stats.quantile_ci(values, q=q, confidence=confidence)
        row.update({f"{name}_s": float(ci.estimate), f"{name}_ci_low": float(ci.low),
                    f"{name}_ci_high": float(ci.high)})
    return pd.Series(row)


LATENCY_COLUMNS = ["n", "p50_s", "p50_ci_low", "p50_ci_high", "p95_s", "p95_ci_low", "p95_ci_high"]


def latency_table(df: pd.DataFrame, by: list[str], confidence: float) -> pd.DataFrame:
    """p50 and p95 latency per group, named quantile definition, with order-statistic CIs.

    Every answered call counts; a cached answer carries the latency measured when it was first made.
    """
    answered = df[df["latency_s"].notna()]
    if answered.empty:
        return pd.DataFrame(columns=by + LATENCY_COLUMNS)
    table = answered.groupby(by, sort=False)["latency_s"].apply(_latency_row, confidence=confidence).unstack()
    table = table.reset_index()
    table["n"] = table["n"].astype("Int64")
    table.attrs["quantile_method"] = stats.QUANTILE_METHOD
    return table


def _sum_or_na(values: pd.Series) -> float:
    """Sum that stays NA when any value is unknown (unknown cost is not zero cost)."""
    return float("nan") if values.isna().any() or values.empty else float(values.sum())


def cost_table(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Calls, tokens and USD per group; costs NA when any answered call has an unknown price."""
    answered = df[df["output"].notna()]
    grouped = answered.groupby(by, sort=False)
    table = grouped.agg(calls=("case_id", "size"), input_tokens=("input_tokens", "sum"),
                        output_tokens=("output_tokens", "sum"))
    table["cost_usd"] = grouped["cost_usd"].agg(_sum_or_na)
    table["cost_per_call_usd"] = table["cost_usd"] / table["calls"]
    table["cost_per_1k_calls_usd"] = 1000 * table["cost_per_call_usd"]
    return table.reset_index()


def format_table(df: pd.DataFrame, by: list[str], scorer: Any, confidence: float) -> pd.DataFrame:
    """Share of answered calls whose output passes a format check (JSON by default), with Wilson CIs."""
    from .scoring import JsonValid, score_one
    from .suite import Case

    check = scorer or JsonValid()
    answered = df[df["output"].notna()]
    placeholder = Case(id="format", input="")
    ok = answered["output"].map(lambda text: bool(score_one(check, placeholder, text)[0].passed))
    frame = answered.assign(format_ok=ok)
    rows = []
    for keys, group in frame.groupby(by, sort=False):
        n, k = len(group), int(group["format_ok"].sum())
        low, high = _wilson(k, n, confidence)
        rows.append({**dict(zip(by, keys, strict=True)), "n": n, "format_ok": k, "compliance": k / n, "ci_low": low,
                     "ci_high": high})
    return pd.DataFrame(rows, columns=by + ["n", "format_ok", "compliance", "ci_low", "ci_high"])


def summary_table(results: Any) -> pd.DataFrame:
    """Accuracy, errors, latency and cost side by side, one row per variant × model."""
    acc = results.accuracy()[["variant", "model", "n", "accuracy", "ci_low", "ci_high", "errors"]]
    lat = results.latency()
    lat = lat[["variant", "model", "p50_s", "p95_s"]] if not lat.empty else None
    cost = results.cost()[["variant", "model", "input_tokens", "output_tokens", "cost_usd",
                           "cost_per_1k_calls_usd"]]
    table = acc.merge(cost, on=["variant", "model"], how="left")
    return table.merge(lat, on=["variant", "model"], how="left") if lat is not None else table


def headline(results: Any) -> str:
    """The one-line repr: rows, variants, models, accuracy per variant, errors."""
    df = results.df
    if df.empty:
        return "Results(0 rows)"
    acc = results.accuracy()
    parts = ", ".join(f"{r.variant}@{r.model}={fmt_pct(r.accuracy)}" for r in acc.itertuples())
    errors = int(df["error_type"].notna().sum())
    return f"Results({len(df)} rows; accuracy {parts}; errors={errors})"
