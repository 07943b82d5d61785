"""Means with standard errors: the CLT SE, the cluster-robust SE, and the SE over cases answered several times."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import StatsError
from ._checks import _check_confidence, _z


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
