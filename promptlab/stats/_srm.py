"""Sequential sample-ratio-mismatch test: an SRM check that may be read at every look.

Owns the Dirichlet-multinomial Bayes factor of Lindon & Malek (2022, "Anytime-valid inference for
multinomial count data", NeurIPS; the SRM test Optimizely ships as ``ssrm-test``). Under the null the units
land in the arms with the planned probabilities p₀; the alternative puts a Dirichlet(α) prior on them, with
mean p₀ and concentration c (α = c·p₀; c = 10,000 by default, ssrm-test's choice). With x the cumulative
units per arm, N = Σx and A = Σα the Bayes factor has the closed form

    ln BF = ln Γ(A) − ln Γ(A + N) + Σ_k [ln Γ(α_k + x_k) − ln Γ(α_k)] − Σ_k x_k ln p₀_k

(the multinomial coefficient cancels), which is the product of the one-unit-at-a-time posterior predictive
ratios, so reading it after every unit or after every hour gives the same value. Under the null BF is a
nonnegative martingale with mean 1, so by Ville's inequality P(BF ever reaches 1/α) ≤ α: the always-valid
p-value min(1, 1/BF), running minimum over looks, may be compared with α at every look. The fixed χ² check
(`promptlab.stats.srm_check`) stays beside it; it is valid once, at a planned size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as st

from ..errors import StatsError
from ._sequential import SRM_THRESHOLD

DEFAULT_CONCENTRATION = 10_000.0
"""Concentration c of the Dirichlet prior around the planned split (ssrm-test's default)."""
SRM_LOOK_COLUMNS = ["look", "n", "log_bayes_factor", "p_look", "p_value", "chi2_p"]
"""Columns of `SequentialSRM.looks`: ``p_value`` is the running minimum; ``chi2_p`` the fixed χ² p at that look
(only valid once, shown for comparison)."""


@dataclass(frozen=True)
class SequentialSRM:
    """The sequential SRM read over the looks so far.

    Attributes:
        observed: units per arm at the last look.
        expected_shares: the planned shares p₀.
        log_bayes_factor: ln BF at the last look (evidence for a mismatch; 0 = none either way).
        p_value: always-valid p, min(1, 1/BF) running minimum over the looks.
        threshold: the p below which the split is flagged (`promptlab.stats.SRM_THRESHOLD`).
        concentration: the Dirichlet prior's concentration c.
        looks: one row per look (`SRM_LOOK_COLUMNS`).
    """

    observed: tuple[int, ...]
    expected_shares: tuple[float, ...]
    log_bayes_factor: float
    p_value: float
    threshold: float
    concentration: float
    looks: pd.DataFrame

    @property
    def mismatch(self) -> bool:
        """p_value < threshold: the split is off at some look, however often anyone looked."""
        return self.p_value < self.threshold

    @property
    def message(self) -> str:
        """One sentence for the report."""
        n_looks = len(self.looks)
        if self.mismatch:
            return (f"sequential SRM: mismatch (always-valid p = {self.p_value:.2g} < {self.threshold} over "
                    f"{n_looks} looks)")
        return f"sequential SRM: none (always-valid p = {self.p_value:.3g} over {n_looks} looks)"


def _shares(weights: Sequence[float] | None, k: int) -> np.ndarray:
    w = np.ones(k) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (k,) or not np.isfinite(w).all() or (w <= 0).any():
        raise StatsError(f"sequential_srm needs one positive weight per arm ({k} arms); got {weights!r}.")
    return w / w.sum()


def _counts(counts: Sequence[int] | Sequence[Sequence[int]]) -> np.ndarray:
    """Cumulative units per look × arm (one look when a flat list is given)."""
    x = np.asarray(counts, dtype=float)
    x = x[None, :] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[1] < 2 or not np.isfinite(x).all() or (x < 0).any() or (x != np.round(x)).any():
        raise StatsError(f"sequential_srm needs whole, non-negative unit counts for >= 2 arms, one row per look; "
                         f"got {np.asarray(counts).tolist()!r}.")
    if (np.diff(x, axis=0) < 0).any():
        raise StatsError("sequential_srm reads cumulative counts: a later look has fewer units in an arm than an "
                         "earlier one. Pass running totals, not per-window counts.")
    return x


def log_bayes_factor(counts: Sequence[int] | np.ndarray, shares: Sequence[float],
                     concentration: float = DEFAULT_CONCENTRATION) -> float | np.ndarray:
    """ln BF of "the split is off" against "the split is as planned" for cumulative unit counts (module
    docstring); 0 with no units. A 2-D array (looks × arms) gives one value per look."""
    x, p = np.asarray(counts, dtype=float), np.asarray(shares, dtype=float)
    prior = concentration * p
    log_bf = (special.gammaln(prior.sum()) - special.gammaln(prior.sum() + x.sum(axis=-1))
              + np.sum(special.gammaln(prior + x) - special.gammaln(prior), axis=-1) - np.sum(x * np.log(p), axis=-1))
    return float(log_bf) if np.ndim(log_bf) == 0 else log_bf


def sequential_srm(counts: Sequence[int] | Sequence[Sequence[int]], weights: Sequence[float] | None = None, *,
                   threshold: float = SRM_THRESHOLD,
                   concentration: float = DEFAULT_CONCENTRATION) -> SequentialSRM:
    """Always-valid sample-ratio-mismatch test (Lindon & Malek 2022) on cumulative unit counts.

    Args:
        counts: units per arm — one list (a single look) or one row per look, cumulative, in time order.
        weights: planned traffic shares (any scale); equal by default.
        threshold: flag when the always-valid p falls below it (0.001, as the χ² check).
        concentration: the Dirichlet prior's concentration around the planned split (10,000); smaller values
            detect gross mismatches sooner and slight ones later.

    Counted on distinct units when the events carry them (a unit's first look), else on calls, as `srm_check`.
    """
    x = _counts(counts)
    p = _shares(weights, x.shape[1])
    if not 0 < threshold < 1 or not concentration > 0:
        raise StatsError(f"need 0 < threshold < 1 and concentration > 0; got {threshold!r}, {concentration!r}.")
    log_bf = np.atleast_1d(log_bayes_factor(x, p, concentration))
    p_look = np.minimum(1.0, np.exp(-np.clip(log_bf, -700, 700)))
    chi2 = _chi2_p(x, p)
    looks = pd.DataFrame({"look": np.arange(1, len(x) + 1), "n": x.sum(axis=1).astype(np.int64),
                          "log_bayes_factor": log_bf, "p_look": p_look,
                          "p_value": np.minimum.accumulate(p_look), "chi2_p": chi2})
    return SequentialSRM(tuple(int(v) for v in x[-1]), tuple(float(s) for s in p), float(log_bf[-1]),
                         float(looks["p_value"].iloc[-1]), threshold, float(concentration), looks)


def _chi2_p(x: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """The fixed χ² p of each look (scipy ``chisquare`` row by row, as `srm_check`), 1 at a look with no
    units — for the comparison column."""
    total = x.sum(axis=1)
    seen = total > 0
    out = np.ones(len(x))
    if seen.any():
        out[seen] = st.chisquare(x[seen], shares * total[seen, None], axis=1).pvalue
    return out
