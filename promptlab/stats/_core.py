"""Statistics on sufficient statistics: intervals, paired tests, multiplicity, quantiles.

Every function takes counts, sums or plain arrays (never a results frame), so the aggregation can run where
the data lives and only the aggregates come here. Results are frozen dataclasses; the methods and reference
values are in ``docs/statistics.md``. Online A/B reads (independent-arm z and Welch tests,
`is_significant`, always-valid inference, the SRM check) live in `promptlab.stats._sequential`; sample size, MDE and
power in `promptlab.stats._planning`.

Conventions:

* Two arms are ``A`` (baseline, control) and ``B`` (variant, treatment); every difference is **B − A**, so a
  positive difference means B is higher.
* ``alternative`` is ``"two-sided"`` (the default), ``"greater"`` (B > A) or ``"less"`` (B < A). Declare a
  one-sided test before looking at the data, or do not use one.
* Tail probabilities come from ``sf`` (survival functions), never ``1 - cdf``, which loses precision.
* One quantile definition everywhere: `QUANTILE_METHOD` (numpy's ``"inverted_cdf"``: the smallest value with
  at least a fraction q of the sample at or below it — always an observed value, so it matches the
  order-statistic interval of `quantile_ci`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from ..errors import StatsError

QUANTILE_METHOD = "inverted_cdf"
"""The one quantile definition promptlab uses (numpy's name): p95 of 1..100 is 95."""
ALTERNATIVES = ("two-sided", "greater", "less")
BCA_MAX_N = 5000
"""Above this many pairs `paired_bootstrap` uses the percentile method (BCa's jackknife is O(n²))."""


# ---- argument checks -------------------------------------------------------------------------------------
def _check_counts(successes: int, n: int, name: str = "successes") -> None:
    if n < 0 or successes < 0 or successes > n:
        raise StatsError(f"{name}={successes!r} out of n={n!r} is not a valid count; "
                         f"need 0 <= {name} <= n.")


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise StatsError(f"confidence={confidence!r} must be strictly between 0 and 1, e.g. 0.95.")


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise StatsError(f"alternative={alternative!r} is not one of {ALTERNATIVES!r}.")


def _z(confidence: float) -> float:
    """The two-sided normal critical value, e.g. 1.959964 for 0.95."""
    return float(st.norm.ppf(0.5 + confidence / 2))


def _p_from_z(z: float, alternative: str) -> float:
    if alternative == "greater":
        return float(st.norm.sf(z))
    if alternative == "less":
        return float(st.norm.cdf(z))
    return float(min(1.0, 2 * st.norm.sf(abs(z))))


def _pairs(scores_a: Sequence[float], scores_b: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    """Two equal-length float arrays with pairs holding a NaN removed, and how many were removed."""
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise StatsError(f"paired scores need two 1-d arrays of one length; got shapes {a.shape!r} and "
                         f"{b.shape!r}. Align them by case first.")
    keep = ~(np.isnan(a) | np.isnan(b))
    return a[keep], b[keep], int((~keep).sum())


# ---- result types ----------------------------------------------------------------------------------------
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
class MeanSE:
    """A mean with its standard error and a normal (CLT) interval.

    Attributes:
        mean: the mean.
        se: its standard error.
        n: units the SE is taken over (answers, cases or clusters' members — see ``method``).
        low: ``mean − z·se``.
        high: ``mean + z·se``.
        confidence: the interval's coverage.
        method: ``"clt"``, ``"clustered"``, ``"clustered (inspect_ai)"`` or ``"over cases"``.
    """

    mean: float
    se: float
    n: int
    low: float
    high: float
    confidence: float
    method: str


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test on the paired table ``[[a, b], [c, d]]`` with a paired CI for the difference.

    Attributes:
        a, b, c, d: both pass, A only, B only, both fail.
        n: pairs (a + b + c + d).
        p_exact: exact binomial p (two-sided) on the discordant pairs.
        p_mid: mid-p (the default decision value; less conservative than exact, close to nominal).
        chi2: McNemar's chi-square without continuity correction, (b − c)² / (b + c).
        p_chi2: its p-value (chi-square, 1 df).
        effect: (c − b) / n, the pass-rate difference B − A.
        ci_low, ci_high: Newcombe's paired hybrid-score interval for ``effect`` (1998, method 10).
        confidence: the interval's coverage.
    """

    a: int
    b: int
    c: int
    d: int
    n: int
    p_exact: float
    p_mid: float
    chi2: float
    p_chi2: float
    effect: float
    ci_low: float
    ci_high: float
    confidence: float

    @property
    def p_value(self) -> float:
        """The decision p-value: the mid-p."""
        return self.p_mid


@dataclass(frozen=True)
class PairedResult:
    """A paired comparison of scores (B − A per unit).

    Attributes:
        n: complete pairs used.
        dropped: pairs removed because a side was NaN.
        mean_a, mean_b: the arms' means.
        diff: mean of B − A.
        se: paired standard error, sd(d)/sqrt(n).
        se_unpaired: what the SE would be ignoring the pairing, sqrt(SE_A² + SE_B²).
        correlation: Pearson r between the arms (what pairing exploits; NaN when an arm is constant).
        statistic: t.
        p_value: the p-value for ``alternative``.
        ci_low, ci_high: t interval for ``diff``.
        confidence: the interval's coverage.
        method: ``"paired t"`` (or ``"sign test"`` when every difference is the same).
    """

    n: int
    dropped: int
    mean_a: float
    mean_b: float
    diff: float
    se: float
    se_unpaired: float
    correlation: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float
    method: str


@dataclass(frozen=True)
class BootstrapResult:
    """A seeded paired bootstrap interval for the mean difference B − A.

    Attributes:
        n: complete pairs used.
        diff: mean of B − A.
        ci_low, ci_high: the bootstrap interval.
        confidence: its coverage.
        n_resamples: resamples drawn.
        seed: the seed (same seed, same interval).
        method: ``"BCa"``, ``"percentile"`` or ``"degenerate"`` (all differences equal).
    """

    n: int
    diff: float
    ci_low: float
    ci_high: float
    confidence: float
    n_resamples: int
    seed: int
    method: str


@dataclass(frozen=True)
class QuantileInterval:
    """A sample quantile (`QUANTILE_METHOD`) with a distribution-free order-statistic interval.

    Attributes:
        q: the quantile level (0.95 for p95).
        estimate: the sample quantile.
        low, high: order statistics bracketing the true quantile; ``-inf``/``inf`` when the sample is too
            small for a bound at this confidence (e.g. a p95 upper bound needs about 59 values at 95%).
        n: values used.
        confidence: the interval's coverage.
        method: the quantile definition.
    """

    q: float
    estimate: float
    low: float
    high: float
    n: int
    confidence: float
    method: str = QUANTILE_METHOD


@dataclass(frozen=True)
class QuantileComparison:
    """Quantile of B against quantile of A (e.g. p95 latency).

    Attributes:
        q: the quantile level.
        a, b: each arm's `QuantileInterval`.
        diff: b.estimate − a.estimate.
        ci_low, ci_high: seeded percentile-bootstrap interval for ``diff`` (arms resampled independently).
        seed: the bootstrap seed.
    """

    q: float
    a: QuantileInterval
    b: QuantileInterval
    diff: float
    ci_low: float
    ci_high: float
    seed: int


# ---- intervals -------------------------------------------------------------------------------------------
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


def _mean_interval(mean: float, se: float, n: int, confidence: float, method: str) -> MeanSE:
    z = _z(confidence)
    return MeanSE(mean, se, n, mean - z * se, mean + z * se, confidence, method)


def mean_se(values: Sequence[float], confidence: float = 0.95) -> MeanSE:
    """Mean with the CLT standard error ``sd(ddof=1)/sqrt(n)`` and a normal interval (NaNs dropped).

    One value gives SE NaN (no spread to estimate); no values raise `StatsError`.
    """
    _check_confidence(confidence)
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        raise StatsError("mean_se got no values (all empty or NaN); score some answers first.")
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return _mean_interval(float(x.mean()), se, int(x.size), confidence, "clt")


def clustered_se(values: Sequence[float], clusters: Sequence, *, small_sample_factor: bool = False,
                 confidence: float = 0.95) -> MeanSE:
    """Mean with a cluster-robust SE, for cases that share a cluster key (same document, same template …).

    The default is the paper form (Miller 2024, "Adding Error Bars to Evals", arXiv 2411.00640):
    ``SE = sqrt(Σ_c (Σ_{i∈c} (s_i − s̄))²) / n``. With ``small_sample_factor=True`` it is multiplied by
    ``sqrt(C/(C−1))`` for C clusters, as inspect_ai's ``stderr(cluster=...)`` does (larger with few clusters).

    Args:
        values: one score per answer.
        clusters: one cluster key per answer.
        small_sample_factor: apply inspect_ai's sqrt(C/(C−1)) factor.
        confidence: coverage of the normal interval.
    """
    x = np.asarray(values, dtype=float)
    if len(clusters) != x.size or x.size == 0:
        raise StatsError(f"clustered_se needs one cluster key per value; got {x.size} values and "
                         f"{len(clusters)} keys.")
    codes, uniques = _factorize(clusters)
    sums = np.bincount(codes, weights=x - x.mean(), minlength=len(uniques))
    se = float(math.sqrt(float(np.sum(sums ** 2))) / x.size)
    method = "clustered"
    if small_sample_factor:
        c = len(uniques)
        se, method = (se * math.sqrt(c / (c - 1)) if c > 1 else math.nan), "clustered (inspect_ai)"
    return _mean_interval(float(x.mean()), se, int(x.size), confidence, method)


def _factorize(keys: Sequence) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(keys, dtype=object))
    return codes, np.asarray(uniques)


def case_mean_se(values: Sequence[float], case_ids: Sequence, confidence: float = 0.95) -> MeanSE:
    """Mean and SE when cases were answered several times: average per case first, then SE over cases.

    Answers to one case are not independent, so the SE over raw answers is too small; this is the
    estimator docs/statistics.md prescribes for K repeats. NaN values are dropped before averaging.
    """
    x = np.asarray(values, dtype=float)
    if len(case_ids) != x.size:
        raise StatsError(f"case_mean_se needs one case id per value; got {x.size} values and "
                         f"{len(case_ids)} ids.")
    codes, uniques = _factorize(case_ids)
    keep = ~np.isnan(x)
    sums = np.bincount(codes[keep], weights=x[keep], minlength=len(uniques))
    counts = np.bincount(codes[keep], minlength=len(uniques))
    per_case = sums[counts > 0] / counts[counts > 0]
    result = mean_se(per_case, confidence)
    return MeanSE(result.mean, result.se, result.n, result.low, result.high, confidence, "over cases")


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


@dataclass(frozen=True)
class CaseProportion(MeanSE):
    """A pass rate over cases answered several times (`case_proportion_interval`).

    Attributes:
        calls: answers counted (``mean`` is passes / calls).
        n_eff: the effective sample size of the Wilson floor, between ``n`` (cases) and ``calls``.
    """

    calls: int = 0
    n_eff: float = math.nan


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


# ---- paired tests ----------------------------------------------------------------------------------------
def _binom_mid_p(k: int, n: int) -> float:
    return float(min(1.0, 2 * (st.binom.cdf(k, n, 0.5) - 0.5 * st.binom.pmf(k, n, 0.5))))


def sign_test(n_negative: int, n_positive: int) -> tuple[float, float]:
    """Exact and mid-p two-sided sign test on counts of negative and positive differences (ties excluded).

    McNemar's exact test is this test on the discordant pairs. Returns ``(p_exact, p_mid)``; (1, 1) with
    no non-zero differences.
    """
    total = n_negative + n_positive
    if total == 0:
        return 1.0, 1.0
    k = min(n_negative, n_positive)
    return float(st.binomtest(k, total, 0.5).pvalue), _binom_mid_p(k, total)


def _paired_phi(a: int, b: int, c: int, d: int) -> float:
    """Newcombe's continuity-corrected correlation of the two paired proportions (0 when a margin is 0)."""
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    if margins == 0:
        return 0.0
    cross, n = a * d - b * c, a + b + c + d
    if cross > n / 2:
        return (cross - n / 2) / math.sqrt(margins)
    return cross / math.sqrt(margins) if cross < 0 else 0.0


def paired_proportion_interval(a: int, b: int, c: int, d: int, confidence: float = 0.95) -> Interval:
    """Newcombe's hybrid score interval for the paired difference p_B − p_A = (c − b)/n (1998, method 10).

    Reference (Fagerland, Lydersen & Laake, R package contingencytables
    ``Newcombe_square_and_add_CI_paired_2x2``): table [[59, 6], [16, 80]] → 0.0621 [0.0046, 0.1186].
    """
    n = a + b + c + d
    if n == 0:
        return Interval(math.nan, -1.0, 1.0, confidence, "newcombe paired")
    wa, wb = wilson_interval(a + b, n, confidence), wilson_interval(a + c, n, confidence)
    phi, diff = _paired_phi(a, b, c, d), (c - b) / n
    down_b, up_a = wb.estimate - wb.low, wa.high - wa.estimate
    down_a, up_b = wa.estimate - wa.low, wb.high - wb.estimate
    low = diff - math.sqrt(max(0.0, down_b ** 2 + up_a ** 2 - 2 * phi * down_b * up_a))
    high = diff + math.sqrt(max(0.0, down_a ** 2 + up_b ** 2 - 2 * phi * down_a * up_b))
    return Interval(diff, max(-1.0, low), min(1.0, high), confidence, "newcombe paired")


def mcnemar(b: int, c: int, a: int = 0, d: int = 0, confidence: float = 0.95) -> McNemarResult:
    """McNemar's test for paired pass/fail: exact, mid-p (the decision value) and chi-square without cc.

    Args:
        b: pairs where only A passed.
        c: pairs where only B passed.
        a: pairs where both passed (only the effect and its interval use a and d).
        d: pairs where both failed.
        confidence: coverage of the paired interval for (c − b)/n.

    Reference: ``statsmodels.stats.contingency_tables.mcnemar([[a, b], [c, d]], exact=True)``.
    """
    for name, value in (("a", a), ("b", b), ("c", c), ("d", d)):
        if value < 0:
            raise StatsError(f"mcnemar got {name}={value!r}; table cells are counts (>= 0).")
    p_exact, p_mid = sign_test(b, c)
    chi2 = (b - c) ** 2 / (b + c) if b + c else 0.0
    ci = paired_proportion_interval(a, b, c, d, confidence)
    return McNemarResult(a, b, c, d, a + b + c + d, p_exact, p_mid, float(chi2), float(st.chi2.sf(chi2, 1)),
                         ci.estimate, ci.low, ci.high, confidence)


def _constant(d: np.ndarray) -> bool:
    """All differences equal, up to float noise (a shifted copy gives b − a equal only to ~1e-16)."""
    return bool(np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())))


def pairing_correlation(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson r between paired arms — what pairing exploits (SE² = SE_A² + SE_B² − 2r·SE_A·SE_B).

    NaN when either arm is constant (r is undefined there) or there are fewer than 2 pairs.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _unpaired_se(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2:
        return math.nan
    return float(math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / a.size))


def paired_ttest(scores_a: Sequence[float], scores_b: Sequence[float], confidence: float = 0.95,
                 alternative: str = "two-sided") -> PairedResult:
    """Paired t test of B − A (scipy ``ttest_rel(scores_b, scores_a)``), with what the pairing bought.

    Pairs with a NaN on either side are dropped (counted in ``dropped``). Edge cases answer rather than
    NaN: no pairs or one pair → p 1 and an unbounded interval; all differences equal → the exact sign test
    p and a zero-width interval at that difference.
    """
    _check_confidence(confidence)
    _check_alternative(alternative)
    a, b, dropped = _pairs(scores_a, scores_b)
    d = b - a
    if d.size < 2 or _constant(d):
        return _degenerate_paired(a, b, dropped, confidence)
    res = st.ttest_rel(b, a, alternative=alternative)
    ci = res.confidence_interval(confidence)
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    return PairedResult(int(d.size), dropped, float(a.mean()), float(b.mean()), float(d.mean()), se,
                        _unpaired_se(a, b), pairing_correlation(a, b), float(res.statistic), float(res.pvalue),
                        float(ci.low), float(ci.high), confidence, "paired t")


def _degenerate_paired(a: np.ndarray, b: np.ndarray, dropped: int, confidence: float) -> PairedResult:
    d = b - a
    if d.size == 0:
        return PairedResult(0, dropped, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan,
                            math.nan, 1.0, -math.inf, math.inf, confidence, "no pairs")
    diff = float(d.mean())
    if d.size == 1:
        return PairedResult(1, dropped, float(a[0]), float(b[0]), diff, math.nan, math.nan, math.nan,
                            math.nan, 1.0, -math.inf, math.inf, confidence, "one pair")
    p_exact = sign_test(int((d < 0).sum()), int((d > 0).sum()))[0]
    stat = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return PairedResult(int(d.size), dropped, float(a.mean()), float(b.mean()), diff, 0.0, _unpaired_se(a, b),
                        pairing_correlation(a, b), stat, p_exact, diff, diff, confidence, "sign test")


def paired_bootstrap(scores_a: Sequence[float], scores_b: Sequence[float], *, seed: int = 0,
                     n_resamples: int = 9999, confidence: float = 0.95) -> BootstrapResult:
    """Seeded paired bootstrap interval for mean(B − A): pairs are resampled together.

    Up to `BCA_MAX_N` pairs this is scipy ``bootstrap((a, b), ..., paired=True, method="BCa")``; above it
    (or when BCa degenerates) a percentile bootstrap of the mean difference, drawn as multinomial counts
    over the distinct differences when there are few of them (exactly the same resampling, much faster).
    The resampling follows the order of the pairs as given: callers that build the pairs from results rows
    put them in a canonical order first (`promptlab.stats._comparison` sorts by case id), so shuffled rows give the
    same interval.

    Args:
        scores_a, scores_b: paired scores (NaN pairs dropped).
        seed: the random seed; the same seed gives the same interval.
        n_resamples: bootstrap resamples.
        confidence: coverage.
    """
    return paired_bootstrap_levels(scores_a, scores_b, (confidence,), seed=seed, n_resamples=n_resamples)[0]


def paired_bootstrap_levels(scores_a: Sequence[float], scores_b: Sequence[float], confidences: Sequence[float], *,
                            seed: int = 0, n_resamples: int = 9999) -> tuple[BootstrapResult, ...]:
    """`paired_bootstrap` at several confidence levels from one set of resamples (e.g. an unadjusted and a
    simultaneous interval): each result equals ``paired_bootstrap(..., confidence=level)`` with the same seed."""
    levels = tuple(confidences)
    for level in levels:
        _check_confidence(level)
    a, b, _ = _pairs(scores_a, scores_b)
    d = b - a
    if d.size == 0:
        return tuple(BootstrapResult(0, math.nan, -math.inf, math.inf, c, 0, seed, "no pairs") for c in levels)
    diff = float(d.mean())
    if _constant(d):
        return tuple(BootstrapResult(int(d.size), diff, diff, diff, c, 0, seed, "degenerate") for c in levels)
    nan = [(math.nan, math.nan)] * len(levels)
    bounds = _scipy_bca(a, b, seed, n_resamples, levels) if d.size <= BCA_MAX_N else nan
    means: np.ndarray | None = None
    out = []
    for level, (low, high) in zip(levels, bounds, strict=True):
        method = "BCa"
        if math.isnan(low) or math.isnan(high):
            means = _percentile_bootstrap_means(d, seed, n_resamples) if means is None else means
            low, high = _percentile_bounds(means, level)
            method = "percentile"
        out.append(BootstrapResult(int(d.size), diff, low, high, level, n_resamples, seed, method))
    return tuple(out)


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(y, axis=axis) - np.mean(x, axis=axis)


def _scipy_bca(a: np.ndarray, b: np.ndarray, seed: int, n_resamples: int,
               levels: tuple[float, ...]) -> list[tuple[float, float]]:
    """BCa bounds at each level; later levels reuse the first call's resamples (scipy's ``bootstrap_result``)."""
    out, first = [], None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for level in levels:
            res = st.bootstrap((a, b), _mean_diff, paired=True, vectorized=True,
                               n_resamples=n_resamples if first is None else 0, bootstrap_result=first,
                               confidence_level=level, method="BCa", rng=np.random.default_rng(seed))
            first = res if first is None else first
            out.append((float(res.confidence_interval.low), float(res.confidence_interval.high)))
    return out


def _percentile_bootstrap_means(d: np.ndarray, seed: int, n_resamples: int) -> np.ndarray:
    """The seeded bootstrap distribution of mean(d)."""
    rng = np.random.default_rng(seed)
    # Bins of equal differences (to 12 decimals, so float noise does not split them); each bin keeps its exact
    # mean, so drawing bin counts is the same resampling as drawing pairs.
    _, inverse, counts = np.unique(np.round(d, 12), return_inverse=True, return_counts=True)
    if counts.size <= 1024:
        values = np.bincount(inverse, weights=d) / counts
        draws = rng.multinomial(d.size, counts / d.size, size=n_resamples)
        return draws @ values / d.size
    chunk, kind = max(1, 20_000_000 // d.size), np.int32 if d.size < 2 ** 31 else np.int64
    return np.concatenate([
        d[rng.integers(0, d.size, (min(chunk, n_resamples - i), d.size), dtype=kind)].mean(axis=1)
        for i in range(0, n_resamples, chunk)])


def _percentile_bounds(means: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


# ---- multiplicity ----------------------------------------------------------------------------------------
def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control; valid under any dependence).

    NaNs stay NaN and are left out of the family. Reference:
    ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return out
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise StatsError(f"holm got p-values outside [0, 1]: {p[ok][(p[ok] < 0) | (p[ok] > 1)].tolist()!r}.")
    values = p[ok]
    order = np.argsort(values, kind="stable")
    m = values.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * values[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    out[ok] = adjusted
    return out


def benjamini_hochberg(pvalues: Sequence[float]) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (false discovery rate; for exploratory slices like categories).

    Wraps ``scipy.stats.false_discovery_control(p, method="bh")``; NaNs stay NaN and are left out.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        if ((p[ok] < 0) | (p[ok] > 1)).any():
            raise StatsError(f"benjamini_hochberg got p-values outside [0, 1]: {p[ok].tolist()!r}.")
        out[ok] = st.false_discovery_control(p[ok], method="bh")
    return out


# ---- quantiles -------------------------------------------------------------------------------------------
def _finite(values: Sequence[float], what: str) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        raise StatsError(f"{what} got no values (empty or all NaN); there is nothing to take a quantile of.")
    return x


def _check_q(q: float) -> None:
    if not 0 <= q <= 1:
        raise StatsError(f"q={q!r} is a quantile level and must be in [0, 1], e.g. 0.95 for p95.")


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile by `QUANTILE_METHOD` (NaNs dropped): p95 of 1..100 is 95."""
    _check_q(q)
    return float(np.quantile(_finite(values, "quantile"), q, method=QUANTILE_METHOD))


def quantile_ci(values: Sequence[float], q: float = 0.95, confidence: float = 0.95) -> QuantileInterval:
    """A quantile with its distribution-free order-statistic interval (scipy ``quantile_test``).

    The interval is exact (binomial on the order statistics) and needs no distribution; for 1..100 the 95%
    interval of p95 is [90, 100]. A bound the sample cannot reach at this confidence is ``±inf``.
    """
    _check_q(q)
    _check_confidence(confidence)
    x = _finite(values, "quantile_ci")
    estimate = float(np.quantile(x, q, method=QUANTILE_METHOD))
    if q in (0.0, 1.0):
        return QuantileInterval(q, estimate, -math.inf if q == 0 else estimate,
                                estimate if q == 0 else math.inf, int(x.size), confidence)
    ci = st.quantile_test(x, q=estimate, p=q).confidence_interval(confidence)
    low = -math.inf if np.isnan(ci.low) else float(ci.low)
    high = math.inf if np.isnan(ci.high) else float(ci.high)
    return QuantileInterval(q, estimate, low, high, int(x.size), confidence)


def grouped_quantile(values: Sequence[float], groups: Sequence[int], q: float) -> dict[int, float]:
    """`QUANTILE_METHOD` quantile of ``values`` within each integer group code, vectorised (no Python loop
    over rows). NaN values are ignored; groups with no values are absent from the result."""
    _check_q(q)
    x, g = np.asarray(values, dtype=float), np.asarray(groups, dtype=np.int64)
    keep = ~np.isnan(x)
    x, g = x[keep], g[keep]
    if x.size == 0:
        return {}
    order = np.lexsort((x, g))
    x, g = x[order], g[order]
    codes, starts, sizes = np.unique(g, return_index=True, return_counts=True)
    virtual = sizes * q - 1  # numpy's inverted_cdf: index ceil(n·q) − 1, clipped to the sample
    index = np.floor(virtual) + (virtual - np.floor(virtual) > 0)
    index = np.clip(index, 0, sizes - 1).astype(np.int64)
    return dict(zip(codes.tolist(), x[starts + index].tolist(), strict=True))


def compare_quantiles(values_a: Sequence[float], values_b: Sequence[float], q: float = 0.95, *,
                      confidence: float = 0.95, seed: int = 0, n_resamples: int = 2000) -> QuantileComparison:
    """Compare a quantile (e.g. p95 latency) of B with A's: each arm's order-statistic interval and a seeded
    percentile-bootstrap interval for the difference (scipy ``bootstrap``, arms resampled independently).

    Quantiles do not average: pass raw values (or merge sketches upstream), never per-batch p95s.
    """
    a, b = _finite(values_a, "compare_quantiles"), _finite(values_b, "compare_quantiles")
    qa, qb = quantile_ci(a, q, confidence), quantile_ci(b, q, confidence)

    def stat(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return (np.quantile(y, q, axis=axis, method=QUANTILE_METHOD)
                - np.quantile(x, q, axis=axis, method=QUANTILE_METHOD))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = st.bootstrap((a, b), stat, vectorized=True, n_resamples=n_resamples,
                           confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    return QuantileComparison(q, qa, qb, qb.estimate - qa.estimate, float(res.confidence_interval.low),
                              float(res.confidence_interval.high), seed)
