"""Intervals for proportions: Wilson (whole or effective counts; the default), the intervals users ask for by
name (Jeffreys, Clopper–Pearson, Agresti–Coull), the exact zero-event bound, Newcombe's interval for two
independent proportions, and the pass rate over cases answered several times.

The paired (same cases) Newcombe interval lives with McNemar in `promptlab.stats._paired`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from ..errors import StatsError
from ._checks import _check_confidence, _check_counts, _z
from ._means import MeanSE, case_mean_se


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval.

    Attributes:
        estimate: the point estimate.
        low: lower bound.
        high: upper bound.
        confidence: the coverage asked for (0.95 = 95%).
        method: how the interval was made (``"wilson"``, ``"newcombe"``, ``"clt"`` …).
    """

    estimate: float
    low: float
    high: float
    confidence: float
    method: str


@dataclass(frozen=True)
class ProportionInterval(Interval):
    """A Wilson interval for a proportion, with the exact bound for zero-event claims.

    Attributes:
        successes: events counted.
        n: trials.
        zero_event_bound: when nothing (or everything) happened, the exact one-sided upper bound
            ``1 − (1 − confidence)**(1/n)`` on the rate of the event never seen (failures when all passed,
            successes when none did); None otherwise.
    """

    successes: int = 0
    n: int = 0
    zero_event_bound: float | None = None

    @property
    def note(self) -> str:
        """A sentence for zero-event claims; empty otherwise."""
        if self.zero_event_bound is None:
            return ""
        event = "failure" if self.successes == self.n else "success"
        plural = "failures" if event == "failure" else "successes"
        return (f"0 {plural} in {self.n}: the {event} rate is at most {100 * self.zero_event_bound:.1f}% "
                f"(exact one-sided {100 * self.confidence:.0f}% bound)")


@dataclass(frozen=True)
class CaseProportion(MeanSE):
    """A pass rate over cases answered several times (`case_proportion_interval`).

    Attributes:
        calls: answers counted (``mean`` is passes / calls).
        n_eff: the effective sample size of the Wilson floor, between ``n`` (cases) and ``calls``.
    """

    calls: int = 0
    n_eff: float = math.nan


def zero_event_upper_bound(n: int, confidence: float = 0.95) -> float:
    """Exact one-sided upper bound on a rate when 0 events were seen in ``n`` trials: ``1 − α**(1/n)``.

    With 0 failures in 20 cases the failure rate is at most 13.9% at 95% (the "rule of three" is its
    approximation 3/n). Returns 1.0 for n = 0 (nothing is known).
    """
    _check_confidence(confidence)
    if n <= 0:
        return 1.0
    return float(1 - (1 - confidence) ** (1 / n))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> ProportionInterval:
    """Wilson score interval for a proportion (scipy ``binomtest(...).proportion_ci(method="wilson")``).

    Unlike the Wald interval it stays informative at 0/n and n/n. With n = 0 the estimate is NaN and the
    interval is [0, 1] (no information). When all trials failed or all passed, ``zero_event_bound`` also
    carries the exact one-sided bound of `zero_event_upper_bound`.

    Args:
        successes: events (passes) counted.
        n: trials.
        confidence: coverage, default 0.95.
    """
    _check_counts(successes, n)
    _check_confidence(confidence)
    if n == 0:
        return ProportionInterval(math.nan, 0.0, 1.0, confidence, "wilson", 0, 0, None)
    ci = st.binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    bound = zero_event_upper_bound(n, confidence) if successes in (0, n) else None
    return ProportionInterval(successes / n, float(ci.low), float(ci.high), confidence, "wilson",
                              int(successes), int(n), bound)


PROPORTION_METHODS = ("wilson", "jeffreys", "clopper-pearson", "agresti-coull")
"""The intervals `proportion_interval` makes; Wilson is the default everywhere in promptlab."""


def _beta_bounds(successes: int, n: int, alpha: float, jeffreys: bool) -> tuple[float, float]:
    """Beta-quantile bounds: Jeffreys (the Beta(½, ½)-prior posterior's equal tails) or Clopper–Pearson (the
    exact tail inversion: Beta(x, n − x + 1) below, Beta(x + 1, n − x) above). The bound is 0 at 0 events and
    1 at n, where the Clopper–Pearson quantile is undefined and Jeffreys' would needlessly leave 0 out (Brown,
    Cai & DasGupta 2001)."""
    x = successes
    lower_shape = (x + 0.5, n - x + 0.5) if jeffreys else (x, n - x + 1)
    upper_shape = (x + 0.5, n - x + 0.5) if jeffreys else (x + 1, n - x)
    low = 0.0 if x == 0 else float(st.beta.ppf(alpha / 2, *lower_shape))
    high = 1.0 if x == n else float(st.beta.isf(alpha / 2, *upper_shape))
    return low, high


def _agresti_coull(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Add z²/2 successes and z²/2 failures, then Wald: p̃ ± z·sqrt(p̃(1 − p̃)/ñ), clipped to [0, 1]."""
    z = _z(confidence)
    n_tilde = n + z * z
    p_tilde = (successes + z * z / 2) / n_tilde
    half = z * math.sqrt(p_tilde * (1 - p_tilde) / n_tilde)
    return max(0.0, p_tilde - half), min(1.0, p_tilde + half)


def proportion_interval(successes: int, n: int, confidence: float = 0.95, *,
                        method: str = "wilson") -> ProportionInterval:
    """A proportion with the interval asked for by name (Wilson stays promptlab's default).

    Methods (references in docs/statistics.md):

    * ``"wilson"`` — `wilson_interval`.
    * ``"jeffreys"`` — the equal-tailed Beta(x + ½, n − x + ½) interval (Brown, Cai & DasGupta 2001), with the
      lower bound 0 at x = 0 and the upper bound 1 at x = n, as they recommend.
    * ``"clopper-pearson"`` — the exact interval (Clopper & Pearson 1934): Beta(x, n − x + 1) and
      Beta(x + 1, n − x) quantiles; conservative (coverage at least the nominal).
    * ``"agresti-coull"`` — add z²/2 successes and failures, then Wald (Agresti & Coull 1998).

    Each equals statsmodels ``proportion_confint(x, n, alpha=1 − confidence, method=...)`` (``"jeffreys"``,
    ``"beta"``, ``"agresti_coull"``). With n = 0 the estimate is NaN and the interval [0, 1]. At 0 or n
    events ``zero_event_bound`` carries the exact one-sided bound of `zero_event_upper_bound`.
    """
    if method not in PROPORTION_METHODS:
        raise StatsError(f"method={method!r} is not one of {PROPORTION_METHODS!r}; Wilson is the default.")
    if method == "wilson":
        return wilson_interval(successes, n, confidence)
    _check_counts(successes, n)
    _check_confidence(confidence)
    if n == 0:
        return ProportionInterval(math.nan, 0.0, 1.0, confidence, method, 0, 0, None)
    x, n = int(successes), int(n)
    if method == "agresti-coull":
        low, high = _agresti_coull(x, n, confidence)
    else:
        low, high = _beta_bounds(x, n, 1 - confidence, jeffreys=method == "jeffreys")
    bound = zero_event_upper_bound(n, confidence) if x in (0, n) else None
    return ProportionInterval(x / n, low, high, confidence, method, x, n, bound)


def newcombe_interval(x_a: int, n_a: int, x_b: int, n_b: int, confidence: float = 0.95) -> Interval:
    """Newcombe's hybrid score interval for p_B − p_A, two independent proportions (1998, method 10).

    Built from the two Wilson intervals ("square and add"); good coverage even at 0 or n events.
    Reference: ``statsmodels.stats.proportion.confint_proportions_2indep(x_b, n_b, x_a, n_a,
    method="newcomb")``.
    """
    if n_a == 0 or n_b == 0:
        raise StatsError(f"newcombe_interval needs trials in both arms; got n_a={n_a!r}, n_b={n_b!r}.")
    wa, wb = wilson_interval(x_a, n_a, confidence), wilson_interval(x_b, n_b, confidence)
    diff = wb.estimate - wa.estimate
    low = diff - math.hypot(wb.estimate - wb.low, wa.high - wa.estimate)
    high = diff + math.hypot(wb.high - wb.estimate, wa.estimate - wa.low)
    return Interval(diff, max(-1.0, low), min(1.0, high), confidence, "newcombe")


def wilson_bounds(p: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score bounds for a proportion ``p`` seen over ``n`` trials, where ``n`` may be fractional (an
    effective sample size). For whole counts this is `wilson_interval`; reference for any ``n``:
    ``statsmodels.stats.proportion.proportion_confint(p * n, n, method="wilson")``.
    """
    _check_confidence(confidence)
    if not (n > 0 and 0 <= p <= 1):
        raise StatsError(f"wilson_bounds needs 0 <= p <= 1 and n > 0; got p={p!r}, n={n!r}.")
    z2 = _z(confidence) ** 2
    denominator = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denominator
    half = math.sqrt(z2 * (p * (1 - p) / n + z2 / (4 * n * n))) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def _effective_n(p: float, se: float, cases: int, calls: int) -> float:
    """Kish's effective sample size p(1 − p)/SE², kept between the cases and the calls.

    When every answer agrees (p is 0 or 1) or the SE is unknown, the repeats say nothing about how much the
    answers to one case hang together, so the honest count is the cases; an SE of 0 with 0 < p < 1 (every
    case at the same rate) is as informative as independent calls.
    """
    if p in (0.0, 1.0) or math.isnan(se):
        return float(cases)
    if se == 0:
        return float(calls)
    return float(min(calls, max(cases, p * (1 - p) / se ** 2)))


def case_proportion_interval(values: Sequence[float], case_ids: Sequence,
                             confidence: float = 0.95) -> CaseProportion:
    """A pass rate when cases were answered several times, with an interval that stays honest at 0 and 1.

    The estimate is passes / answers. Answers to one case are not independent, so the SE is taken over
    per-case pass rates (`case_mean_se`) and the CLT interval is ``estimate ± z·SE``, clipped to [0, 1]. That
    interval collapses to a point when every case agrees (6 cases, 2 answers each, all wrong: [0, 0]), so it
    is widened to never be narrower than the Wilson interval at the effective sample size (`wilson_bounds`
    at ``n_eff`` = p(1 − p)/SE², kept between the cases and the answers): all wrong in 6 cases gives
    Wilson's [0, 0.390] however many times each case was asked.

    Args:
        values: 1 for a pass, 0 for a failure, one per answer (count an answer with no verdict as 0).
        case_ids: the case of each answer.
        confidence: coverage.
    """
    _check_confidence(confidence)
    x = np.asarray(values, dtype=float)
    if len(case_ids) != x.size or x.size == 0:
        raise StatsError(f"case_proportion_interval needs one case id per value and at least one value; got "
                         f"{x.size} values and {len(case_ids)} ids.")
    if np.isnan(x).any() or ((x != 0) & (x != 1)).any():
        raise StatsError(f"case_proportion_interval takes 1 (pass) or 0 (failure) per answer; got "
                         f"{sorted(set(x[(x != 0) & (x != 1)].tolist()), key=str)[:5]!r}. Count an answer with no "
                         "verdict as 0.")
    over_cases = case_mean_se(x, case_ids, confidence)
    p, se, cases = float(x.mean()), over_cases.se, over_cases.n
    z = _z(confidence)
    n_eff = _effective_n(p, se, cases, int(x.size))
    low, high = wilson_bounds(p, n_eff, confidence)
    if not math.isnan(se):
        low, high = min(low, max(0.0, p - z * se)), max(high, min(1.0, p + z * se))
    return CaseProportion(p, se, cases, low, high, confidence, "over cases, Wilson floor", int(x.size), n_eff)
