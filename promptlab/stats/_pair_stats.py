"""The per-pair computation behind `compare`: every statistic of one variant against the baseline on one model
(or category) — McNemar or paired t, the interval left open for its family level, the notes and the power
sentence — one row per group of the paired table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _planning as planning
from ._intervals import zero_event_upper_bound
from ._paired import (
    BCA_MAX_N,
    mcnemar,
    paired_bootstrap_levels,
    paired_proportion_interval,
    paired_ttest,
    pairing_correlation,
    sign_test,
)
from ._paired_table import _Paired

POWER = 0.8
LARGE_N_RESAMPLES = 2000
"""Bootstrap resamples above `promptlab.stats._paired.BCA_MAX_N` cases (percentile method): the Monte Carlo error of
the interval's ends is then ~0.06 SE, against ~0.03 SE at 9,999, for a fifth of the time."""


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
    m = mcnemar(only_a, only_b, a=both, d=neither)
    d = b - a

    def interval(levels: tuple[float, ...]) -> list[tuple[float, float, str]]:
        cis = [paired_proportion_interval(both, only_a, only_b, neither, level) for level in levels]
        return [(ci.low, ci.high, "Newcombe paired CI") for ci in cis]

    return {"diff": m.effect, "p_value": m.p_mid, "p_exact": m.p_exact, "b": only_a, "c": only_b,
            "correlation": pairing_correlation(a, b),
            "omega2": float(d.var(ddof=1)) if d.size > 1 else math.nan,
            "_test": "McNemar mid-p", "_interval": interval}


def _graded_stats(ca: np.ndarray, cb: np.ndarray, metric: str, seed: int, repeats: int) -> dict[str, Any]:
    t = paired_ttest(ca, cb)
    d = cb - ca
    lower, higher = int((d < 0).sum()), int((d > 0).sum())
    over = f" over per-case means of {repeats} repeats" if repeats > 1 else ""
    return {"diff": t.diff, "p_value": t.p_value, "p_exact": sign_test(lower, higher)[0], "b": lower,
            "c": higher, "correlation": t.correlation,
            "omega2": float(d.var(ddof=1)) if d.size > 1 else math.nan,
            "_test": f"{t.method}{over}", "_interval": _bootstrap_interval(ca, cb, seed) if metric == "score"
            else _t_interval(ca, cb)}


def _t_interval(ca: np.ndarray, cb: np.ndarray) -> Any:
    def interval(levels: tuple[float, ...]) -> list[tuple[float, float, str]]:
        tests = [paired_ttest(ca, cb, confidence=level) for level in levels]
        return [(t.ci_low, t.ci_high, "paired t CI") for t in tests]

    return interval


def _bootstrap_interval(ca: np.ndarray, cb: np.ndarray, seed: int) -> Any:
    """The seeded paired bootstrap over cases (in case-id order), drawn once for every level asked."""
    resamples = 9999 if ca.size <= BCA_MAX_N else LARGE_N_RESAMPLES

    def interval(levels: tuple[float, ...]) -> list[tuple[float, float, str]]:
        boots = paired_bootstrap_levels(ca, cb, levels, seed=seed, n_resamples=resamples)
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
        bound = 100 * zero_event_upper_bound(row["cases"])
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
