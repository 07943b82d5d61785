"""The relative lift of one arm over another, (mean_B − mean_A)/mean_A, with its delta-method interval.

Owns the delta-method variance of a ratio of two independent means (or proportions) and the Welch–
Satterthwaite degrees of freedom that go with it. The fixed-horizon test and interval follow GrowthBook's
frequentist engine (gbstats ``TwoSidedTTest`` with ``difference_type="relative"``), so the numbers are the
ones a GrowthBook user sees::

    lift  = (m_B − m_A) / m_A
    Var   = v_B / (m_A² n_B) + v_A m_B² / (m_A⁴ n_A)          (first-order Taylor expansion of m_B/m_A)
    df    = (v_A/n_A + v_B/n_B)² / ((v_A/n_A)²/(n_A − 1) + (v_B/n_B)²/(n_B − 1))
    CI    = lift ± t_{df, 1−α/2} · sqrt(Var)

``v`` is the per-unit variance (for a proportion p, p(1 − p)). The Bayesian read (`promptlab.stats._bayesian`)
and CUPED (`promptlab.stats._cuped`) reuse the variance; "methods" reuses the interval for means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as st

from ..errors import StatsError
from ._checks import _check_confidence
from ._intervals import Interval


@dataclass(frozen=True)
class LiftInterval(Interval):
    """A relative lift (B over A) with its delta-method interval and test.

    ``estimate``, ``low`` and ``high`` are fractions (0.05 = +5%); all are NaN when the baseline mean is 0 (a
    lift over nothing is unknown, see ``note``).

    Attributes:
        se: the delta-method standard error of the lift.
        df: Welch–Satterthwaite degrees of freedom of the t interval (inf when neither arm varies).
        p_value: two-sided p of "the lift is 0" (t test on the lift, as gbstats reports it).
        absolute: the absolute difference mean_B − mean_A.
        note: why a value is NA, empty otherwise.
    """

    se: float = math.nan
    df: float = math.nan
    p_value: float = math.nan
    absolute: float = math.nan
    note: str = ""


def relative_variance(mean_c: float, var_c: float, n_c: float, mean_t: float, var_t: float,
                      n_t: float) -> float:
    """Delta-method variance of mean_t/mean_c − 1 for two independent arms (per-unit variances ``var_*``).

    NaN when the control mean is 0 (the ratio has no first-order expansion there).
    """
    if mean_c == 0:
        return math.nan
    ratio = mean_t / mean_c  # divided step by step: mean_c⁴ underflows to 0 for tiny (valid) means
    return (var_t / n_t + var_c * ratio * ratio / n_c) / mean_c / mean_c


def welch_df(var_c: float, n_c: float, var_t: float, n_t: float) -> float:
    """Welch–Satterthwaite degrees of freedom; inf when neither arm varies (the t becomes a z)."""
    a, b = var_c / n_c, var_t / n_t
    denominator = a ** 2 / (n_c - 1) + b ** 2 / (n_t - 1)
    return math.inf if denominator == 0 else (a + b) ** 2 / denominator


def _check_arm(name: str, mean: float, var: float, n: float) -> None:
    if not all(math.isfinite(x) for x in (mean, var, n)):
        raise StatsError(f"arm {name} needs finite mean, variance and n; got mean={mean!r}, var={var!r}, "
                         f"n={n!r}. Drop NaN rows before summarising the arm.")
    if n < 2:
        raise StatsError(f"relative_lift needs at least 2 units in arm {name}; got n={n!r}. Collect more data "
                         "before reading the lift.")
    if var < 0:
        raise StatsError(f"arm {name} has a negative variance var={var!r}; pass the per-unit variance "
                         "(for a proportion p, p·(1 − p)).")


def relative_lift(mean_c: float, var_c: float, n_c: float, mean_t: float, var_t: float, n_t: float, *,
                  confidence: float = 0.95) -> LiftInterval:
    """Relative lift of the treatment over the control, (mean_t − mean_c)/mean_c, with a delta-method interval.

    Matches gbstats 0.8.0 ``TwoSidedTTest(stat_a, stat_b, FrequentistConfig(difference_type="relative"))``:
    the t interval with Welch–Satterthwaite degrees of freedom. A baseline mean of 0 gives NaN throughout
    (with a ``note``), not an error: the lift over nothing is unknown.

    Args:
        mean_c, var_c, n_c: control mean, per-unit variance (ddof 1 for means; p(1 − p) for a rate) and units.
        mean_t, var_t, n_t: the same for the treatment.
        confidence: coverage of the two-sided interval.

    Example: 200/1000 vs 240/1000 gives +20% [+0.08%, +39.9%], p 0.049.
    """
    _check_confidence(confidence)
    _check_arm("control", mean_c, var_c, n_c)
    _check_arm("treatment", mean_t, var_t, n_t)
    absolute = mean_t - mean_c
    df = welch_df(var_c, n_c, var_t, n_t)
    method = "delta method (welch t)"
    if mean_c == 0:
        return LiftInterval(math.nan, math.nan, math.nan, confidence, method, df=df, absolute=absolute,
                            note=f"the control mean is 0 (mean_c={mean_c!r}): a relative lift over 0 is unknown")
    lift = absolute / mean_c
    variance = relative_variance(mean_c, var_c, n_c, mean_t, var_t, n_t)
    low, high, p = t_interval(lift, variance, df, confidence)
    return LiftInterval(lift, low, high, confidence, method, se=math.sqrt(variance), df=df, p_value=p,
                        absolute=absolute)


def t_interval(estimate: float, variance: float, df: float, confidence: float) -> tuple[float, float, float]:
    """(low, high, two-sided p of "the effect is 0") of a t interval ``estimate ± t_{df}·sqrt(variance)``.

    No variance means the estimate is known exactly: a zero-width interval, and p 0 (or 1 for an estimate of 0).
    """
    if variance == 0:
        return estimate, estimate, float(estimate == 0)
    se = math.sqrt(variance)
    half = float(st.t.ppf(0.5 + confidence / 2, df)) * se
    return estimate - half, estimate + half, float(2 * st.t.sf(abs(estimate) / se, df))
