"""Quantiles: the one quantile definition, order-statistic intervals, per-group quantiles, and the difference of
a quantile between two arms (e.g. p95 latency) — by bootstrap, or by Deng, Knoblich & Lu's outer-interval
standard error, which also works from histograms of the values (`quantile_difference`).

One quantile definition everywhere: `QUANTILE_METHOD` (numpy's ``"inverted_cdf"``: the smallest value with at
least a fraction q of the sample at or below it — always an observed value, so it matches the order-statistic
interval of `quantile_ci`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st

from ..errors import StatsError
from ._checks import _check_confidence

QUANTILE_METHOD = "inverted_cdf"
"""The one quantile definition promptlab uses (numpy's name): p95 of 1..100 is 95."""


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


@dataclass(frozen=True)
class QuantileDifference:
    """B's quantile minus A's with a normal interval from Deng, Knoblich & Lu's (2018) outer-interval SE.

    Attributes:
        q: the quantile level.
        estimate_a, estimate_b: each arm's quantile (`QUANTILE_METHOD`; from a histogram, interpolated within
            its bucket).
        se_a, se_b: each arm's standard error, (X_(U) − X_(L)) / (2z) with ranks nq ∓ z·sqrt(nq(1 − q));
            NaN when the sample is too small for both ranks to exist.
        diff: estimate_b − estimate_a.
        ci_low, ci_high: diff ∓ z·sqrt(se_a² + se_b²); ±inf when an SE is NaN.
        confidence: the interval's coverage.
        n_a, n_b: values per arm.
        max_error: how far (at most) each number may be from the raw-values path — 0 for raw values; for
            histograms, from the widths of the buckets the order statistics fall in.
        method: ``"outer interval (raw)"`` or ``"outer interval (histogram)"``.
    """

    q: float
    estimate_a: float
    estimate_b: float
    se_a: float
    se_b: float
    diff: float
    ci_low: float
    ci_high: float
    confidence: float
    n_a: int
    n_b: int
    max_error: float
    method: str


def _outer_ranks(n: int, q: float, z: float) -> tuple[int, int, int]:
    """1-based ranks (L, estimate, U): ⌊nq − z·sqrt(nq(1 − q))⌋, ⌈nq⌉ (inverted_cdf), ⌈nq + z·sqrt(...)⌉.
    L < 1 or U > n means the sample cannot give that bound."""
    spread = z * math.sqrt(n * q * (1 - q))
    return math.floor(n * q - spread), max(1, math.ceil(n * q - 1e-9)), math.ceil(n * q + spread)


class _Ordered:
    """Order statistics of one arm: from sorted raw values (exact) or a histogram (within a bucket)."""

    def __init__(self, values: np.ndarray | None = None, edges: np.ndarray | None = None,
                 counts: np.ndarray | None = None):
        self.sorted, self.edges, self.counts = values, edges, counts
        self.cum = None if counts is None else np.cumsum(counts)
        self.n = int(values.size if values is not None else self.cum[-1])

    def at(self, rank: int) -> tuple[float, float]:
        """(value, its possible error) of the rank-th smallest value (1-based)."""
        if self.sorted is not None:
            return float(self.sorted[rank - 1]), 0.0
        j = int(np.searchsorted(self.cum, rank))  # the bucket holding that rank
        before = float(self.cum[j - 1]) if j else 0.0
        low, width = float(self.edges[j]), float(self.edges[j + 1] - self.edges[j])
        return low + width * (rank - before - 0.5) / float(self.counts[j]), width


def _arm(order: _Ordered, q: float, z: float) -> tuple[float, float, float, float]:
    """(estimate, se, estimate's error, se's error) of one arm."""
    low_rank, mid, high_rank = _outer_ranks(order.n, q, z)
    estimate, est_err = order.at(mid)
    if low_rank < 1 or high_rank > order.n:
        return estimate, math.nan, est_err, 0.0
    (low, low_err), (high, high_err) = order.at(low_rank), order.at(high_rank)
    return estimate, (high - low) / (2 * z), est_err, (low_err + high_err) / (2 * z)


def _difference(a: _Ordered, b: _Ordered, q: float, confidence: float, method: str) -> QuantileDifference:
    _check_q(q)
    _check_confidence(confidence)
    if not 0 < q < 1:
        raise StatsError(f"quantile_difference needs 0 < q < 1; got q={q!r} (the extremes have no rank interval).")
    if a.n == 0 or b.n == 0:
        raise StatsError(f"quantile_difference needs values in both arms; got n_a={a.n}, n_b={b.n}.")
    z = float(st.norm.isf((1 - confidence) / 2))
    est_a, se_a, err_a, se_err_a = _arm(a, q, z)
    est_b, se_b, err_b, se_err_b = _arm(b, q, z)
    diff = est_b - est_a
    half = z * math.hypot(se_a, se_b) if not (math.isnan(se_a) or math.isnan(se_b)) else math.inf
    max_error = err_a + err_b + z * math.hypot(se_err_a, se_err_b)
    return QuantileDifference(q, est_a, est_b, se_a, se_b, diff, diff - half, diff + half, confidence, a.n, b.n,
                              max_error, method)


def quantile_difference(values_a: Sequence[float], values_b: Sequence[float], q: float = 0.95, *,
                        confidence: float = 0.95) -> QuantileDifference:
    """The difference of a quantile between two arms (e.g. p95 latency of B − A) with an interval from
    Deng, Knoblich & Lu (2018, "Applying the delta method in metric analytics", KDD; the outer-interval
    trick of their section on percentile metrics).

    Each arm's SE comes from its order-statistic interval, without a density estimate: ranks
    L, U = nq ∓ z·sqrt(nq(1 − q)), SE = (X_(U) − X_(L)) / (2z); the arms are independent, so the difference
    gets ``diff ± z·sqrt(SE_A² + SE_B²)``. Values are taken as independent (one per call); NaNs are dropped.
    For raw values too many to ship, `quantile_difference_from_histograms` gives the same from bucket counts.
    Checked against scipy's bootstrap on large samples and by simulated coverage.
    """
    a, b = _finite(values_a, "quantile_difference"), _finite(values_b, "quantile_difference")
    return _difference(_Ordered(np.sort(a)), _Ordered(np.sort(b)), q, confidence, "outer interval (raw)")


def quantile_difference_from_histograms(edges: Sequence[float], counts_a: Sequence[int], counts_b: Sequence[int],
                                        q: float = 0.95, *, confidence: float = 0.95) -> QuantileDifference:
    """`quantile_difference` from histograms: bucket ``edges`` (m + 1 increasing, finite) and each arm's
    counts per bucket (m), as a log or a warehouse can return them with one GROUP BY.

    An order statistic is placed within its bucket by its rank (linear interpolation), so it is within one
    bucket width of the raw value; ``max_error`` adds those widths up into a bound on how far the estimate and
    each interval end may be from the raw path. Narrow buckets where the quantile lies (log-spaced edges for
    latency) keep it small.
    """
    e = np.asarray(edges, dtype=float)
    ca, cb = np.asarray(counts_a, dtype=float), np.asarray(counts_b, dtype=float)
    if e.ndim != 1 or e.size < 2 or not np.isfinite(e).all() or (np.diff(e) <= 0).any():
        raise StatsError(f"edges must be finite and strictly increasing, m + 1 of them; got {e.tolist()[:10]!r}.")
    for name, c in (("counts_a", ca), ("counts_b", cb)):
        if c.shape != (e.size - 1,) or (c < 0).any() or (c != np.round(c)).any():
            raise StatsError(f"{name} needs one whole, non-negative count per bucket ({e.size - 1}); got "
                             f"{c.tolist()[:10]!r}.")
    return _difference(_Ordered(edges=e, counts=ca), _Ordered(edges=e, counts=cb), q, confidence,
                       "outer interval (histogram)")


def live_latency(df: pd.DataFrame) -> pd.Series:
    """Latency of the calls this run made: NaN for failed calls and for cached answers (whose latency is that
    of the past call that first made them). The one rule for every latency summary and guardrail."""
    cached = df["cached"].fillna(False).astype(bool) if "cached" in df else pd.Series(False, index=df.index)
    return df["latency_s"].astype("float64").where(~cached)
