"""Multiplicity across a comparison's family: each row's displayed interval at the level its adjusted p stands
on (Bonferroni for Holm, Benjamini–Yekutieli for BH), the unadjusted interval beside it, and the verdicts the
adjusted test and the interval agree on (``borderline`` where they do not).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


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


def _fmt_diff(diff: float, metric: str) -> str:
    if diff != diff:
        return "NA"
    return f"{100 * diff:+.1f} points" if metric == "passed" else f"{diff:+.3g}"
