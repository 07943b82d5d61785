"""Bayesian reads of a comparison: GrowthBook's Gaussian effect model and a Beta-Binomial read of pass rates.

**Gaussian effect** (`bayesian_effect`, `bayesian_proportions`) — GrowthBook's engine (gbstats 0.8.0
``EffectBayesianABTest``): the data give the effect δ̂ (relative lift (m_B − m_A)/m_A by default, or the absolute
difference) with its delta-method variance v (`promptlab.stats._lift.relative_variance`). With the improper flat
prior (the default) the posterior is N(δ̂, v); with a proper `GaussianPrior` N(μ₀, σ₀²) it is the precision-
weighted normal, precision 1/v + 1/σ₀², mean (δ̂/v + μ₀/σ₀²)/precision. From the posterior N(μ, σ²):

* chance to win  P(δ > 0) = Φ(μ/σ)                 (``inverse=True``: a lower metric is better, P(δ < 0))
* credible interval  μ ± z·σ (equal-tailed)
* risk (expected loss) of shipping the control  E[max(δ, 0)] = μΦ(μ/σ) + σφ(μ/σ); of the treatment E[max(−δ, 0)]

**Beta-Binomial** (`beta_binomial`) — for pass/fail: each arm's pass rate gets a Beta(α + passes, β + fails)
posterior (uniform prior by default), independently. Chance to beat P(p_B > p_A) = ∫ f_B(x)F_A(x) dx, the
credible interval of p_B − p_A from the CDF P(p_B − p_A ≤ d) = ∫ f_A(y)F_B(y + d) dy, and risk E[max(p_B − p_A, 0)]
= ∫ f_A(y)(m_B·S_B⁺(y) − y·S_B(y)) dy, with S the survival function and B⁺ = Beta(α_B + 1, β_B) — all by
one-dimensional tanh-sinh quadrature over the quantiles of the narrower posterior.

"95% chance to win" is not protected against peeking: the posterior is computed as if the data were read once.
Watched every day and stopped when it first crosses 95%, it crosses far more often than 5% under no effect. The
always-valid read (`promptlab.stats.always_valid`) is the one to watch; the Bayesian read is a description.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special
from scipy import stats as st

from ..errors import StatsError
from ._checks import _check_confidence, _check_counts
from ._lift import relative_variance

SCALES = ("relative", "absolute")


# ---- priors --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianPrior:
    """A proper normal prior on the effect, N(mean, variance) — GrowthBook's ``GaussianPrior(proper=True)``.

    Without one the prior is GrowthBook's default, improper and flat: the posterior is the data's normal.

    Attributes:
        mean: prior mean of the effect (0: no expected change).
        variance: prior variance; on the relative scale 0.3² says "lifts beyond ±60% are unlikely".
        scale: ``"relative"`` (the prior is on the lift, the default) or ``"absolute"`` (on m_B − m_A); a
            prior on the other scale than the read is rescaled by the control mean, as gbstats does.
    """

    mean: float = 0.0
    variance: float = 0.09
    scale: str = "relative"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.variance) and self.variance > 0):
            raise StatsError(f"GaussianPrior needs a finite mean and a positive variance; got mean={self.mean!r}, "
                             f"variance={self.variance!r}. E.g. GaussianPrior(0, 0.3 ** 2).")
        if self.scale not in SCALES:
            raise StatsError(f"GaussianPrior scale={self.scale!r} is not one of {SCALES!r}.")

    def on(self, relative: bool, control_mean: float) -> tuple[float, float]:
        """(mean, variance) on the read's scale: relative ↔ absolute through the control mean (gbstats' rule)."""
        if relative == (self.scale == "relative"):
            return self.mean, self.variance
        if relative:  # an absolute prior read on the lift
            return self.mean / abs(control_mean), self.variance / control_mean ** 2
        return self.mean * abs(control_mean), self.variance * control_mean ** 2


@dataclass(frozen=True)
class BetaPrior:
    """A Beta(alpha, beta) prior on a pass rate; Beta(1, 1) (uniform) by default, Beta(0.5, 0.5) is Jeffreys'."""

    alpha: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.alpha) and math.isfinite(self.beta) and self.alpha > 0 and self.beta > 0):
            raise StatsError(f"BetaPrior needs alpha > 0 and beta > 0; got alpha={self.alpha!r}, "
                             f"beta={self.beta!r}. BetaPrior() is uniform, BetaPrior(0.5, 0.5) Jeffreys'.")


# ---- the Gaussian effect model ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BayesianRead:
    """GrowthBook's Bayesian read of B against A (NaN throughout when it cannot be computed; see ``note``).

    Attributes:
        effect: posterior mean of the effect (relative lift, or absolute difference: ``relative``).
        sd: its posterior standard deviation.
        ci_low, ci_high: the equal-tailed credible interval at ``credibility``.
        chance_to_win: P(B is better than A) under the posterior.
        risk_control: expected loss of keeping A (E[max(δ, 0)], in the effect's units).
        risk_treatment: expected loss of shipping B (E[max(−δ, 0)]).
        relative: True when ``effect`` is the lift over A, False for B − A.
        credibility: the interval's posterior probability, e.g. 0.95.
        prior: ``"flat (improper)"`` or the proper prior in words.
        note: why the read is NA, empty otherwise.
    """

    effect: float
    sd: float
    ci_low: float
    ci_high: float
    chance_to_win: float
    risk_control: float
    risk_treatment: float
    relative: bool
    credibility: float
    prior: str
    note: str = ""


def _na_read(relative: bool, credibility: float, prior: str, note: str) -> BayesianRead:
    nan = math.nan
    return BayesianRead(nan, nan, nan, nan, nan, nan, nan, relative, credibility, prior, note)


def _prior_text(prior: GaussianPrior | None) -> str:
    if prior is None:
        return "flat (improper)"
    return f"N({prior.mean:g}, {prior.variance:g}) on the {prior.scale} effect"


def expected_positive_part(mu: float, sigma: float) -> float:
    """E[max(X, 0)] for X ~ N(mu, sigma²): mu·Φ(mu/sigma) + sigma·φ(mu/sigma) (sigma > 0)."""
    z = mu / sigma  # scipy.special's ufuncs: the same values as scipy.stats.norm, without its per-call overhead
    return float(mu * special.ndtr(z) + sigma * math.exp(-z * z / 2) / math.sqrt(2 * math.pi))


def gaussian_read(estimate: float, variance: float, *, relative: bool, prior: GaussianPrior | None = None,
                  control_mean: float = 1.0, credibility: float = 0.95, inverse: bool = False) -> BayesianRead:
    """The posterior read from an effect estimate and its variance (the engine `bayesian_effect` and CUPED use).

    Args:
        estimate: the data's effect δ̂ on the read's scale.
        variance: Var(δ̂) (> 0).
        relative: whether δ̂ is a relative lift (for the prior's rescaling and the read's label).
        prior: a proper `GaussianPrior`, or None for the flat prior.
        control_mean: the control's (unadjusted) mean, for rescaling a prior given on the other scale.
        credibility: the credible interval's probability.
        inverse: True when lower is better (errors, latency): chance to win is P(δ < 0), risks swap.
    """
    _check_confidence(credibility)
    text = _prior_text(prior)
    if not (math.isfinite(estimate) and math.isfinite(variance)) or variance <= 0:
        return _na_read(relative, credibility, text, f"no posterior: the effect {estimate!r} has variance "
                                                     f"{variance!r} (an arm without spread or without units)")
    if prior is None:
        mu, sd = estimate, math.sqrt(variance)
    else:
        m0, v0 = prior.on(relative, control_mean)
        precision = 1 / variance + 1 / v0
        mu, sd = (estimate / variance + m0 / v0) / precision, math.sqrt(1 / precision)
    half = float(special.ndtri(0.5 + credibility / 2)) * sd
    up, down = expected_positive_part(mu, sd), expected_positive_part(-mu, sd)
    win = float(special.ndtr(mu / sd)) if not inverse else float(special.ndtr(-mu / sd))  # P(δ > 0), P(δ < 0)
    risk_control, risk_treatment = (up, down) if not inverse else (down, up)
    return BayesianRead(mu, sd, mu - half, mu + half, win, risk_control, risk_treatment, relative, credibility,
                        text)


def bayesian_effect(mean_c: float, var_c: float, n_c: float, mean_t: float, var_t: float, n_t: float, *,
                    relative: bool = True, prior: GaussianPrior | None = None, credibility: float = 0.95,
                    inverse: bool = False) -> BayesianRead:
    """GrowthBook's Bayesian read of treatment vs control from per-arm mean, per-unit variance and units.

    Equals gbstats 0.8.0 ``EffectBayesianABTest(stat_a, stat_b, EffectBayesianConfig(...)).compute_result()``
    (chance_to_win, ci, expected, risk). An arm without units, or a relative read over a control mean of 0, or
    no spread at all gives an NA read with a ``note`` (gbstats returns 0.5 and zeros there; unknown is not 0.5).

    Args:
        mean_c, var_c, n_c: control mean, per-unit variance (p(1 − p) for a rate) and units.
        mean_t, var_t, n_t: the same for the treatment.
        relative: read the relative lift (default, GrowthBook's default) or the absolute difference.
        prior: None (flat, improper: GrowthBook's default) or a proper `GaussianPrior`.
        credibility: probability of the credible interval.
        inverse: True when lower is better.
    """
    for name, (mean, var, n) in {"control": (mean_c, var_c, n_c), "treatment": (mean_t, var_t, n_t)}.items():
        if not all(math.isfinite(x) for x in (mean, var, n)) or var < 0 or n < 0:
            raise StatsError(f"the {name} arm needs a finite mean, a variance >= 0 and n >= 0; got mean={mean!r}, "
                             f"var={var!r}, n={n!r}.")
    text = _prior_text(prior)
    if n_c == 0 or n_t == 0:
        return _na_read(relative, credibility, text, f"an arm has no units (n_c={n_c!r}, n_t={n_t!r})")
    if relative and mean_c == 0:
        return _na_read(relative, credibility, text, "the control mean is 0: a relative lift over 0 is unknown")
    if relative:
        estimate, variance = (mean_t - mean_c) / mean_c, relative_variance(mean_c, var_c, n_c, mean_t, var_t, n_t)
    else:
        estimate, variance = mean_t - mean_c, var_c / n_c + var_t / n_t
    return gaussian_read(estimate, variance, relative=relative, prior=prior, control_mean=mean_c,
                         credibility=credibility, inverse=inverse)


def bayesian_proportions(x_c: int, n_c: int, x_t: int, n_t: int, **options) -> BayesianRead:
    """`bayesian_effect` on two rates from counts (per-unit variance p(1 − p), gbstats' ``ProportionStatistic``)."""
    _check_counts(x_c, n_c, "x_c")
    _check_counts(x_t, n_t, "x_t")
    pc, pt = (x_c / n_c if n_c else 0.0), (x_t / n_t if n_t else 0.0)
    return bayesian_effect(pc, pc * (1 - pc), n_c, pt, pt * (1 - pt), n_t, **options)


# ---- Beta-Binomial for pass/fail ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BetaBinomialRead:
    """The Beta-Binomial read of two pass rates, B against A (independent posteriors).

    Attributes:
        rate_a, rate_b: posterior mean pass rates.
        diff: posterior mean of p_B − p_A.
        ci_low, ci_high: equal-tailed credible interval of p_B − p_A at ``credibility``.
        chance_to_beat: P(p_B > p_A).
        risk_a: expected loss of keeping A, E[max(p_B − p_A, 0)].
        risk_b: expected loss of choosing B, E[max(p_A − p_B, 0)].
        credibility: the interval's probability.
        prior: the prior in words.
        note: why the read is NA, empty otherwise.
    """

    rate_a: float
    rate_b: float
    diff: float
    ci_low: float
    ci_high: float
    chance_to_beat: float
    risk_a: float
    risk_b: float
    credibility: float
    prior: str
    note: str = ""


def _tanh_sinh(step: float = 1 / 24, reach: float = 3.3) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of tanh-sinh (double-exponential) quadrature on (0, 1), 159 of them.

    Every integral is taken over u = F(y) of the narrower posterior, ∫ f(y) g(y) dy = ∫₀¹ g(F⁻¹(u)) du. That
    integrand is bounded but its derivatives blow up at u = 0 and 1 (a ROC-curve shape), which Gauss–Legendre
    integrates to only ~1e-7; tanh-sinh crowds its nodes at the ends and reaches ~1e-15 against scipy's quad.
    """
    t = np.arange(-reach, reach + step / 2, step)
    s = np.pi / 2 * np.sinh(t)
    return (1 + np.tanh(s)) / 2, step * np.pi / 4 * np.cosh(t) / np.cosh(s) ** 2


_U, _W = _tanh_sinh()


@dataclass(frozen=True)
class _Posteriors:
    """The two posteriors, with the narrower one's quantiles at the nodes (the integration variable)."""

    a: Any
    b: Any
    a_narrower: bool
    y: np.ndarray

    @classmethod
    def of(cls, a, b) -> _Posteriors:
        a_narrower = bool(a.std() <= b.std())
        return cls(a, b, a_narrower, (a if a_narrower else b).ppf(_U))

    def diff_cdf(self, d: float) -> float:
        """P(p_B − p_A ≤ d), integrated over the narrower posterior only where the integrand is not flat.

        Over A: ∫ f_A(y) F_B(y + d) dy, where F_B(y + d) is 0 below y = −d and 1 above y = 1 − d; the kinks
        there would cost quadrature accuracy, so the range is cut at them and the flat part added exactly.
        Over B the same with ∫ f_B(x) S_A(x − d) dx (1 below x = d, 0 above x = 1 + d).
        """
        inner, outer = (self.a, self.b) if self.a_narrower else (self.b, self.a)
        lo, hi = (max(0.0, -d), min(1.0, 1.0 - d)) if self.a_narrower else (max(0.0, d), min(1.0, 1.0 + d))
        if lo >= hi:
            return 1.0 if d >= 0 else 0.0
        u_lo, u_hi = float(inner.cdf(lo)), float(inner.cdf(hi))
        y = inner.ppf(u_lo + (u_hi - u_lo) * _U)
        if self.a_narrower:  # above hi, F_B = 1: A's mass there counts whole
            return float((u_hi - u_lo) * (_W @ outer.cdf(y + d)) + inner.sf(hi))
        return float((u_hi - u_lo) * (_W @ outer.sf(y - d)) + inner.cdf(lo))  # below lo, S_A = 1

    def diff_quantile(self, q: float) -> float:
        return float(optimize.brentq(lambda d: self.diff_cdf(d) - q, -1.0, 1.0, xtol=1e-13))

    def gain(self, prior: BetaPrior, x_a: float, n_a: float, x_b: float, n_b: float) -> float:
        """E[max(p_B − p_A, 0)]: E[X·1{X > y}] = m·S⁺(y) with X⁺ the Beta with α + 1."""
        y = self.y
        if self.a_narrower:  # ∫ f_A(y) (m_B S_B⁺(y) − y S_B(y)) dy
            plus = st.beta(prior.alpha + x_b + 1, prior.beta + n_b - x_b)
            return float(_W @ (self.b.mean() * plus.sf(y) - y * self.b.sf(y)))
        plus = st.beta(prior.alpha + x_a + 1, prior.beta + n_a - x_a)  # ∫ f_B(x) (x F_A(x) − m_A F_A⁺(x)) dx
        return float(_W @ (y * self.a.cdf(y) - self.a.mean() * plus.cdf(y)))


def beta_binomial(x_a: float, n_a: float, x_b: float, n_b: float, *, prior: BetaPrior | None = None,
                  credibility: float = 0.95) -> BetaBinomialRead:
    """Beta-Binomial read of B's pass rate against A's: chance to beat, credible interval, risk per arm.

    Each arm's rate has the posterior Beta(α + x, β + n − x) (``prior`` Beta(α, β), uniform by default); the
    two are independent, so this read ignores any pairing of the cases (the paired test in `compare` is the
    decision; this is the probability statement beside it). Counts may be fractional (passes summed over
    per-case rates). Pinned in tests to ``scipy.integrate.quad`` over ``scipy.stats.beta`` and to seeded Monte
    Carlo.

    Args:
        x_a, n_a: A's passes and trials (the baseline).
        x_b, n_b: B's.
        prior: a `BetaPrior` for both arms (default Beta(1, 1)).
        credibility: probability of the interval of p_B − p_A.
    """
    _check_confidence(credibility)
    for name, (x, n) in {"a": (x_a, n_a), "b": (x_b, n_b)}.items():
        if not (math.isfinite(x) and math.isfinite(n)) or n < 0 or x < 0 or x > n:
            raise StatsError(f"x_{name}={x!r} passes out of n_{name}={n!r} is not a valid count; need "
                             f"0 <= x_{name} <= n_{name}.")
    prior = prior or BetaPrior()
    text = f"Beta({prior.alpha:g}, {prior.beta:g}) on each rate"
    post = _Posteriors.of(st.beta(prior.alpha + x_a, prior.beta + n_a - x_a),
                          st.beta(prior.alpha + x_b, prior.beta + n_b - x_b))
    mean_a, mean_b = float(post.a.mean()), float(post.b.mean())
    beat = 1 - post.diff_cdf(0.0)
    risk_a = post.gain(prior, x_a, n_a, x_b, n_b)
    tail = (1 - credibility) / 2
    low, high = post.diff_quantile(tail), post.diff_quantile(1 - tail)
    return BetaBinomialRead(mean_a, mean_b, mean_b - mean_a, low, high, beat, risk_a,
                            risk_a - (mean_b - mean_a), credibility, text)
