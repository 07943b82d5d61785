"""Argument checks and normal-distribution helpers shared by the statistics modules.

Conventions every statistics module follows:

* Two arms are ``A`` (baseline, control) and ``B`` (variant, treatment); every difference is **B − A**, so a
  positive difference means B is higher.
* ``alternative`` is ``"two-sided"`` (the default), ``"greater"`` (B > A) or ``"less"`` (B < A). Declare a
  one-sided test before looking at the data, or do not use one.
* Tail probabilities come from ``sf`` (survival functions), never ``1 - cdf``, which loses precision.
* Every function takes counts, sums or plain arrays (never a results frame), so the aggregation can run where
  the data lives and only the aggregates come here; results are frozen dataclasses. The methods and reference
  values are in ``docs/statistics.md``.
"""

from __future__ import annotations

from scipy import stats as st

from ..errors import StatsError

ALTERNATIVES = ("two-sided", "greater", "less")


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
