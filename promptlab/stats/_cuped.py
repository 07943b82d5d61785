"""CUPED: the treatment effect adjusted by each unit's pre-period value of the same metric (Deng et al. 2013).

Each unit has y (its metric during the experiment) and x (the same metric before it was exposed). Because x
was fixed before assignment, subtracting θ·x changes no arm's expectation but removes the part of y's
variance that x predicts. GrowthBook's estimator (gbstats 0.8.0 ``RegressionAdjustedStatistic``), on the
sufficient statistics of each arm (n, Σy, Σy², Σx, Σx², Σxy), so the sums can be taken where the data live::

    θ     = Cov(y, x) / Var(x)             over both arms pooled (one θ for all arms; 0 if either has no spread)
    ȳ*    = ȳ − θ·x̄                         per arm (the adjusted mean)
    s²*   = s²_y + θ²·s²_x − 2θ·s_xy        per arm (variances and covariance with ddof 1)
    δ     = ȳ*_B − ȳ*_A,   Var(δ) = s²*_A/n_A + s²*_B/n_B,   t interval with Welch–Satterthwaite df
    lift  = δ / ȳ_A,       Var = s²*_B/(ȳ_A² n_B) + s²*_A ȳ_B²/(ȳ_A⁴ n_A)   (delta method on unadjusted means)

The variance reduction reported is 1 − Var(δ)/Var(δ unadjusted): the share of the effect's variance CUPED
removed (about ρ², the squared correlation of y and x). Units without a pre-period value should get the pooled
pre-period mean (any value fixed before assignment keeps the estimate unbiased); `promptlab.production` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import StatsError
from ._bayesian import BayesianRead, GaussianPrior, gaussian_read
from ._checks import _check_confidence
from ._lift import relative_variance, t_interval, welch_df


@dataclass(frozen=True)
class CupedArm:
    """One arm's sufficient statistics: units, and sums of y (the metric), x (its pre-period value) and products.

    Build it from unit values with `CupedArm.from_values`, or from sums a database returned.
    """

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float
    sum_x2: float
    sum_xy: float

    @classmethod
    def from_values(cls, post: Sequence[float], pre: Sequence[float]) -> CupedArm:
        """The sums of one arm's units: ``post[i]`` and ``pre[i]`` belong to the same unit (no NaN)."""
        y, x = np.asarray(post, dtype=float), np.asarray(pre, dtype=float)
        if y.shape != x.shape or y.ndim != 1:
            raise StatsError(f"CupedArm.from_values needs one pre-period value per unit; got {y.size} post and "
                             f"{x.size} pre values.")
        if np.isnan(y).any() or np.isnan(x).any():
            raise StatsError("CupedArm.from_values got NaN values; drop units without a metric, and give units "
                             "without a pre-period value the pooled pre-period mean.")
        return cls(int(y.size), float(y.sum()), float(y @ y), float(x.sum()), float(x @ x), float(x @ y))

    def __add__(self, other: CupedArm) -> CupedArm:
        return CupedArm(self.n + other.n, self.sum_y + other.sum_y, self.sum_y2 + other.sum_y2,
                        self.sum_x + other.sum_x, self.sum_x2 + other.sum_x2, self.sum_xy + other.sum_xy)

    @property
    def mean_y(self) -> float:
        """Unadjusted mean of the metric."""
        return self.sum_y / self.n

    @property
    def mean_x(self) -> float:
        """Mean of the pre-period covariate."""
        return self.sum_x / self.n

    def _centered(self, a: float, b: float, ab: float) -> float:
        """(Σab − Σa·Σb/n)/(n − 1): a sample (co)variance, 0 below two units."""
        return 0.0 if self.n < 2 else (ab - a * b / self.n) / (self.n - 1)

    @property
    def var_y(self) -> float:
        """Sample variance of y (ddof 1)."""
        return max(0.0, self._centered(self.sum_y, self.sum_y, self.sum_y2))

    @property
    def var_x(self) -> float:
        """Sample variance of x (ddof 1)."""
        return max(0.0, self._centered(self.sum_x, self.sum_x, self.sum_x2))

    @property
    def cov_xy(self) -> float:
        """Sample covariance of y and x (ddof 1)."""
        return self._centered(self.sum_x, self.sum_y, self.sum_xy)

    def adjusted_var(self, theta: float) -> float:
        """Var(y − θx) per unit."""
        return max(0.0, self.var_y + theta ** 2 * self.var_x - 2 * theta * self.cov_xy)


@dataclass(frozen=True)
class CupedResult:
    """A CUPED-adjusted read of B against A, beside the unadjusted one.

    Attributes:
        theta: the pooled regression coefficient of y on x (0: no adjustment was possible).
        mean_a, mean_b: unadjusted means; ``adjusted_a``, ``adjusted_b``: ȳ − θx̄.
        diff, diff_low, diff_high, p_value: the adjusted absolute effect B − A, its t interval and p.
        lift, lift_low, lift_high, lift_p_value: the adjusted relative effect over A's unadjusted mean.
        unadjusted_diff, unadjusted_low, unadjusted_high: the same read without the covariate.
        variance_reduction: 1 − Var(adjusted diff)/Var(unadjusted diff).
        n_a, n_b: units.
        confidence: the intervals' coverage.
        note: why something is NA, empty otherwise.
    """

    theta: float
    mean_a: float
    mean_b: float
    adjusted_a: float
    adjusted_b: float
    diff: float
    diff_low: float
    diff_high: float
    p_value: float
    lift: float
    lift_low: float
    lift_high: float
    lift_p_value: float
    unadjusted_diff: float
    unadjusted_low: float
    unadjusted_high: float
    variance_reduction: float
    n_a: int
    n_b: int
    confidence: float
    note: str = ""


def cuped_theta(a: CupedArm, b: CupedArm) -> float:
    """θ = Cov(y, x)/Var(x) over both arms pooled (gbstats ``compute_theta``); 0 when x or y has no spread."""
    joint = a + b
    if joint.var_x == 0 or joint.var_y == 0:
        return 0.0
    return joint.cov_xy / joint.var_x


def _check_arms(a: CupedArm, b: CupedArm) -> None:
    for name, arm in (("control", a), ("treatment", b)):
        sums = (arm.sum_y, arm.sum_y2, arm.sum_x, arm.sum_x2, arm.sum_xy)
        if arm.n < 2 or not all(math.isfinite(v) for v in sums):
            raise StatsError(f"CUPED needs at least 2 units with finite sums in the {name} arm; got {arm!r}.")


def cuped(control: CupedArm, treatment: CupedArm, *, confidence: float = 0.95) -> CupedResult:
    """The CUPED-adjusted effect of treatment over control (absolute and relative), with the variance reduction.

    Equals gbstats 0.8.0 ``TwoSidedTTest(RegressionAdjustedStatistic(...), ..., FrequentistConfig(
    difference_type=...))`` for both difference types; the absolute effect equals Welch's t test (scipy
    ``ttest_ind(equal_var=False)``) on the adjusted unit values y − θx with θ from statsmodels OLS of y on x.

    Args:
        control, treatment: each arm's `CupedArm` (units' metric and pre-period value).
        confidence: coverage of the t intervals.
    """
    _check_confidence(confidence)
    _check_arms(control, treatment)
    a, b, theta = control, treatment, cuped_theta(control, treatment)
    va, vb = a.adjusted_var(theta), b.adjusted_var(theta)
    adj_a, adj_b = a.mean_y - theta * a.mean_x, b.mean_y - theta * b.mean_x
    diff, variance = adj_b - adj_a, va / a.n + vb / b.n
    df = welch_df(va, a.n, vb, b.n)
    low, high, p = t_interval(diff, variance, df, confidence)
    raw_var = a.var_y / a.n + b.var_y / b.n
    raw_low, raw_high, _ = t_interval(b.mean_y - a.mean_y, raw_var, welch_df(a.var_y, a.n, b.var_y, b.n),
                                      confidence)
    reduction = 1 - variance / raw_var if raw_var > 0 else math.nan
    lift = lift_low = lift_high = lift_p = math.nan
    note = "" if theta else "no adjustment: the pre-period value or the metric has no spread (θ = 0)"
    if a.mean_y != 0:
        lift = diff / a.mean_y
        lift_low, lift_high, lift_p = t_interval(lift, relative_variance(a.mean_y, va, a.n, b.mean_y, vb, b.n),
                                                 df, confidence)
    else:
        note = "; ".join(filter(None, [note, "the control mean is 0: the relative effect is unknown"]))
    return CupedResult(theta, a.mean_y, b.mean_y, adj_a, adj_b, diff, low, high, p, lift, lift_low, lift_high,
                       lift_p, b.mean_y - a.mean_y, raw_low, raw_high, reduction, a.n, b.n, confidence, note)


def cuped_bayesian(control: CupedArm, treatment: CupedArm, *, relative: bool = True,
                   prior: GaussianPrior | None = None, credibility: float = 0.95,
                   inverse: bool = False) -> BayesianRead:
    """GrowthBook's Bayesian read on the CUPED-adjusted effect (gbstats ``EffectBayesianABTest`` on
    ``RegressionAdjustedStatistic``): the adjusted effect and its variance in the Gaussian model."""
    _check_arms(control, treatment)
    a, b, theta = control, treatment, cuped_theta(control, treatment)
    va, vb = a.adjusted_var(theta), b.adjusted_var(theta)
    diff = (b.mean_y - theta * b.mean_x) - (a.mean_y - theta * a.mean_x)
    if not relative:
        return gaussian_read(diff, va / a.n + vb / b.n, relative=False, prior=prior, control_mean=a.mean_y,
                             credibility=credibility, inverse=inverse)
    if a.mean_y == 0:
        return gaussian_read(math.nan, math.nan, relative=True, prior=prior, credibility=credibility)
    return gaussian_read(diff / a.mean_y, relative_variance(a.mean_y, va, a.n, b.mean_y, vb, b.n), relative=True,
                         prior=prior, control_mean=a.mean_y, credibility=credibility, inverse=inverse)
