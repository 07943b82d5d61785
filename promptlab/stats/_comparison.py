"""`compare(results, baseline="A")`: every variant against the baseline, paired by case, as a `Comparison`.

Pairing: rows are matched on ``(case_id, repeat)`` within one ``model``; a pair with no value on the metric
on either side (a failed call, no verdict) is dropped and counted in ``n_dropped``. With K > 1 repeats the
answers to one case are not independent, so each case's pairs are averaged first and everything is computed
over cases (docs/statistics.md). If a variant shares no model with the baseline (each prompt ran on its own
pinned model), its rows are paired across models and the ``model`` column names the pooled models.

Tests (``method`` says which one a row used):

* ``metric="passed"``, one answer per case: McNemar on the discordant pairs b (only the baseline passed) and
  c (only the variant passed); ``p_value`` is the mid-p (the decision value), ``p_exact`` the exact binomial
  p, and the interval is Newcombe's paired hybrid-score interval for (c − b)/n.
* ``metric="score"``, or pass/fail with repeats: paired t on the per-case means (``p_value``); the interval
  is a seeded paired bootstrap for scores (BCa with 9,999 resamples up to 5,000 cases, percentile with
  2,000 above), the t interval for pass rates with repeats; ``p_exact`` is the
  exact sign test with b / c = cases where the variant is lower / higher (McNemar is its binary case).

``p_adj`` is Holm-adjusted across the variants compared with the baseline on one model;
`Comparison.by_category` adjusts across categories with Benjamini–Hochberg instead (exploratory slices).

Intervals stand on the verdict's footing. ``ci_low`` / ``ci_high`` are simultaneous over the family the p-values
are adjusted in: with Holm across k variants, each is the interval at 1 − α/k (Bonferroni: all k cover at once
with probability ≥ 1 − α, and one that excludes 0 means Holm rejects too); with Benjamini–Hochberg across m
categories and R differences found, Benjamini–Yekutieli's false-coverage-rate level 1 − max(R, 1)·α/m.
``ci_level`` says which level; the unadjusted 1 − α interval is kept as ``ci_low_unadj`` / ``ci_high_unadj``.
The verdict claims a difference only when the adjusted test and the displayed interval agree; where they
disagree at the margin (they are different methods, e.g. McNemar's mid-p and Newcombe's interval) it is
``borderline`` and the note says why, so no row shows a verdict its own interval contradicts.

Canonical order: the pairs are put in case-id order (then repeat) before anything is summed or resampled, so
the same results in another row order give identical statistics, bootstrap intervals included.

Columns of `Comparison.df` (`COLUMNS`):

=================== ==========================================================================================
variant, baseline   the variant compared, and the baseline it is compared with
model               the model both answered on
category            (`Comparison.by_category` only) the case category
metric              ``passed`` (pass rate) or ``score`` (mean score)
n                   complete pairs used
cases               distinct cases among them (the unit of analysis)
n_dropped           pairs dropped because one side had no value on the metric
baseline_mean       the baseline's pass rate / mean score over the complete pairs
variant_mean        the variant's, over the same pairs
diff                variant_mean − baseline_mean (positive: the variant is higher)
ci_low, ci_high     interval for diff at ``ci_level``: simultaneous over the family (see above; ``method``)
ci_level            the displayed interval's confidence, e.g. 0.975 = 1 − 0.05/2 for two variants (Holm family)
ci_low_unadj,       the unadjusted 1 − α interval for diff, this comparison alone (not the verdict's footing)
ci_high_unadj
p_value             the decision p-value (mid-p or paired t); 1.0 when there are no pairs
p_exact             McNemar / sign test exact p
p_adj               p_value adjusted for multiplicity (Holm across variants; BH across categories)
b, c                discordant pairs: only the baseline passed (b), only the variant passed (c)
correlation         Pearson r between the arms per case: what pairing exploited (NaN if an arm is constant)
verdict             ``better`` / ``worse`` (p_adj < alpha and the interval excludes 0 on that side), ``no
                    detectable difference`` (neither), ``borderline`` (the two disagree; see ``note``)
mde                 smallest difference detectable at 80% power with these cases (paired planner)
power_note          that sentence, e.g. "with n = 60 the smallest difference detectable at 80% power is 14
                    points"
method              the test and interval used
note                edge cases in words (no pairs, no discordant pairs, all pass …); empty otherwise
baseline_cost_usd   mean cost per call of the baseline (NaN when unpriced), then the variant's, and
variant_cost_usd,   their difference — guardrails, outside the multiplicity family
cost_diff_usd
baseline_p95_s,     p95 latency (`promptlab.stats._core.QUANTILE_METHOD`) of the calls made in the run — cached answers
variant_p95_s,      left out, the rule `Results.latency` follows too —, the variant's, and the difference
p95_diff_s
baseline_error_rate share of calls with an error, the variant's, and the difference
variant_error_rate,
error_rate_diff
=================== ==========================================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import StatsError
from ..evaluation._summaries import live_latency
from . import _core as stats
from . import _planning as planning

METRICS = ("passed", "score")
VERDICTS = ("better", "worse", "no detectable difference", "borderline")
POWER = 0.8
LARGE_N_RESAMPLES = 2000
"""Bootstrap resamples above `promptlab.stats._core.BCA_MAX_N` cases (percentile method): the Monte Carlo error of
the interval's ends is then ~0.06 SE, against ~0.03 SE at 9,999, for a fifth of the time."""
REQUIRED = ("case_id", "variant", "model", "repeat")
STAT_COLUMNS = ["n", "cases", "n_dropped", "baseline_mean", "variant_mean", "diff", "ci_low", "ci_high",
                "ci_level", "ci_low_unadj", "ci_high_unadj", "p_value", "p_exact", "p_adj", "b", "c",
                "correlation", "verdict", "mde", "power_note", "method", "note"]
GUARD_COLUMNS = ["baseline_cost_usd", "variant_cost_usd", "cost_diff_usd", "baseline_p95_s", "variant_p95_s",
                 "p95_diff_s", "baseline_error_rate", "variant_error_rate", "error_rate_diff"]
COLUMNS = ["variant", "baseline", "model", "metric", *STAT_COLUMNS, *GUARD_COLUMNS]
"""Columns of `Comparison.df` (`Comparison.by_category` adds ``category`` after ``model``)."""


# ---- preparing the paired table (vectorised) -------------------------------------------------------------
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


# ---- one pair of arms ------------------------------------------------------------------------------------
def _per_case(a: np.ndarray, b: np.ndarray, cases: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-case means of both arms and the largest number of pairs a case has."""
    codes = np.unique(cases, return_inverse=True)[1]
    counts = np.bincount(codes)
    return np.bincount(codes, a) / counts, np.bincount(codes, b) / counts, int(counts.max())


def _is_binary(x: np.ndarray) -> bool:
    return bool(np.all((x == 0) | (x == 1)))


def _mcnemar_stats(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    both, only_a = int(np.sum((a == 1) & (b == 1))), int(np.sum((a == 1) & (b == 0)))
    only_b = int(np.sum((a == 0) & (b == 1)))
    neither = a.size - both - only_a - only_b
    m = stats.mcnemar(only_a, only_b, a=both, d=neither)
    d = b - a

    def interval(levels: tuple[float, ...]) -> list[tuple[float, float, str]]:
        cis = [stats.paired_proportion_interval(both, only_a, only_b, neither, level) for level in levels]
        return [(ci.low, ci.high, "Newcombe paired CI") for ci in cis]

    return {"diff": m.effect, "p_value": m.p_mid, "p_exact": m.p_exact, "b": only_a, "c": only_b,
            "correlation": stats.pairing_correlation(a, b),
            "omega2": float(d.var(ddof=1)) if d.size > 1 else math.nan,
            "_test": "McNemar mid-p", "_interval": interval}


def _graded_stats(ca: np.ndarray, cb: np.ndarray, metric: str, seed: int, repeats: int) -> dict[str, Any]:
    t = stats.paired_ttest(ca, cb)
    d = cb - ca
    lower, higher = int((d < 0).sum()), int((d > 0).sum())
    over = f" over per-case means of {repeats} repeats" if repeats > 1 else ""
    return {"diff": t.diff, "p_value": t.p_value, "p_exact": stats.sign_test(lower, higher)[0], "b": lower,
            "c": higher, "correlation": t.correlation,
            "omega2": float(d.var(ddof=1)) if d.size > 1 else math.nan,
            "_test": f"{t.method}{over}", "_interval": _bootstrap_interval(ca, cb, seed) if metric == "score"
            else _t_interval(ca, cb)}


def _t_interval(ca: np.ndarray, cb: np.ndarray) -> Any:
    def interval(levels: tuple[float, ...]) -> list[tuple[float, float, str]]:
        tests = [stats.paired_ttest(ca, cb, confidence=level) for level in levels]
        return [(t.ci_low, t.ci_high, "paired t CI") for t in tests]

    return interval


def _bootstrap_interval(ca: np.ndarray, cb: np.ndarray, seed: int) -> Any:
    """The seeded paired bootstrap over cases (in case-id order), drawn once for every level asked."""
    resamples = 9999 if ca.size <= stats.BCA_MAX_N else LARGE_N_RESAMPLES

    def interval(levels: tuple[float, ...]) -> list[tuple[float, float, str]]:
        boots = stats.paired_bootstrap_levels(ca, cb, levels, seed=seed, n_resamples=resamples)
        return [(r.ci_low, r.ci_high, f"seeded paired bootstrap ({r.method}, {resamples}) CI") for r in boots]

    return interval


def _pair_stats(a: np.ndarray, b: np.ndarray, cases: np.ndarray, metric: str, seed: int) -> dict[str, Any]:
    """Every statistic of one variant against the baseline on complete pairs (a, b) with their case codes.

    The interval is left as ``_interval`` (confidence levels → bounds): its level depends on the multiplicity
    family, known only once every variant has its p-value (`_intervals`).
    """
    if a.size == 0:
        return {"n": 0, "cases": 0, "baseline_mean": math.nan, "variant_mean": math.nan, "diff": math.nan,
                "p_value": 1.0, "p_exact": 1.0, "b": 0, "c": 0, "correlation": math.nan, "omega2": math.nan,
                "_test": "none (no complete pairs)", "_interval": None}
    ca, cb, repeats = _per_case(a, b, cases)
    if metric == "passed" and repeats == 1 and _is_binary(a) and _is_binary(b):
        out = _mcnemar_stats(a, b)
    else:
        out = _graded_stats(ca, cb, metric, seed, repeats)
    return {"n": int(a.size), "cases": int(ca.size), "baseline_mean": float(ca.mean()),
            "variant_mean": float(cb.mean()), **out}


def _note(row: dict[str, Any], metric: str) -> str:
    if row["n"] == 0:
        return f"no complete pairs ({row['n_dropped']} dropped): nothing to compare"
    notes = []
    if row["b"] + row["c"] == 0:
        notes.append("no discordant pairs: both arms agree on every case")
    if metric == "passed":
        bound = 100 * stats.zero_event_upper_bound(row["cases"])
        for side in ("baseline", "variant"):
            if row[f"{side}_mean"] == 1.0:
                notes.append(f"{side} passed every case (failure rate ≤ {bound:.1f}%, exact one-sided 95%)")
            elif row[f"{side}_mean"] == 0.0:
                notes.append(f"{side} failed every case (pass rate ≤ {bound:.1f}%, exact one-sided 95%)")
    if row["n_dropped"]:
        notes.append(f"{row['n_dropped']} pairs dropped (no value on one side)")
    return "; ".join(notes)


def _power(row: dict[str, Any], metric: str, alpha: float) -> tuple[float, str]:
    """Smallest difference detectable at 80% power, and the sentence (an add-one floor on ω² for pass/fail
    when no pair disagreed, so perfect agreement does not claim unlimited sensitivity)."""
    n, omega2 = row["cases"], row["omega2"]
    head = f"with n = {n} cases" if row["n"] != row["cases"] else f"with n = {n}"
    if n < 2:
        return math.inf, f"{head} there is too little data for a power estimate"
    if metric == "passed":
        omega2 = max(omega2, 1.0 / n)
    elif omega2 == 0:
        return math.inf, f"{head} every paired difference is equal: no power estimate"
    mde = planning.smallest_detectable_difference(n, omega2, alpha, POWER)
    size = f"{100 * mde:.0f} points" if metric == "passed" else f"{mde:.3g}"
    return mde, f"{head} the smallest difference detectable at {100 * POWER:.0f}% power is {size}"


# ---- groups ----------------------------------------------------------------------------------------------
def _group_codes(p: _Paired, by_category: bool) -> np.ndarray:
    if by_category:
        return p.model * max(1, len(p.categories)) + p.category
    return p.model


def _variant_rows(p: _Paired, ib: int, iv: int, metric: str, seed: int, alpha: float,
                  by_category: bool) -> list[dict[str, Any]]:
    va, vb = p.values[:, ib], p.values[:, iv]
    present = p.present[:, ib] | p.present[:, iv]
    complete = ~np.isnan(va) & ~np.isnan(vb)
    groups = _group_codes(p, by_category)
    rows = []
    for g in sorted(set(groups[p.present[:, ib]].tolist()) & set(groups[p.present[:, iv]].tolist())):
        mask = groups == g
        keep = mask & complete
        row = _pair_stats(va[keep], vb[keep], p.case[keep], metric, seed)
        row["n_dropped"] = int(np.sum(mask & present & ~complete))
        row.update(_labels(p, int(g), by_category), variant=p.variants[iv], baseline=p.variants[ib])
        row["mde"], row["power_note"] = _power(row, metric, alpha)
        row["note"] = _note(row, metric)
        rows.append(row)
    return rows


def _labels(p: _Paired, g: int, by_category: bool) -> dict[str, Any]:
    if not by_category:
        return {"model": p.models[g], "_model": g}
    width = max(1, len(p.categories))
    return {"model": p.models[g // width], "_model": g // width, "category": p.categories[g % width],
            "_category": g % width}


def _shares_model(p: _Paired, ib: int, iv: int) -> bool:
    return bool(set(p.model[p.present[:, ib]].tolist()) & set(p.model[p.present[:, iv]].tolist()))


# ---- guardrails ------------------------------------------------------------------------------------------
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
    p95 = stats.grouped_quantile(rows.latency, gid, 0.95)
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


# ---- assembling ------------------------------------------------------------------------------------------
def _frame(results: Any, metric: str) -> pd.DataFrame:
    frame = getattr(results, "df", results)
    if not isinstance(frame, pd.DataFrame):
        raise StatsError(f"compare() needs a promptlab Results or a results DataFrame; got "
                         f"{type(results).__name__!r}. Pass the object `pl.run(...)` returned.")
    if metric not in METRICS:
        raise StatsError(f"metric={metric!r} is not one of {METRICS!r}; use 'passed' for pass/fail or "
                         "'score' for graded scores.")
    missing = [c for c in (*REQUIRED, metric) if c not in frame]
    if missing:
        raise StatsError(f"the results frame lacks columns {missing!r} (has {list(frame.columns)!r}); pass "
                         "a frame in the promptlab results schema (`Results.df`).")
    return frame


def _variants_of(frame: pd.DataFrame, baseline: str) -> list[str]:
    variants = [str(v) for v in pd.unique(frame["variant"].dropna())]
    if baseline not in variants:
        raise StatsError(f"baseline {baseline!r} is not a variant in these results; the variants are "
                         f"{variants!r}. Pass one of them as baseline=.")
    return variants


def _compare_rows(frame: pd.DataFrame, baseline: str, metric: str, seed: int, alpha: float,
                  by_category: bool) -> tuple[pd.DataFrame, list[str]]:
    paired, rows = _prepare(frame, metric)
    guard = _guard_table(rows, by_category)
    pooled: tuple[_Paired, _GuardTable] | None = None
    ib, tables, messages = paired.variants.index(baseline), [], []
    for iv, name in enumerate(paired.variants):
        if iv == ib:
            continue
        p, g = paired, guard
        if not _shares_model(paired, ib, iv):
            if pooled is None:
                pooled_paired, pooled_rows = _prepare(frame, metric, pool_models=True)
                pooled = pooled_paired, _guard_table(pooled_rows, by_category)
            p, g = pooled
            messages.append(f"variant {name!r} shares no model with baseline {baseline!r}: "
                            "paired across models")
        table = pd.DataFrame(_variant_rows(p, ib, iv, metric, seed, alpha, by_category))
        if not table.empty:
            tables.append(pd.concat([table, _guards(g, table, ib, iv, by_category)], axis=1))
    df = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return df, messages


def _levels(df: pd.DataFrame, family: list[str], alpha: float, by_category: bool) -> pd.Series:
    """The confidence level of each row's displayed interval: the footing of its adjusted p.

    Holm across k variants: the Bonferroni simultaneous level 1 − α/k (an interval that excludes 0 means Holm
    rejects too). Benjamini–Hochberg across m categories with R differences found: Benjamini–Yekutieli's
    false-coverage-rate level 1 − max(R, 1)·α/m (it excludes 0 exactly where BH rejects, for a dual test).
    """
    keys = [df[c] for c in family]
    tested = df["n"] > 0
    k = tested.groupby(keys, sort=False).transform("sum").clip(lower=1)
    if not by_category:
        return 1 - alpha / k
    found = (tested & (df["p_adj"] < alpha)).groupby(keys, sort=False).transform("sum").clip(lower=1)
    return 1 - found * alpha / k


def _intervals(df: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Each row's interval at its family level (``ci_low``, ``ci_high``) and unadjusted at 1 − α."""
    out = {name: [] for name in ("ci_low", "ci_high", "ci_low_unadj", "ci_high_unadj", "method")}
    for interval, level, test in zip(df["_interval"], df["ci_level"], df["_test"], strict=True):
        if interval is None:
            bounds = [(math.nan, math.nan, "")] * 2
        else:
            levels = (float(level), 1 - alpha) if not math.isclose(level, 1 - alpha) else (float(level),)
            bounds = interval(levels)
            bounds = bounds if len(bounds) == 2 else bounds * 2
        (low, high, how), (low_u, high_u, _) = bounds
        for name, value in zip(out, (low, high, low_u, high_u, f"{test}; {how}" if how else test), strict=True):
            out[name].append(value)
    return pd.DataFrame(out, index=df.index)


def _verdicts(df: pd.DataFrame, alpha: float) -> pd.Series:
    """``better`` / ``worse`` when the adjusted test and the displayed interval agree on a difference, ``no
    detectable difference`` when they agree there is none, ``borderline`` when they disagree (the test and the
    interval are different methods, or Holm steps further than Bonferroni) — never a verdict its interval
    contradicts."""
    rejected = df["p_adj"] < alpha
    above, below = df["ci_low"] > 0, df["ci_high"] < 0
    better, worse = rejected & (df["diff"] > 0) & above, rejected & (df["diff"] < 0) & below
    none = ~rejected & ~above & ~below
    return pd.Series(np.where(better, "better", np.where(worse, "worse", np.where(
        none, "no detectable difference", "borderline"))), index=df.index)


def _borderline_note(row: Any, alpha: float, metric: str, adjust: str) -> str:
    interval = f"[{_fmt_diff(row.ci_low, metric)}, {_fmt_diff(row.ci_high, metric)}]"
    test = f"p_adj {row.p_adj:.3g} {'<' if row.p_adj < alpha else '>='} α {alpha:g}"
    side = "includes 0" if row.ci_low <= 0 <= row.ci_high else "excludes 0"
    return (f"borderline: the {adjust}-adjusted test ({test}) and the {100 * row.ci_level:.4g}% interval "
            f"{interval} ({side}) disagree at the margin; not claimed as a difference")


def _finish(df: pd.DataFrame, metric: str, alpha: float, by_category: bool) -> pd.DataFrame:
    columns = COLUMNS if not by_category else [*COLUMNS[:3], "category", *COLUMNS[3:]]
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    df["metric"] = metric
    family = ["variant", "model"] if by_category else ["model"]
    adjust = stats.benjamini_hochberg if by_category else stats.holm
    tested = df["p_value"].where(df["n"] > 0)
    df["p_adj"] = tested.groupby([df[c] for c in family], sort=False).transform(adjust).fillna(1.0)
    df["ci_level"] = _levels(df, family, alpha, by_category)
    df[["ci_low", "ci_high", "ci_low_unadj", "ci_high_unadj", "method"]] = _intervals(df, alpha)
    df["verdict"] = _verdicts(df, alpha)
    name = "BH" if by_category else "Holm"
    for i in df.index[df["verdict"] == "borderline"]:
        note = _borderline_note(df.loc[i], alpha, metric, name)
        df.at[i, "note"] = f"{df.at[i, 'note']}; {note}" if df.at[i, "note"] else note
    for column in ("n", "cases", "n_dropped", "b", "c"):
        df[column] = df[column].astype("int64")
    return df[columns].reset_index(drop=True)


def _run(frame: pd.DataFrame, baseline: str, metric: str, seed: int, alpha: float,
         by_category: bool) -> tuple[pd.DataFrame, list[str]]:
    variants = _variants_of(frame, baseline)
    if len(variants) < 2:
        note = (f"only one variant ({baseline!r}) in the results: nothing to compare against the baseline; "
                "run two or more variants on the same suite.")
        return _finish(pd.DataFrame(), metric, alpha, by_category), [note]
    df, messages = _compare_rows(frame, baseline, metric, seed, alpha, by_category)
    return _finish(df, metric, alpha, by_category), messages


def compare(results: Any, baseline: str = "A", *, metric: str = "passed", seed: int = 0,
            alpha: float = 0.05) -> Comparison:
    """Compare every variant with the baseline, paired by case, with honest statistics.

    Args:
        results: a promptlab `Results` (its ``.df`` is used) or a DataFrame in the results schema.
        baseline: the variant the others are compared with.
        metric: ``"passed"`` (pass rate; McNemar) or ``"score"`` (graded; paired t + paired bootstrap).
        seed: seed of the bootstrap, so the same data give the same intervals.
        alpha: the level a verdict needs (on the Holm-adjusted p and the simultaneous interval).

    Returns:
        A `Comparison`; its ``df`` has the columns in `COLUMNS` (see the module docstring).

    Raises:
        StatsError: an unknown metric, a frame without the schema's columns, or a baseline that is not among
            the variants (the message lists them). One variant only gives an empty comparison with a message.
    """
    if not 0 < alpha < 1:
        raise StatsError(f"alpha={alpha!r} must be between 0 and 1, e.g. 0.05.")
    frame = _frame(results, metric)
    df, messages = _run(frame, baseline, metric, seed, alpha, by_category=False)
    return Comparison(df, baseline=baseline, metric=metric, alpha=alpha, seed=seed, messages=messages,
                      source=frame)


class Comparison:
    """Variants against a baseline: a tidy DataFrame (``df``, columns in `COLUMNS`) that displays itself.

    Attributes:
        df: one row per variant × model (× category for `by_category`).
        baseline: the baseline variant.
        metric: ``"passed"`` or ``"score"``.
        alpha: the verdicts' level.
        seed: the bootstrap seed.
        messages: notes about the comparison as a whole (one variant only, pairing across models …).
        level: ``"variant"`` or ``"category"``.
        source: the results rows the comparison was computed from (None when built from a table alone).
    """

    def __init__(self, df: pd.DataFrame, *, baseline: str, metric: str, alpha: float = 0.05, seed: int = 0,
                 messages: list[str] | None = None, source: pd.DataFrame | None = None,
                 level: str = "variant"):
        self.df = df
        self.baseline = baseline
        self.metric = metric
        self.alpha = alpha
        self.seed = seed
        self.messages = list(messages or [])
        self.level = level
        self.source = source

    def by_category(self) -> Comparison:
        """The same comparison within each case category, Benjamini–Hochberg-adjusted across categories."""
        if self.source is None:
            raise StatsError("this Comparison keeps no results rows to slice by category; build it with "
                             "compare(results, ...).")
        df, messages = _run(self.source, self.baseline, self.metric, self.seed, self.alpha, by_category=True)
        return Comparison(df, baseline=self.baseline, metric=self.metric, alpha=self.alpha, seed=self.seed,
                          messages=messages, source=self.source, level="category")

    @property
    def verdicts(self) -> dict[str, str]:
        """``{variant: verdict}`` (``{"variant @ model": verdict}`` when there are several models)."""
        several = self.df["model"].nunique() > 1 if len(self.df) else False
        keys = self.df["variant"] + (" @ " + self.df["model"] if several else "")
        return dict(zip(keys, self.df["verdict"], strict=True))

    def summary_text(self) -> str:
        """Plain-text lines, one per row, then the messages (for terminals and CI logs)."""
        lines = [f"{self.metric} vs baseline {self.baseline!r} ({self.level} level, alpha {self.alpha}; "
                 f"{self.interval_footing}):"]
        lines += [_row_text(row, self.metric) for row in self.df.to_dict("records")]
        lines += [f"note: {m}" for m in self.messages]
        return "\n".join(lines)

    @property
    def interval_footing(self) -> str:
        """What the displayed intervals are, in words: the footing of ``p_adj`` and the verdicts."""
        if self.level == "category":
            return ("intervals false-coverage-adjusted across categories (Benjamini–Yekutieli, the footing of the "
                    "BH-adjusted p)")
        return "intervals simultaneous across the variants on each model (Bonferroni, the footing of Holm's p)"

    def __len__(self) -> int:
        return len(self.df)

    def __repr__(self) -> str:
        if self.df.empty:
            return f"<Comparison vs {self.baseline!r} on {self.metric}: empty — {'; '.join(self.messages)}>"
        parts = [f"{r['variant']}{'/' + str(r['category']) if 'category' in r else ''} {r['verdict']} "
                 f"({_fmt_diff(r['diff'], self.metric)}, p_adj {r['p_adj']:.3g})"
                 for r in self.df.to_dict("records")]
        return f"<Comparison vs {self.baseline!r} on {self.metric}: {'; '.join(parts)}>"

    def _repr_html_(self) -> str:
        from ..notebook._display import comparison_html

        return comparison_html(self)


def _fmt_diff(diff: float, metric: str) -> str:
    if diff != diff:
        return "NA"
    return f"{100 * diff:+.1f} points" if metric == "passed" else f"{diff:+.3g}"


def _row_text(row: dict[str, Any], metric: str) -> str:
    where = f" [{row['category']}]" if "category" in row else ""
    ci = f"[{_fmt_diff(row['ci_low'], metric)}, {_fmt_diff(row['ci_high'], metric)}]"
    if row["n"]:
        ci += f" ({_level(row['ci_level'])} CI)"
    p = f"p {row['p_value']:.3g} (exact {row['p_exact']:.3g}, adj {row['p_adj']:.3g})"
    text = (f"  {row['variant']} @ {row['model']}{where}: {row['verdict']}, diff "
            f"{_fmt_diff(row['diff'], metric)} {ci}, {p}, n = {row['n']}, b = {row['b']}, c = {row['c']}; "
            f"{row['power_note']}")
    return text + (f" — {row['note']}" if row["verdict"] == "borderline" else "")


def _level(level: float) -> str:
    """``97.5%`` for 0.975."""
    return f"{100 * level:.4g}%"
