"""Multiplicity: Bonferroni's and Holm's family-wise and Benjamini–Hochberg's false-discovery adjustments of
p-values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as st

from ..errors import StatsError


def _checked(pvalues: Sequence[float], name: str) -> tuple[np.ndarray, np.ndarray]:
    """The p-values as floats and the mask of the ones in the family (NaNs are left out); p outside [0, 1]
    raises."""
    p = np.asarray(pvalues, dtype=float)
    ok = ~np.isnan(p)
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise StatsError(f"{name} got p-values outside [0, 1]: {p[ok][(p[ok] < 0) | (p[ok] > 1)].tolist()!r}.")
    return p, ok


def bonferroni(pvalues: Sequence[float]) -> np.ndarray:
    """Bonferroni-adjusted p-values: ``min(1, m·p)`` over the m p-values in the family (NaNs stay NaN and are
    left out of m).

    Family-wise error control under any dependence, like `holm`, which rejects everything Bonferroni rejects
    and sometimes more; Bonferroni's single step is what makes simultaneous intervals at 1 − α/m agree with
    it. Reference: ``statsmodels.stats.multitest.multipletests(p, method="bonferroni")[1]``.
    """
    p, ok = _checked(pvalues, "bonferroni")
    out = np.full(p.shape, np.nan)
    out[ok] = np.minimum(p[ok] * int(ok.sum()), 1.0)
    return out


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control; valid under any dependence).

    NaNs stay NaN and are left out of the family. Reference:
    ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``.
    """
    p, ok = _checked(pvalues, "holm")
    out = np.full(p.shape, np.nan)
    if not ok.any():
        return out
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
    p, ok = _checked(pvalues, "benjamini_hochberg")
    out = np.full(p.shape, np.nan)
    if ok.any():
        out[ok] = st.false_discovery_control(p[ok], method="bh")
    return out
