"""`noninferiority`: is a cheaper variant (compressed prompt, smaller model) no worse than the baseline by more
than a stated margin? Paired by case, one-sided, decided by a confidence interval.

The question differs from `promptlab.stats._comparison.compare`: "no detectable difference" there is not evidence of
no loss (a small suite detects only large differences). Here the burden of proof is on the variant:

* H0: diff ≤ −margin (the variant loses at least ``margin``) against H1: diff > −margin, with
  diff = variant − baseline in pass rate (or mean score), paired by case.
* Test at one-sided level α by the (1 − 2α) two-sided interval: **non-inferior when its lower bound is
  above −margin** (α = 0.05 → the 90% interval). The margin is stated in every output.
* Pass/fail with one answer per case: Newcombe's paired hybrid-score interval
  (`promptlab.stats._paired.paired_proportion_interval`) on the table a (both pass), b (only the baseline),
  c (only the variant), d (both fail). With repeats, or graded scores: the paired t interval
  (`promptlab.stats._paired.paired_ttest`) over per-case means (answers to one case are not independent).
* Verdicts: ``non-inferior`` (lower bound > −margin), ``inferior`` (upper bound < −margin: it loses more
  than the margin), ``inconclusive`` (the interval straddles −margin: run more cases), ``no pairs``.

Columns of `NonInferiority.df` (`COLUMNS`):

====================== =====================================================================================
variant, baseline      the arms; model: the model both answered on (pooled ids when they share none)
metric                 ``passed`` or ``score``
n, cases, n_dropped    complete pairs, distinct cases among them, pairs dropped (no value on one side)
baseline_mean,         the arms' pass rates (mean scores) over the complete pairs, and diff = variant − baseline
variant_mean, diff
ci_low, ci_high        the (1 − 2α) two-sided interval for diff; ``confidence`` says which
margin, alpha          the non-inferiority margin (same units as diff) and the one-sided level
noninferior            ci_low > −margin
verdict                see above
b, c                   pairs only the baseline passed (b) / only the variant passed (c); for scores, cases
                       where the variant was lower (b) / higher (c)
method                 the interval used
baseline_input_tokens, mean input tokens per answered call (as the provider reported), and the share the
variant_input_tokens,  variant saves (percent; negative when it uses more)
input_tokens_saved_pct
baseline_cost_usd,     mean USD per answered call (NaN when unpriced), and the share the variant saves
variant_cost_usd,
cost_saved_pct
note                   the decision in one sentence, with the margin
====================== =====================================================================================
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import StatsError
from ..stats import _paired as stats

COLUMNS = ["variant", "baseline", "model", "metric", "n", "cases", "n_dropped", "baseline_mean",
           "variant_mean", "diff", "ci_low", "ci_high", "confidence", "margin", "alpha", "noninferior",
           "verdict", "b", "c", "method", "baseline_input_tokens", "variant_input_tokens",
           "input_tokens_saved_pct", "baseline_cost_usd", "variant_cost_usd", "cost_saved_pct", "note"]
"""Columns of `NonInferiority.df` (see the module docstring)."""
VERDICTS = ("non-inferior", "inferior", "inconclusive", "no pairs")
_KEYS = ["model", "case_id", "repeat"]


@dataclass(frozen=True)
class _Interval:
    """The paired estimate of one model: the interval and the counts behind it."""

    n: int
    cases: int
    baseline_mean: float
    variant_mean: float
    diff: float
    ci_low: float
    ci_high: float
    b: int
    c: int
    method: str


# ---- checking and pairing ----------------------------------------------------------------------------------
def _check(frame: Any, baseline: str, variant: str, margin: float, alpha: float, metric: str) -> pd.DataFrame:
    frame = getattr(frame, "df", frame)
    if not isinstance(frame, pd.DataFrame):
        raise StatsError(f"noninferiority() needs a promptlab Results or a results DataFrame; got "
                         f"{type(frame).__name__!r}. Pass what `pl.run(...)` returned.")
    if metric not in ("passed", "score"):
        raise StatsError(f"metric={metric!r} is not 'passed' or 'score'.")
    missing = [c for c in ("variant", "case_id", "model", "repeat", metric) if c not in frame]
    if missing:
        raise StatsError(f"the results frame lacks columns {missing!r}; pass `Results.df` (the results schema).")
    if not (margin > 0 and (metric == "score" or margin < 1)):
        raise StatsError(f"margin={margin!r} must be > 0 (and < 1 for pass rates), e.g. 0.02 for 2 points.")
    if not 0 < alpha < 0.5:
        raise StatsError(f"alpha={alpha!r} is the one-sided level and must be in (0, 0.5), e.g. 0.05.")
    variants = [str(v) for v in pd.unique(frame["variant"].dropna())]
    for name, value in (("baseline", baseline), ("variant", variant)):
        if value not in variants:
            raise StatsError(f"{name} {value!r} is not a variant in these results; the variants are "
                             f"{variants!r}. Pass one of them as {name}=.")
    return frame


def _metric(frame: pd.DataFrame, metric: str) -> pd.Series:
    if metric == "passed":
        values = frame["passed"].astype("boolean").to_numpy(dtype=float, na_value=np.nan)
    else:
        values = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return pd.Series(values, index=frame.index)


def _pairs(frame: pd.DataFrame, baseline: str, variant: str, metric: str) -> pd.DataFrame:
    """One row per (model, case, repeat) with a column per arm (NaN when missing); models pooled when the
    two arms share none (each prompt ran on its own pinned model)."""
    both = frame[frame["variant"].isin([baseline, variant])].copy()
    both["_value"] = _metric(both, metric)
    models = [set(both.loc[both["variant"] == v, "model"].dropna()) for v in (baseline, variant)]
    if not models[0] & models[1]:
        both["model"] = " + ".join(sorted(models[0] | models[1]))
    wide = both.groupby([*_KEYS, "variant"], dropna=False)["_value"].mean().unstack("variant")
    return wide.reindex(columns=[baseline, variant]).reset_index()


# ---- the interval ------------------------------------------------------------------------------------------
def _interval(pairs: pd.DataFrame, baseline: str, variant: str, confidence: float) -> _Interval:
    x, y = pairs[baseline].to_numpy(float), pairs[variant].to_numpy(float)
    per_case = pairs.groupby("case_id")[[baseline, variant]].mean()
    if _binary(x) and _binary(y) and len(per_case) == len(pairs):
        return _newcombe(x, y, confidence)
    ca, cb = per_case[baseline].to_numpy(float), per_case[variant].to_numpy(float)
    t = stats.paired_ttest(ca, cb, confidence=confidence)
    d = cb - ca
    over = " over per-case means" if len(per_case) < len(pairs) else ""
    return _Interval(len(pairs), len(per_case), float(ca.mean()), float(cb.mean()), t.diff, t.ci_low,
                     t.ci_high, int((d < 0).sum()), int((d > 0).sum()),
                     f"{t.method}{over}; {100 * confidence:g}% t interval")


def _binary(values: np.ndarray) -> bool:
    return bool(np.all((values == 0) | (values == 1)))


def _newcombe(x: np.ndarray, y: np.ndarray, confidence: float) -> _Interval:
    a, b = int(np.sum((x == 1) & (y == 1))), int(np.sum((x == 1) & (y == 0)))
    c, d = int(np.sum((x == 0) & (y == 1))), int(np.sum((x == 0) & (y == 0)))
    ci = stats.paired_proportion_interval(a, b, c, d, confidence=confidence)
    return _Interval(x.size, x.size, float(x.mean()), float(y.mean()), ci.estimate, ci.low, ci.high, b, c,
                     f"Newcombe paired hybrid-score {100 * confidence:g}% interval")


def _verdict(row: _Interval, margin: float) -> str:
    if row.n == 0:
        return "no pairs"
    if row.ci_low > -margin:
        return "non-inferior"
    return "inferior" if row.ci_high < -margin else "inconclusive"


def _sentence(r: dict[str, Any]) -> str:
    fmt = (lambda v: f"{100 * v:+.1f} points") if r["metric"] == "passed" else (lambda v: f"{v:+.3g}")
    margin = f"{100 * r['margin']:.1f} points" if r["metric"] == "passed" else f"{r['margin']:g}"
    if r["verdict"] == "no pairs":
        return f"no complete pairs of {r['variant']!r} and {r['baseline']!r}: nothing to decide"
    bound = (f"the {100 * r['confidence']:g}% lower bound {fmt(r['ci_low'])}"
             f" {'>' if r['noninferior'] else '≤'} −{margin} (margin), one-sided α = {r['alpha']:g}")
    head = {"non-inferior": "non-inferior to", "inferior": "worse by more than the margin than",
            "inconclusive": "not shown non-inferior to"}[r["verdict"]]
    tail = {"inferior": f"; even the upper bound {fmt(r['ci_high'])} is below −{margin}",
            "inconclusive": "; run more cases or accept a wider margin"}.get(r["verdict"], "")
    return f"{r['variant']!r} is {head} {r['baseline']!r} (diff {fmt(r['diff'])}): {bound}{tail}"


# ---- guardrails: tokens and cost ---------------------------------------------------------------------------
def _mean_of(frame: pd.DataFrame, arm: str, model: str, column: str) -> float:
    rows = frame[(frame["variant"] == arm) & frame["output"].notna()] if "output" in frame else frame
    if " + " not in model:
        rows = rows[rows["model"] == model]
    if column not in rows or rows.empty:
        return math.nan
    values = pd.to_numeric(rows[column], errors="coerce").astype(float)
    return math.nan if values.isna().any() else float(values.mean())


def _saved_pct(before: float, after: float) -> float:
    return 100 * (before - after) / before if before and not math.isnan(before) else math.nan


def _guards(frame: pd.DataFrame, baseline: str, variant: str, model: str) -> dict[str, float]:
    tokens = [_mean_of(frame, arm, model, "input_tokens") for arm in (baseline, variant)]
    cost = [_mean_of(frame, arm, model, "cost_usd") for arm in (baseline, variant)]
    return {"baseline_input_tokens": tokens[0], "variant_input_tokens": tokens[1],
            "input_tokens_saved_pct": _saved_pct(*tokens), "baseline_cost_usd": cost[0],
            "variant_cost_usd": cost[1], "cost_saved_pct": _saved_pct(*cost)}


# ---- the public face ---------------------------------------------------------------------------------------
def noninferiority(results: Any, baseline: str = "A", variant: str = "B", margin: float = 0.02, *,
                   alpha: float = 0.05, metric: str = "passed") -> NonInferiority:
    """Paired non-inferiority test of ``variant`` against ``baseline`` on the same cases, per model.

    Args:
        results: a promptlab `Results` (or its ``df``) in which both variants answered the same suite.
        baseline: the reference variant (the original prompt, the current model).
        variant: the cheaper variant that must not lose more than ``margin``.
        margin: the largest loss you accept, in the metric's units: 0.02 = 2 points of pass rate.
        alpha: one-sided level; the decision uses the (1 − 2α) two-sided interval (0.05 → 90%).
        metric: ``"passed"`` (pass rate) or ``"score"`` (mean graded score).

    Returns:
        A `NonInferiority`; its ``df`` has one row per model with the columns in `COLUMNS`.

    Raises:
        StatsError: a bad margin or alpha, an unknown variant (the message lists them), or a frame that is not
            in the results schema.
    """
    frame = _check(results, baseline, variant, margin, alpha, metric)
    confidence = 1 - 2 * alpha
    pairs = _pairs(frame, baseline, variant, metric)
    rows = []
    for model, group in pairs.groupby("model", sort=False, dropna=False):
        complete = group.dropna(subset=[baseline, variant])
        estimate = _interval(complete, baseline, variant, confidence) if len(complete) else _empty()
        row = {"variant": variant, "baseline": baseline, "model": str(model), "metric": metric,
               **asdict(estimate), "n_dropped": len(group) - len(complete), "confidence": confidence,
               "margin": margin, "alpha": alpha}
        row["verdict"] = _verdict(estimate, margin)
        row["noninferior"] = row["verdict"] == "non-inferior"
        rows.append(row | _guards(frame, baseline, variant, str(model)))
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "note"])
    df["note"] = [_sentence(r) for r in df.to_dict("records")]
    return NonInferiority(df[COLUMNS], baseline=baseline, variant=variant, margin=margin, alpha=alpha,
                          metric=metric)


def _empty() -> _Interval:
    return _Interval(0, 0, math.nan, math.nan, math.nan, math.nan, math.nan, 0, 0, "none (no complete pairs)")


class NonInferiority:
    """The outcome of `noninferiority`: a tidy DataFrame (``df``) that displays itself.

    Attributes:
        df: one row per model (columns: `COLUMNS`).
        baseline, variant: the arms.
        margin: the non-inferiority margin, in the metric's units.
        alpha: the one-sided level (the interval is 1 − 2α).
        metric: ``"passed"`` or ``"score"``.
    """

    def __init__(self, df: pd.DataFrame, *, baseline: str, variant: str, margin: float, alpha: float,
                 metric: str):
        self.df = df
        self.baseline = baseline
        self.variant = variant
        self.margin = margin
        self.alpha = alpha
        self.metric = metric

    @property
    def noninferior(self) -> bool:
        """True when the variant is non-inferior on every model compared (False with no pairs at all)."""
        return bool(len(self.df)) and bool(self.df["noninferior"].all())

    def summary_text(self) -> str:
        """One line per model with the decision and the margin (for terminals and CI logs)."""
        head = (f"non-inferiority of {self.variant!r} vs {self.baseline!r} on {self.metric}, margin "
                f"{self._margin_text()}, one-sided α = {self.alpha:g}:")
        return "\n".join([head, *(f"  {r.model}: {r.note}" for r in self.df.itertuples())])

    def _margin_text(self) -> str:
        return f"{100 * self.margin:.1f} points" if self.metric == "passed" else f"{self.margin:g}"

    def __repr__(self) -> str:
        parts = "; ".join(f"{r.model}: {r.verdict} (lower bound {r.ci_low:+.3f})" for r in self.df.itertuples())
        return (f"<NonInferiority {self.variant!r} vs {self.baseline!r}, margin {self._margin_text()}: "
                f"{parts or 'no models'}>")

    def _repr_html_(self) -> str:
        from .._display import noninferiority_html

        return noninferiority_html(self)
