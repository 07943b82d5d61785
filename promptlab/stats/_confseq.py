"""One-sided confidence sequences: a bound on one side of an effect that holds at every look.

Owns the one-sided normal mixture of Howard, Ramdas, McAuliffe & Sekhon (2021, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", Annals of Statistics 49; section 3.5, the one-sided normal mixture):
mixing the Gaussian martingale exp(λS − λ²V/2) over a half-normal λ ≥ 0 gives, in closed form,

    log M(s, v) = ½·ln(4ρ/(v + ρ)) + s²/(2(v + ρ)) + ln Φ(s/√(v + ρ))

(S the sum, V its intrinsic time), and the boundary b(v) is the s where M reaches 1/α (found by root
finding: M grows with s). ρ is tuned so the boundary is tightest at intrinsic time ``v_opt`` for
α_opt: ρ = v_opt/(−2 ln(2α_opt) + ln(1 − 2 ln(2α_opt))), the two-sided choice at 2α. These are the
definitions of the confseq package (``normal_log_mixture``, ``normal_mixture_bound`` with ``is_one_sided``).

For an asymptotically normal estimate θ̂ with Var(θ̂) = v over N units (the always-valid test's inputs in
`promptlab.stats._sequential`), the process is S = (θ̂ − θ)·sqrt(N/v) at intrinsic time N, and the tuning S of
the two-sided test (GrowthBook's "expected sample size") is ``v_opt``. The lower sequence is
θ ≥ θ̂ − b(N)·sqrt(v/N) at every look with probability ≥ 1 − α, and its always-valid p for "θ ≤ 0" is
min(1, 1/M(θ̂·sqrt(N/v), N)), running minimum over looks. One-sided bounds are valid only when the side was
declared before the data were seen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from ..errors import StatsError
from ._sequential import DEFAULT_TUNING

SIDES = ("lower", "upper")
"""``"lower"``: a lower bound on B − A (is B better?); ``"upper"``: an upper bound (is B no worse?)."""
ONE_SIDED_COLUMNS = ["look", "n", "estimate", "variance", "p_look", "p_value", "bound"]
"""Columns of the per-look frame of `one_sided_sequence`: ``bound`` is that look's own bound."""


@dataclass(frozen=True)
class OneSidedResult:
    """A one-sided always-valid read.

    Attributes:
        estimate: θ̂ (e.g. p_B − p_A).
        variance: Var(θ̂).
        n: units in both arms.
        side: ``"lower"`` or ``"upper"``.
        bound: the confidence sequence's bound at this look (−inf / +inf without variance).
        p_value: always-valid p of "θ ≤ 0" (side lower) or "θ ≥ 0" (side upper).
        alpha: the sequence's error rate (one-sided).
        tuning: the sample size the boundary is tightest at.
    """

    estimate: float
    variance: float
    n: int
    side: str
    bound: float
    p_value: float
    alpha: float
    tuning: float

    @property
    def significant(self) -> bool:
        """The bound excludes 0 on its side (equivalently p_value < alpha)."""
        return self.p_value < self.alpha


def _check(alpha: float, v_opt: float) -> None:
    if not 0 < alpha < 0.5 or not v_opt > 0:
        raise StatsError(f"need 0 < alpha < 0.5 and a positive tuning; got alpha={alpha!r}, tuning={v_opt!r}.")


def one_sided_rho(v_opt: float, alpha_opt: float = 0.05) -> float:
    """The half-normal mixture's ρ that makes the boundary tightest at intrinsic time ``v_opt``."""
    _check(alpha_opt, v_opt)
    log_term = -2 * math.log(2 * alpha_opt)
    return v_opt / (log_term + math.log(1 + log_term))


def one_sided_log_mixture(s: float, v: float, v_opt: float, alpha_opt: float = 0.05) -> float:
    """log M(s, v) of the one-sided normal mixture (module docstring); confseq ``normal_log_mixture(s, v,
    v_opt, alpha_opt, is_one_sided=True)``. Its published test value: (10, 100, 100) → −0.06502391."""
    rho = one_sided_rho(v_opt, alpha_opt)
    return (0.5 * math.log(4 * rho / (v + rho)) + s * s / (2 * (v + rho))
            + float(special.log_ndtr(s / math.sqrt(v + rho))))


def one_sided_boundary(v: float, alpha: float, v_opt: float, alpha_opt: float = 0.05) -> float:
    """The s at which the one-sided mixture reaches 1/α at intrinsic time ``v``: crossing it at any time has
    probability ≤ α under the null. confseq ``normal_mixture_bound(v, alpha, v_opt, alpha_opt,
    is_one_sided=True)``; its published test value: (100, 0.05, 100) → 27.66071."""
    _check(alpha, v_opt)
    if not v > 0:
        raise StatsError(f"intrinsic time v={v!r} must be > 0.")
    target = math.log(1 / alpha)

    def gap(s: float) -> float:
        return one_sided_log_mixture(s, v, v_opt, alpha_opt) - target

    high = math.sqrt(v + one_sided_rho(v_opt, alpha_opt)) * 4
    while gap(high) < 0:  # M grows with s: widen until the root is bracketed
        high *= 2
    return float(optimize.brentq(gap, 0.0, high, xtol=1e-12, rtol=1e-14))


def _one_look(estimate: float, variance: float, n: float, side: str, alpha: float,
              tuning: float) -> tuple[float, float]:
    """(p, bound) at one look; a look without variance or units gives p 1 and an unbounded side."""
    if not (variance > 0 and n > 0):
        return 1.0, -math.inf if side == "lower" else math.inf
    scale = math.sqrt(variance / n)
    s = (estimate if side == "lower" else -estimate) / scale
    log_m = one_sided_log_mixture(s, n, tuning, alpha)
    p = min(1.0, math.exp(-log_m)) if log_m > -700 else 1.0
    half = one_sided_boundary(n, alpha, tuning, alpha) * scale
    return p, estimate - half if side == "lower" else estimate + half


def one_sided_sequence(estimate: float | Sequence[float], variance: float | Sequence[float],
                       n: int | Sequence[int], *, side: str = "lower", alpha: float = 0.05,
                       tuning: float = DEFAULT_TUNING) -> OneSidedResult | pd.DataFrame:
    """One-sided always-valid bound and p for an asymptotically normal estimate, at one look or every look.

    The one-sided counterpart of `promptlab.stats.always_valid` (same inputs): ``side="lower"`` bounds B − A
    from below ("B is better by at least …"; p tests θ ≤ 0), ``side="upper"`` from above ("B is worse by at
    most …", a non-inferiority read; p tests θ ≥ 0). At the same α the one-sided bound is tighter than the
    two-sided sequence's, which spends α on both sides. Scalars give one `OneSidedResult`; sequences (one entry
    per look, in time order) give a frame with `ONE_SIDED_COLUMNS`, ``p_value`` the running minimum.

    Args:
        estimate: θ̂ per look.
        variance: Var(θ̂) per look.
        n: units in both arms per look.
        side: ``"lower"`` or ``"upper"`` — declared before the data are seen.
        alpha: one-sided error rate (below 0.5).
        tuning: the sample size the boundary is tightest at (default 5,000, as the two-sided test).
    """
    if side not in SIDES:
        raise StatsError(f"side={side!r} is not one of {SIDES!r}.")
    _check(alpha, tuning)
    theta = np.atleast_1d(np.asarray(estimate, dtype=float))
    var, size = np.atleast_1d(np.asarray(variance, dtype=float)), np.atleast_1d(np.asarray(n, dtype=float))
    if not theta.shape == var.shape == size.shape or theta.ndim != 1:
        raise StatsError(f"estimate, variance and n need one value per look; got lengths {theta.size}, "
                         f"{var.size} and {size.size}.")
    looks = [_one_look(t, v, m, side, alpha, tuning) for t, v, m in zip(theta, var, size, strict=True)]
    p = np.array([look[0] for look in looks])
    bound = np.array([look[1] for look in looks])
    if np.ndim(estimate) == 0:
        return OneSidedResult(float(theta[0]), float(var[0]), int(size[0]), side, float(bound[0]), float(p[0]),
                              alpha, tuning)
    return pd.DataFrame({"look": np.arange(1, theta.size + 1), "n": size.astype(np.int64), "estimate": theta,
                         "variance": var, "p_look": p, "p_value": np.minimum.accumulate(p), "bound": bound})
