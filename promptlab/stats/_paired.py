"""Paired tests of B against A on the same units: McNemar with Newcombe's paired interval, the sign test,
the paired t test, and the seeded paired bootstrap (one set of resamples for several confidence levels)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from ..errors import StatsError
from ._checks import _check_alternative, _check_confidence
from ._intervals import Interval, wilson_interval

BCA_MAX_N = 5000
"""Above this many pairs `paired_bootstrap` uses the percentile method (BCa's jackknife is O(n²))."""


def _pairs(scores_a: Sequence[float], scores_b: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    """Two equal-length float arrays with pairs holding a NaN removed, and how many were removed."""
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise StatsError(f"paired scores need two 1-d arrays of one length; got shapes {a.shape!r} and "
                         f"{b.shape!r}. Align them by case first.")
    keep = ~(np.isnan(a) | np.isnan(b))
    return a[keep], b[keep], int((~keep).sum())


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
    put them in a canonical order first (`promptlab.stats._paired_table` sorts by case id), so shuffled rows give the
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
