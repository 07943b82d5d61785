"""Multiplicity: Holm's family-wise and Benjamini–Hochberg's false-discovery adjustments of p-values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as st

from ..errors import StatsError


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
