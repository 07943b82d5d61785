"""Planning: sample size, minimum detectable effect and power, for online A/B tests and paired offline evals.

Two independent proportions (online, pooled null; docs/statistics.md §5)::

    n per arm = [z_{1−α/2}·sqrt(2p̄(1−p̄)) + z_{1−β}·sqrt(p1(1−p1) + p2(1−p2))]² / (p2 − p1)²,  p̄ = (p1+p2)/2

Paired (offline: both variants answer the same cases), with ω² = Var(s_B − s_A) from a pilot::

    n = (z_{1−α/2} + z_{1−β})² · ω² / δ²      and its inverse, the smallest detectable difference
    δ_min = (z_{1−α/2} + z_{1−β}) · sqrt(ω²/n)

Sizes are rounded up. One-sided designs (``alternative="one-sided"``) use z_{1−α}; declare them in advance.

Power at a given size (`power_two_proportions`, `power_paired`) counts both rejection tails of a two-sided
test. Two other designs are there because statsmodels has them and users ask for them: proportions on
Cohen's arcsine scale h = 2·asin√p2 − 2·asin√p1 (``method="arcsine"``; statsmodels ``NormalIndPower`` with
``proportion_effectsize``), and the paired t test (``test="t"``: the noncentral t of statsmodels
``TTestPower``), a little larger than the z plan at small n.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as st

from ..errors import StatsError

_SIDES = ("two-sided", "one-sided")
PROPORTION_PLANS = ("pooled", "arcsine")
"""Designs for two proportions: the pooled z-test (Fleiss; the default) or Cohen's arcsine effect size h."""
PAIRED_TESTS = ("z", "t")
"""Tests a paired plan assumes: the normal approximation (the default) or the paired t."""


def _z_sum(alpha: float, power: float, alternative: str) -> tuple[float, float]:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise StatsError(f"need 0 < alpha < 1 and 0 < power < 1; got alpha={alpha!r}, power={power!r}.")
    if alternative not in _SIDES:
        raise StatsError(f"alternative={alternative!r} is not one of {_SIDES!r}.")
    z_alpha = st.norm.isf(alpha / 2 if alternative == "two-sided" else alpha)
    return float(z_alpha), float(st.norm.ppf(power))


def _check_rate(name: str, p: float) -> None:
    if not 0 <= p <= 1:
        raise StatsError(f"{name}={p!r} is a proportion and must be in [0, 1].")


def _n_two_proportions(p1: float, p2: float, z_alpha: float, z_beta: float) -> float:
    pbar = (p1 + p2) / 2
    spread = z_alpha * math.sqrt(2 * pbar * (1 - pbar)) + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return spread ** 2 / (p2 - p1) ** 2


def sample_size_two_proportions(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8, *,
                                alternative: str = "two-sided", method: str = "pooled") -> int:
    """Units per arm to detect p1 → p2 with a pooled two-proportion z-test (rounded up).

    Reference: 0.20 → 0.22 at α 0.05 two-sided, power 0.8 → 6510; 0.10 → 0.12 → 3841 (statsmodels
    ``samplesize_proportions_2indep_onetail(0.02, 0.20, 0.8, alternative='two-sided')`` = 6509.47, rounded up).
    ``method="arcsine"`` plans on Cohen's h instead: statsmodels ``NormalIndPower().solve_power(
    effect_size=proportion_effectsize(p2, p1), alpha=alpha, power=power, ratio=1)``, rounded up.
    """
    _check_rate("p1", p1)
    _check_rate("p2", p2)
    _check_plan(method)
    if p1 == p2:
        raise StatsError(f"p1 and p2 are both {p1!r}: no difference to detect. "
                         "Pass the rate you hope to reach as p2.")
    z_alpha, z_beta = _z_sum(alpha, power, alternative)
    if method == "arcsine":
        return _solve_n(lambda n: power_two_proportions(p1, p2, n, alpha, alternative=alternative,
                                                        method="arcsine"), power)
    return math.ceil(_n_two_proportions(p1, p2, z_alpha, z_beta) - 1e-9)


def _check_plan(method: str) -> None:
    if method not in PROPORTION_PLANS:
        raise StatsError(f"method={method!r} is not one of {PROPORTION_PLANS!r}.")


def _normal_power(shift: float, z_alpha: float, spread: float, alternative: str) -> float:
    """P(reject) of a z-test whose statistic is N(shift, spread²) under the alternative, with critical value
    z_alpha: both tails when two-sided, the one in the effect's direction when one-sided."""
    upper = float(st.norm.sf((z_alpha - shift) / spread))
    if alternative == "one-sided":
        return upper
    return upper + float(st.norm.cdf((-z_alpha - shift) / spread))


def _solve_n(power_at: Callable[[float], float], power: float) -> int:
    """The smallest whole n whose power reaches ``power`` (power grows with n): a root on the continuous
    power curve, rounded up — statsmodels' ``solve_power`` gives the unrounded root."""
    high = 2.0
    while power_at(high) < power:
        high *= 2
        if high > 1e15:
            raise StatsError("no sample size reaches that power; is the effect 0?")
    root = optimize.brentq(lambda n: power_at(n) - power, 1e-9 if high == 2.0 else high / 2, high, xtol=1e-10,
                           rtol=1e-14)
    return max(1, math.ceil(root - 1e-9))


def power_two_proportions(p1: float, p2: float, n_per_arm: float, alpha: float = 0.05, *,
                          alternative: str = "two-sided", method: str = "pooled") -> float:
    """Power of a two-proportion test with ``n_per_arm`` units in each arm to detect p1 → p2.

    ``method="pooled"``: the z-test with the pooled variance under the null (the test of
    `sample_size_two_proportions`), power = Φ((|Δ|√n − z_α·sqrt(2p̄(1 − p̄)))/sqrt(p1(1 − p1) + p2(1 − p2)))
    plus the far tail when two-sided — statsmodels ``power_proportions_2indep(p2 − p1, p1, n_per_arm)``.
    ``method="arcsine"``: Cohen's h, power of ``NormalIndPower().power(proportion_effectsize(p2, p1),
    n_per_arm, alpha)``. One-sided designs count the tail in the direction of p2 − p1.
    """
    _check_rate("p1", p1)
    _check_rate("p2", p2)
    _check_plan(method)
    if not n_per_arm > 0:
        raise StatsError(f"n_per_arm={n_per_arm!r} must be > 0.")
    z_alpha, _ = _z_sum(alpha, 0.5, alternative)
    if method == "arcsine":
        h = 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))
        return _normal_power(abs(h) * math.sqrt(n_per_arm / 2), z_alpha, 1.0, alternative)
    pbar = (p1 + p2) / 2
    null_sd, alt_sd = math.sqrt(2 * pbar * (1 - pbar)), math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    if alt_sd == 0:  # 0 → 1: every unit shows the change
        return 1.0 if p1 != p2 else alpha
    return _normal_power(abs(p2 - p1) * math.sqrt(n_per_arm) / null_sd, z_alpha, alt_sd / null_sd, alternative)


def mde_two_proportions(p_base: float, n_per_arm: int, alpha: float = 0.05, power: float = 0.8, *,
                        alternative: str = "two-sided", direction: str = "increase") -> float:
    """Minimum detectable effect: the smallest absolute change from ``p_base`` that ``n_per_arm`` units per
    arm detect with the given power (inverse of `sample_size_two_proportions`).

    Returns ``inf`` when no change within [0, 1] is detectable with that many units.

    Args:
        p_base: the baseline rate.
        n_per_arm: units per arm.
        alpha, power: test level and power.
        alternative: ``"two-sided"`` or ``"one-sided"``.
        direction: ``"increase"`` (p_base + δ) or ``"decrease"`` (p_base − δ).
    """
    _check_rate("p_base", p_base)
    if direction not in ("increase", "decrease") or n_per_arm <= 0:
        raise StatsError(f"need direction in ('increase', 'decrease') and n_per_arm > 0; got "
                         f"{direction!r}, {n_per_arm!r}.")
    z_alpha, z_beta = _z_sum(alpha, power, alternative)
    sign, room = (1, 1 - p_base) if direction == "increase" else (-1, p_base)
    if room <= 0:
        return math.inf

    def gap(delta: float) -> float:
        return _n_two_proportions(p_base, p_base + sign * delta, z_alpha, z_beta) - n_per_arm

    if gap(room) > 0:
        return math.inf
    return float(optimize.brentq(gap, 1e-12, room, xtol=1e-12))


def sample_size_paired(omega2: float, delta: float, alpha: float = 0.05, power: float = 0.8, *,
                       alternative: str = "two-sided", test: str = "z") -> int:
    """Cases needed for a paired comparison: ``n = (z_{1−α/2} + z_{1−β})² · ω² / δ²`` (rounded up).

    Args:
        omega2: Var(s_B − s_A) per case, from a pilot (see `paired_plan_from_pilot`).
        delta: the difference worth detecting (same units as the scores).
        alpha, power: test level and power.
        alternative: ``"two-sided"`` or ``"one-sided"``.

    Reference: ω² = 0.1161, δ = 0.03 → 1013 (statsmodels
    ``NormalIndPower().solve_power(effect_size=0.03 / sqrt(0.1161), power=0.8, ratio=0)`` = 1012.5, rounded up).
    ``test="t"`` plans for the paired t test: the smallest n whose `power_paired` (noncentral t) reaches
    ``power`` — statsmodels ``TTestPower().solve_power(effect_size=δ/ω, alpha=alpha, power=power)``, rounded up.
    """
    if omega2 < 0 or delta == 0:
        raise StatsError(f"need omega2 >= 0 and delta != 0; got omega2={omega2!r}, delta={delta!r}.")
    _check_test(test)
    z_alpha, z_beta = _z_sum(alpha, power, alternative)
    if test == "t":
        if omega2 == 0:
            return 2
        return max(2, _solve_n(lambda n: power_paired(max(n, 1.0 + 1e-9), omega2, delta, alpha,
                                                      alternative=alternative, test="t"), power))
    return max(1, math.ceil((z_alpha + z_beta) ** 2 * omega2 / delta ** 2 - 1e-9))


def _check_test(test: str) -> None:
    if test not in PAIRED_TESTS:
        raise StatsError(f"test={test!r} is not one of {PAIRED_TESTS!r}.")


def power_paired(n: float, omega2: float, delta: float, alpha: float = 0.05, *, alternative: str = "two-sided",
                 test: str = "z") -> float:
    """Power of a paired comparison of ``n`` cases to detect a mean difference ``delta`` when Var(s_B − s_A)
    per case is ``omega2``.

    ``test="z"``: Φ(|δ|·√n/ω − z_α) plus the far tail when two-sided — statsmodels ``NormalIndPower().power(
    δ/ω, n, alpha, ratio=0)``. ``test="t"``: the noncentral t with n − 1 degrees of freedom and noncentrality
    |δ|·√n/ω — statsmodels ``TTestPower().power(δ/ω, n, alpha)``. One-sided designs count the tail in the
    direction of δ.
    """
    _check_test(test)
    if omega2 < 0 or not n > 0:
        raise StatsError(f"need omega2 >= 0 and n > 0; got omega2={omega2!r}, n={n!r}.")
    z_alpha, _ = _z_sum(alpha, 0.5, alternative)
    if omega2 == 0:
        return 1.0 if delta != 0 else alpha
    shift = abs(delta) * math.sqrt(n / omega2)
    if test == "z":
        return _normal_power(shift, z_alpha, 1.0, alternative)
    if n <= 1:
        raise StatsError(f"a paired t test needs n > 1 cases; got n={n!r}.")
    df, tail = n - 1, alpha / 2 if alternative == "two-sided" else alpha
    crit = float(st.t.isf(tail, df))
    power = float(st.nct.sf(crit, df, shift))
    if alternative == "one-sided":
        return power
    far = float(st.nct.cdf(-crit, df, shift))
    # the far tail is below 1e-14 wherever scipy's noncentral t returns NaN for it (large noncentrality)
    return power + (0.0 if math.isnan(far) else far)


def smallest_detectable_difference(n: int, omega2: float, alpha: float = 0.05, power: float = 0.8, *,
                                   alternative: str = "two-sided") -> float:
    """The smallest paired difference ``n`` cases detect with the given power: (z_α + z_β)·sqrt(ω²/n).

    ``inf`` for n = 0. Used for the power note of `promptlab.stats._comparison.compare`.
    """
    if omega2 < 0:
        raise StatsError(f"omega2={omega2!r} is a variance and must be >= 0.")
    z_alpha, z_beta = _z_sum(alpha, power, alternative)
    return math.inf if n <= 0 else (z_alpha + z_beta) * math.sqrt(omega2 / n)


@dataclass(frozen=True)
class PairedPlan:
    """A paired sample-size plan from a pilot run.

    Attributes:
        n: cases needed (rounded up).
        omega2: Var(s_B − s_A) estimated from the pilot (ddof = 1).
        delta: the difference to detect.
        alpha, power: test level and power.
        n_pilot: complete pilot pairs used.
        pilot_diff: the pilot's mean difference (an estimate, not the plan's target).
        correlation: Pearson r between the arms in the pilot (NaN if an arm is constant).
    """

    n: int
    omega2: float
    delta: float
    alpha: float
    power: float
    n_pilot: int
    pilot_diff: float
    correlation: float


def paired_plan_from_pilot(scores_a: Sequence[float], scores_b: Sequence[float], delta: float,
                           alpha: float = 0.05, power: float = 0.8) -> PairedPlan:
    """Plan a paired eval from a pilot: ω² = Var(s_B − s_A) (ddof = 1), then `sample_size_paired`.

    Pairs with a NaN on either side are dropped. Needs at least 2 complete pairs.
    """
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape:
        raise StatsError(f"pilot scores need one value per case on both sides; got {a.size} and {b.size}.")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if a.size < 2:
        raise StatsError(f"the pilot has {a.size} complete pairs; run at least 2 (20+ is sensible).")
    d = b - a
    omega2 = float(d.var(ddof=1))
    r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else math.nan
    n = sample_size_paired(omega2, delta, alpha, power)
    return PairedPlan(n, omega2, delta, alpha, power, int(a.size), float(d.mean()), r)
