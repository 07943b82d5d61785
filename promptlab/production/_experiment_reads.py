"""The reads an A/B report shows on request beside its always-valid decision: Bayesian and CUPED-adjusted.

* **Bayesian** (``analyze(bayesian=True)`` or a `promptlab.stats.GaussianPrior`): GrowthBook's Gaussian effect
  model on each challenger's relative lift in success rate over the baseline (`promptlab.stats.bayesian_proportions`):
  chance to win, the credible interval, and the risk (expected loss) of keeping the baseline or shipping the arm.
* **CUPED** (``analyze(cuped=True)`` or a `PrePeriod`): each unit's metric during the experiment adjusted by its
  value before it (`promptlab.production._preperiod`), the absolute and relative effect with t intervals, beside
  the unadjusted ones, and the variance reduction.

Both are fixed-horizon reads: valid when read once, at the planned size. Neither is protected against peeking —
"95% chance to win" watched daily and acted on when first crossed is wrong far more often than 5% of the time.
The report's status comes from the always-valid decision only; these reads never change it.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ..errors import ExperimentError
from ..stats._bayesian import GaussianPrior, bayesian_proportions
from ..stats._cuped import cuped, cuped_bayesian
from ._preperiod import PrePeriod, UnitCovariates, read_covariates
from ._query import EventFilter, Source

BAYESIAN_COLUMNS = ["arm", "baseline_rate", "arm_rate", "lift", "ci_low", "ci_high", "chance_to_win",
                    "risk_baseline", "risk_arm", "prior", "note"]
CUPED_COLUMNS = ["arm", "metric", "baseline_units", "baseline_units_with_pre", "units", "units_with_pre", "theta",
                 "baseline_mean", "arm_mean", "diff", "ci_low", "ci_high", "p_value", "lift", "lift_low", "lift_high",
                 "unadjusted_diff", "unadjusted_low", "unadjusted_high", "variance_reduction", "chance_to_win",
                 "confidence", "note"]
PEEKING = ("fixed-horizon reads: valid once, at the planned size — not protected against peeking (the status "
           "follows the always-valid decision)")


def bayesian_option(value: Any) -> GaussianPrior | None | bool:
    """``bayesian=`` as given: False/None (off), True (flat prior) or a `GaussianPrior` (proper prior)."""
    if value is None or value is False:
        return False
    if value is True or isinstance(value, GaussianPrior):
        return None if value is True else value
    raise ExperimentError(f"bayesian={value!r} is not understood; pass True (GrowthBook's flat prior) or a "
                          "promptlab.stats.GaussianPrior(mean, variance).")


def cuped_option(value: Any) -> PrePeriod | None:
    """``cuped=`` as given: False/None (off), True (`PrePeriod` defaults: success, 14 days) or a `PrePeriod`."""
    if value is None or value is False:
        return None
    if value is True:
        return PrePeriod()
    if isinstance(value, PrePeriod):
        return value
    raise ExperimentError(f"cuped={value!r} is not understood; pass True (success rate per unit, 14 days before "
                          "the start) or promptlab.production.PrePeriod(metric=..., lookback_s=...).")


def bayesian_table(finals: dict[str, tuple[int, int]], challengers: tuple[str, ...], baseline: str,
                   prior: GaussianPrior | None, credibility: float) -> pd.DataFrame:
    """One row per challenger: GrowthBook's read of its success rate's lift over the baseline's.

    ``finals`` maps each arm to (successes, calls with a known success) at the last look.
    """
    rows = []
    for arm in challengers:
        (xa, na), (xb, nb) = finals[baseline], finals[arm]
        read = bayesian_proportions(xa, na, xb, nb, prior=prior, credibility=credibility)
        rows.append([arm, xa / na if na else math.nan, xb / nb if nb else math.nan, read.effect, read.ci_low,
                     read.ci_high, read.chance_to_win, read.risk_control, read.risk_treatment, read.prior, read.note])
    return pd.DataFrame(rows, columns=BAYESIAN_COLUMNS)


def cuped_table(source: Source, filt: EventFilter, challengers: tuple[str, ...], baseline: str,
                options: PrePeriod, confidence: float, prior: GaussianPrior | None | bool) -> pd.DataFrame:
    """One row per challenger: the CUPED-adjusted effect on ``options.metric`` per unit, beside the raw one."""
    data = read_covariates(source, filt, options)
    rows = [_cuped_row(data, arm, baseline, options, confidence, prior) for arm in challengers]
    return pd.DataFrame(rows, columns=CUPED_COLUMNS)


def _cuped_row(data: UnitCovariates, arm: str, baseline: str, options: PrePeriod, confidence: float,
               prior: GaussianPrior | None | bool) -> list[Any]:
    counts = [data.units.get(baseline, 0), data.with_pre.get(baseline, 0), data.units.get(arm, 0),
              data.with_pre.get(arm, 0)]
    a, b = data.arms.get(baseline), data.arms.get(arm)
    nan = math.nan
    if a is None or b is None or a.n < 2 or b.n < 2:
        note = f"needs 2+ units with a {options.metric} value in both arms (units: {counts[0]} and {counts[2]})"
        return [arm, options.metric, *counts, *[nan] * 15, confidence, note]
    res = cuped(a, b, confidence=confidence)
    win = cuped_bayesian(a, b, prior=prior, credibility=confidence).chance_to_win if prior is not False else nan
    notes = [res.note]
    if data.ambiguous:
        notes.append(f"{data.ambiguous} unit(s) seen in more than one arm left out")
    missing = a.n - counts[1] + b.n - counts[3]
    if missing:
        notes.append(f"{missing} unit(s) without a pre-period value given the pooled pre-period mean"
                     + ("" if not math.isnan(data.pre_mean) else " (none had one: no adjustment)"))
    return [arm, options.metric, *counts, res.theta, res.mean_a, res.mean_b, res.diff, res.diff_low,
            res.diff_high, res.p_value, res.lift, res.lift_low, res.lift_high, res.unadjusted_diff,
            res.unadjusted_low, res.unadjusted_high, res.variance_reduction, win, confidence,
            "; ".join(n for n in notes if n)]


def extra_tables(report: Any) -> list[tuple[str, list[str], list[list[str]], str]]:
    """The report's optional reads as (title, headers, text rows, note) for its HTML card."""
    out = []
    base = report.design.baseline
    if report.bayesian is not None and len(report.bayesian):
        rows = [[f"{r.arm} vs {base}", f"{_pct(r.lift, '+.2f')} [{_pct(r.ci_low, '+.2f')}, {_pct(r.ci_high, '+.2f')}]",
                 _pct(r.chance_to_win, ".1f"), _pct(r.risk_baseline, ".3f"), _pct(r.risk_arm, ".3f"), r.note]
                for r in report.bayesian.itertuples()]
        out.append(("Bayesian read: success rate, relative lift (GrowthBook's Gaussian model)",
                    ["comparison", "lift [credible interval]", "chance to win", f"risk of keeping {base}",
                     "risk of shipping the arm", "note"], rows,
                    f"prior: {report.bayesian['prior'].iloc[0]}; {PEEKING}"))
    if report.cuped is not None and len(report.cuped):
        rows = [[f"{r.arm} vs {base}", f"{r.baseline_units_with_pre} of {r.baseline_units} · {r.units_with_pre} of "
                 f"{r.units}", f"{_num(r.diff)} [{_num(r.ci_low)}, "
                 f"{_num(r.ci_high)}]", f"{_pct(r.lift, '+.2f')} [{_pct(r.lift_low, '+.2f')}, "
                 f"{_pct(r.lift_high, '+.2f')}]", f"{_num(r.unadjusted_diff)} [{_num(r.unadjusted_low)}, "
                 f"{_num(r.unadjusted_high)}]", _pct(r.variance_reduction, ".0f"), r.note]
                for r in report.cuped.itertuples()]
        metric = report.cuped["metric"].iloc[0]
        out.append((f"CUPED-adjusted read: {metric} per unit, adjusted by its pre-period value",
                    ["comparison", f"units with pre-period ({base} · arm)", "difference [CI]", "relative [CI]",
                     "unadjusted difference [CI]", "variance removed", "note"], rows,
                    f"{100 * report.cuped['confidence'].iloc[0]:.4g}% t intervals; {PEEKING}"))
    return out


def _pct(value: float, spec: str) -> str:
    return "NA" if value is None or math.isnan(value) else f"{format(100 * value, spec)}%"


def _num(value: float) -> str:
    return "NA" if value is None or math.isnan(value) else f"{value:+.4g}"
