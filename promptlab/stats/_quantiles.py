"""Quantiles: the one quantile definition, order-statistic intervals, per-group quantiles and the bootstrap
comparison of a quantile between two arms (e.g. p95 latency).

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


def live_latency(df: pd.DataFrame) -> pd.Series:
    """Latency of the calls this run made: NaN for failed calls and for cached answers (whose latency is that
    of the past call that first made them). The one rule for every latency summary and guardrail."""
    cached = df["cached"].fillna(False).astype(bool) if "cached" in df else pd.Series(False, index=df.index)
    return df["latency_s"].astype("float64").where(~cached)
