"""Latency percentiles without raw rows: DDSketch log buckets counted by the engine, merged and read here.

Quantiles do not average, so p95 latency cannot be built from sums. A DDSketch (Masson, Rim & Lee, "DDSketch: a
fast and fully-mergeable quantile sketch with relative-error guarantees", VLDB 2019) can: every latency x > 0
falls into bucket ``k = ceil(ln x / ln γ)`` with ``γ = (1 + α) / (1 − α)``, so bucket k holds (γ^(k−1), γ^k].
The engine computes k per row and returns one count per bucket (`key_sql` is that expression; the grouping lives
in `promptlab.production._query.latency_sketches`). Counts from any windows, arms or servers add up bucket by
bucket (`LatencySketch.merge`), and a quantile read from the merged counts is the bucket's representative value
``2γ^k / (γ + 1)``.

What the numbers promise (α = `DEFAULT_ALPHA` = 1% unless asked otherwise):

* **rank error 0**: the rank is exact — the estimate is read at the `promptlab.stats._quantiles.QUANTILE_METHOD`
  rank (``inverted_cdf``: the ⌈n·q⌉-th smallest value) of all n latencies;
* **relative value error ≤ α**: the estimate is within α·x of x, the exact sample quantile at that rank;
* **an interval**: the distribution-free order-statistic interval of scipy's ``quantile_test`` (its ranks come
  from `rank_interval`), widened to the edges of the buckets that hold those order statistics, so it covers the
  true quantile at least as often as the exact interval does.

The bucket keys are those of the ``ddsketch`` library's ``LogarithmicMapping`` and the quantiles equal its
``get_quantile_value`` where both read the same rank (tests pin both). A latency of 0 (or below) goes to the
zero bucket (`ZERO_KEY`), whose value is 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st

from ..errors import EventLogError
from ..stats._quantiles import QuantileInterval

DEFAULT_ALPHA = 0.01
"""Relative accuracy of the latency sketches: a reported p95 is within 1% of the exact sample p95."""
ZERO_KEY = -1_000_000_000
"""Bucket key of latencies ≤ 0 (far below any real key: |ln x| ≤ 745 for every positive double)."""
KEY_COLUMN, COUNT_COLUMN = "bucket", "bucket_n"
"""Columns of a bucket table: the bucket key and how many latencies fell in it."""


def _check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, (int, float)) and 1e-6 <= alpha <= 0.5):
        raise EventLogError(f"sketch accuracy alpha={alpha!r} must be a relative error between 1e-6 and 0.5, "
                            f"e.g. {DEFAULT_ALPHA} (1%).")
    return float(alpha)


def gamma(alpha: float) -> float:
    """The bucket ratio γ = (1 + α) / (1 − α)."""
    alpha = _check_alpha(alpha)
    return (1 + alpha) / (1 - alpha)


def _multiplier(alpha: float) -> float:
    """1 / ln γ, as ddsketch computes it (``1 / log1p(2α / (1 − α))``)."""
    return 1.0 / math.log1p(2 * alpha / (1 - alpha))


def key_sql(alpha: float = DEFAULT_ALPHA, column: str = "latency_s") -> str:
    """The SQL expression of a row's bucket key (written once; `promptlab.production._query.render` turns it
    into each engine's dialect). The multiplier is written in exponent form so every engine reads a double."""
    mult = f"{_multiplier(_check_alpha(alpha)):.17e}"
    return f"CASE WHEN {column} > 0 THEN CAST(CEIL(LN({column}) * {mult}) AS INTEGER) ELSE {ZERO_KEY} END"


def keys_of(values: np.ndarray, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """The bucket key of every value, in numpy (the same arithmetic as `key_sql`)."""
    x = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        keys = np.ceil(np.log(np.where(x > 0, x, 1.0)) * _multiplier(_check_alpha(alpha)))
    return np.where(x > 0, keys, ZERO_KEY).astype(np.int64)


def rank_interval(n: int, q: float, confidence: float) -> tuple[int | None, int | None]:
    """0-based ranks of the order statistics bounding the q-quantile at ``confidence`` (two-sided): scipy
    ``quantile_test(...).confidence_interval`` picks the same order statistics. None: no bound reachable."""
    tail = (1 - confidence) / 2
    # the same binomial quantiles scipy reads from its frozen st.binom(n, q), without the costly freeze
    low, high = int(st.binom.ppf(tail, n, q)) - 1, int(st.binom.isf(tail, n, q))
    return (low if low >= 0 else None), (high if high < n else None)


@dataclass(frozen=True, eq=False)
class LatencySketch:
    """Bucket counts of latencies (seconds): mergeable, read as quantiles with intervals.

    Attributes:
        alpha: relative accuracy of every value read from it.
        keys: sorted bucket keys (`ZERO_KEY` for latencies ≤ 0).
        counts: latencies per bucket.
    """

    alpha: float
    keys: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_buckets(cls, keys: Iterable[int], counts: Iterable[int], alpha: float = DEFAULT_ALPHA) -> LatencySketch:
        """A sketch from (key, count) pairs, e.g. rows an engine returned; repeated keys are added up."""
        k = np.asarray(list(keys) if not isinstance(keys, np.ndarray) else keys, dtype=np.int64)
        c = np.asarray(list(counts) if not isinstance(counts, np.ndarray) else counts, dtype=np.int64)
        if k.shape != c.shape or (c < 0).any():
            raise EventLogError(f"a sketch needs one non-negative count per bucket key; got {k.size} keys and "
                                f"{c.size} counts (negative: {int((c < 0).sum())}).")
        unique, where = np.unique(k, return_inverse=True)
        summed = np.bincount(where, weights=c, minlength=unique.size).astype(np.int64)
        keep = summed > 0
        return cls(_check_alpha(alpha), unique[keep], summed[keep])

    @classmethod
    def from_values(cls, values: Sequence[float], alpha: float = DEFAULT_ALPHA) -> LatencySketch:
        """A sketch of raw latencies (NaNs dropped) — what the engine computes, done in numpy."""
        x = np.asarray(values, dtype=float)
        x = x[~np.isnan(x)]
        return cls.from_buckets(keys_of(x, alpha), np.ones(x.size, dtype=np.int64), alpha)

    @classmethod
    def empty(cls, alpha: float = DEFAULT_ALPHA) -> LatencySketch:
        """A sketch of no latencies."""
        return cls(_check_alpha(alpha), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))

    @property
    def n(self) -> int:
        """Latencies counted."""
        return int(self.counts.sum())

    def merge(self, *others: LatencySketch) -> LatencySketch:
        """The sketch of all latencies in this one and ``others`` (same α required)."""
        bad = [o.alpha for o in others if o.alpha != self.alpha]
        if bad:
            raise EventLogError(f"cannot merge sketches of different accuracy: alpha {self.alpha!r} and {bad!r}; "
                                "read every window with the same alpha.")
        parts = (self, *others)
        return LatencySketch.from_buckets(np.concatenate([p.keys for p in parts]),
                                          np.concatenate([p.counts for p in parts]), self.alpha)

    # ---- reading ---------------------------------------------------------------------------------------
    def value(self, key: int) -> float:
        """The representative value of a bucket (within α of every value in it)."""
        if key == ZERO_KEY:
            return 0.0
        g = gamma(self.alpha)
        return math.pow(g, key) * 2.0 / (1.0 + g)

    def edges(self, key: int) -> tuple[float, float]:
        """(lower, upper) edge of a bucket: it holds the values in (lower, upper]."""
        if key == ZERO_KEY:
            return -math.inf, 0.0
        g = gamma(self.alpha)
        return math.pow(g, key - 1), math.pow(g, key)

    def _key_at(self, rank: int) -> int:
        """The key of the bucket holding the ``rank``-th smallest latency (0-based)."""
        cumulative = np.cumsum(self.counts)
        return int(self.keys[int(np.searchsorted(cumulative, rank, side="right"))])

    def _rank(self, q: float) -> int:
        """0-based `QUANTILE_METHOD` (inverted_cdf) rank of the q-quantile: ⌈n·q⌉ − 1, clipped."""
        _check_q(q)
        return min(max(math.ceil(self.n * q) - 1, 0), self.n - 1)

    def quantile(self, q: float) -> float:
        """The q-quantile (NaN when empty): within α of the exact sample quantile."""
        if self.n == 0:
            _check_q(q)
            return math.nan
        return self.value(self._key_at(self._rank(q)))

    def interval(self, q: float, confidence: float = 0.95) -> QuantileInterval:
        """The q-quantile with its interval (see the module docstring); NaNs when empty, ±inf for a bound the
        sample cannot reach (a p95 upper bound needs about 59 latencies at 95%)."""
        if not 0 < confidence < 1:
            raise EventLogError(f"confidence={confidence!r} must be between 0 and 1, e.g. 0.95.")
        method = f"DDSketch alpha={self.alpha:g}"
        if self.n == 0:
            _check_q(q)
            return QuantileInterval(q, math.nan, math.nan, math.nan, 0, confidence, method)
        estimate = self.quantile(q)
        if q in (0.0, 1.0):
            low, high = (-math.inf, estimate) if q == 0 else (estimate, math.inf)
            return QuantileInterval(q, estimate, low, high, self.n, confidence, method)
        low_rank, high_rank = rank_interval(self.n, q, confidence)
        low = -math.inf if low_rank is None else self.edges(self._key_at(low_rank))[0]
        high = math.inf if high_rank is None else self.edges(self._key_at(high_rank))[1]
        return QuantileInterval(q, estimate, max(low, 0.0) if low_rank is not None else low, high, self.n,
                                confidence, method)

    def quantile_bucket(self, q: float) -> int:
        """The key of the bucket holding the q-quantile (the sketch must not be empty)."""
        if self.n == 0:
            raise EventLogError("an empty sketch has no quantiles; check LatencySketch.n first.")
        return self._key_at(self._rank(q))

    def tail_threshold(self, q: float = 0.95) -> float:
        """The upper edge of the q-quantile's bucket (within 2α of the quantile; NaN when empty). Latencies above
        it are exactly those in the higher buckets, so a count of them can be read from bucket counts alone —
        what the A/B read's latency-tail guardrail counts (`promptlab.production._experiment`)."""
        if self.n == 0:
            _check_q(q)
            return math.nan
        return self.edges(self.quantile_bucket(q))[1]

    def count_above(self, x: float) -> int:
        """Latencies certainly above ``x``: those in buckets whose lower edge is ≥ x. The bucket straddling x is
        left out, so this undercounts by at most that bucket (a tail test on it errs towards not firing)."""
        with np.errstate(over="ignore"):
            lower = np.where(self.keys == ZERO_KEY, -np.inf, gamma(self.alpha) ** (self.keys - 1.0))
        return int(self.counts[lower >= x].sum())

    def __repr__(self) -> str:
        if self.n == 0:
            return f"LatencySketch(n=0, alpha={self.alpha:g})"
        return (f"LatencySketch(n={self.n}, buckets={self.keys.size}, alpha={self.alpha:g}, "
                f"p50={self.quantile(0.5):.4g}s, p95={self.quantile(0.95):.4g}s)")


def _check_q(q: float) -> None:
    if not 0 <= q <= 1:
        raise EventLogError(f"q={q!r} is a quantile level and must be in [0, 1], e.g. 0.95 for p95.")


def group_sketches(buckets: pd.DataFrame, keys: Sequence[str],
                   alpha: float = DEFAULT_ALPHA) -> dict[tuple, LatencySketch]:
    """One sketch per group of a bucket table (group key columns, `KEY_COLUMN`, `COUNT_COLUMN`).

    Group values are returned as a tuple (a None key stays None); with no keys there is one group, ``()``.
    """
    if buckets.empty:
        return {}
    if not keys:
        return {(): LatencySketch.from_buckets(buckets[KEY_COLUMN].to_numpy(), buckets[COUNT_COLUMN].to_numpy(),
                                               alpha)}
    out = {}
    for key, part in buckets.groupby(list(keys), dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        clean = tuple(None if _missing(k) else k for k in key)
        out[clean] = LatencySketch.from_buckets(part[KEY_COLUMN].to_numpy(), part[COUNT_COLUMN].to_numpy(), alpha)
    return out


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def merge_all(sketches: Iterable[LatencySketch], alpha: float = DEFAULT_ALPHA) -> LatencySketch:
    """The merge of several sketches (an empty sketch when there are none)."""
    parts = list(sketches)
    return parts[0].merge(*parts[1:]) if parts else LatencySketch.empty(alpha)
