"""CUPED (regression adjustment by a pre-period covariate), pinned to gbstats 0.8.0 and to statsmodels + scipy.

The gbstats values were produced in a scratch venv (gbstats pins numpy<2, so it is not in the project venv)
with the call written beside them; the independent route — θ from statsmodels OLS of y on x over both arms,
then scipy's Welch test on the adjusted values y − θx — runs here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as st

from promptlab.errors import StatsError
from promptlab.stats import CupedArm, cuped, cuped_bayesian

try:  # gbstats is optional here: the written values stand in when it is missing
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
    from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
    from gbstats.models.statistics import RegressionAdjustedStatistic, SampleMeanStatistic
    HAVE_GBSTATS = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_GBSTATS = False

# 40 + 45 units: x the pre-period metric, y the metric in the experiment (y ≈ 2 + 0.8x + noise, B +0.6)
XA = np.array([
    13.3, 11.0, 8.4, 6.2, 4.3, 10.1, 7.6, 7.4, 9.3, 9.8, 3.2, 12.8, 3.9, 15.6, 11.8, 8.6, 14.0, 10.1, 12.1,
    10.3, 13.3, 13.2, 7.3, 8.2, 11.0, 9.4, 3.1, 16.1, 3.5, 3.8, 6.2, 11.7, 15.4, 9.3, 8.8, 10.5, 8.9, 10.2,
    6.6, 11.3])
YA = np.array([
    10.9, 11.6, 8.8, 8.2, 6.5, 10.1, 7.5, 9.3, 9.9, 7.6, 3.7, 11.5, 4.7, 17.9, 10.9, 9.6, 15.7, 10.8, 12.3,
    12.2, 12.9, 12.8, 8.9, 9.2, 9.8, 7.8, 4.3, 17.0, 4.5, 6.8, 7.6, 10.9, 10.4, 9.8, 8.6, 8.0, 9.9, 10.1, 7.8,
    10.1])
XB = np.array([
    11.2, 2.7, 9.7, 10.5, 11.7, 7.6, 6.0, 7.1, 11.6, 7.4, 7.7, 13.4, 7.6, 7.3, 9.7, 10.6, 13.1, 7.4, 5.3, 9.6,
    11.9, 5.6, 8.5, 10.9, 10.7, 10.3, 9.2, 7.6, 7.2, 13.5, 6.6, 13.7, 6.1, 18.7, 4.8, 14.8, 7.3, 9.7, 9.8,
    8.0, 16.7, 10.3, 6.0, 11.9, 12.1])
YB = np.array([
    11.9, 4.1, 12.0, 11.2, 9.9, 9.0, 7.5, 8.0, 9.9, 10.1, 7.7, 15.7, 7.7, 8.5, 10.3, 11.3, 17.0, 7.8, 9.9,
    11.2, 11.1, 9.0, 10.7, 12.8, 9.2, 11.6, 9.4, 8.5, 8.2, 13.5, 10.3, 14.1, 4.7, 19.4, 6.6, 14.6, 5.7, 11.0,
    9.7, 10.4, 16.6, 12.1, 6.8, 9.4, 13.7])
A, B = CupedArm.from_values(YA, XA), CupedArm.from_values(YB, XB)


def _gb_stat(y, x):
    """gbstats' statistic of one arm (used by the live tests and written in the comments below)."""
    return RegressionAdjustedStatistic(
        n=len(y), post_statistic=SampleMeanStatistic(n=len(y), sum=float(y.sum()), sum_squares=float(y @ y)),
        pre_statistic=SampleMeanStatistic(n=len(x), sum=float(x.sum()), sum_squares=float(x @ x)),
        post_pre_sum_of_products=float(x @ y), theta=0)


def test_cuped_matches_gbstats_absolute_and_relative():
    got = cuped(A, B)
    # gbstats 0.8.0: t = TwoSidedTTest(_gb_stat(YA, XA), _gb_stat(YB, XB), FrequentistConfig(difference_type=
    #   "absolute")); t.point_estimate, t.confidence_interval, t.p_value, t.stat_a.theta
    assert got.theta == pytest.approx(0.8270867376323369, rel=1e-12)
    assert got.diff == pytest.approx(0.6884672672929106, abs=1e-12)
    assert (got.diff_low, got.diff_high) == pytest.approx((0.06561113663424634, 1.311323397951575), abs=1e-12)
    assert got.p_value == pytest.approx(0.030700160955288602, abs=1e-12)
    # the same with FrequentistConfig(difference_type="relative")
    assert got.lift == pytest.approx(0.07117779966843223, abs=1e-12)
    assert (got.lift_low, got.lift_high) == pytest.approx((0.004194932452911082, 0.13816066688395337), abs=1e-12)
    assert got.lift_p_value == pytest.approx(0.037559404973643185, abs=1e-12)
    # unadjusted: TwoSidedTTest(SampleMeanStatistic(n=40, sum=YA.sum(), sum_squares=YA @ YA), (the same for B),
    #   FrequentistConfig(difference_type="absolute")).confidence_interval
    assert (got.unadjusted_low, got.unadjusted_high) == pytest.approx((-0.57771364296287, 2.11271364296287),
                                                                      abs=1e-12)


def test_cuped_equals_ols_theta_then_welch_on_the_adjusted_values():
    y, x = np.r_[YA, YB], np.r_[XA, XB]
    theta = sm.OLS(y, sm.add_constant(x)).fit().params[1]  # statsmodels: pooled slope of y on x
    adj_a, adj_b = YA - theta * XA, YB - theta * XB
    ref = st.ttest_ind(adj_b, adj_a, equal_var=False)  # scipy Welch test on the adjusted unit values
    for confidence in (0.9, 0.95, 0.99):
        got = cuped(A, B, confidence=confidence)
        assert got.theta == pytest.approx(theta, rel=1e-10)
        assert (got.diff_low, got.diff_high) == pytest.approx(tuple(ref.confidence_interval(confidence)), abs=1e-10)
        assert got.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    # variance reduction: numpy variances (ddof 1) of the adjusted and raw values, per arm over n
    adjusted = np.var(adj_a, ddof=1) / YA.size + np.var(adj_b, ddof=1) / YB.size
    raw = np.var(YA, ddof=1) / YA.size + np.var(YB, ddof=1) / YB.size
    assert got.variance_reduction == pytest.approx(1 - adjusted / raw, abs=1e-12)
    assert got.variance_reduction > 0.7  # x explains most of y here: the interval shrinks by more than half


def test_cuped_bayesian_matches_gbstats():
    # gbstats 0.8.0: r = EffectBayesianABTest(_gb_stat(YA, XA), _gb_stat(YB, XB), EffectBayesianConfig(
    #   difference_type="relative")).compute_result(); r.chance_to_win, r.ci, r.expected, r.risk
    got = cuped_bayesian(A, B)
    assert got.chance_to_win == pytest.approx(0.9827259057268846, abs=1e-12)
    assert (got.ci_low, got.ci_high) == pytest.approx((0.00517432075789423, 0.13718127857897022), abs=1e-12)
    assert got.effect == pytest.approx(0.07117779966843223, abs=1e-12)
    assert (got.risk_control, got.risk_treatment) == pytest.approx((0.07138757105465932, 0.0002097713862270912),
                                                                   abs=1e-12)
    # ... and EffectBayesianConfig(difference_type="absolute")
    got = cuped_bayesian(A, B, relative=False)
    assert got.chance_to_win == pytest.approx(0.9860457896231104, abs=1e-12)
    assert (got.ci_low, got.ci_high) == pytest.approx((0.07471821185232219, 1.3022163227334989), abs=1e-12)
    assert (got.risk_control, got.risk_treatment) == pytest.approx((0.6900038315215674, 0.0015365642286567442),
                                                                   abs=1e-12)


@pytest.mark.skipif(not HAVE_GBSTATS, reason="gbstats not installed (it pins numpy<2)")
@pytest.mark.parametrize("difference_type", ["absolute", "relative"])
def test_cuped_equals_gbstats_live(difference_type):
    rng = np.random.default_rng(5)
    x = rng.poisson(3, 300).astype(float)
    y = x * 0.5 + rng.poisson(2, 300)
    ya, xa, yb, xb = y[:140], x[:140], y[140:] + 0.3, x[140:]
    ref = TwoSidedTTest(_gb_stat(ya, xa), _gb_stat(yb, xb), FrequentistConfig(difference_type=difference_type))
    got = cuped(CupedArm.from_values(ya, xa), CupedArm.from_values(yb, xb))
    lo, hi = (got.diff_low, got.diff_high) if difference_type == "absolute" else (got.lift_low, got.lift_high)
    assert [lo, hi] == pytest.approx(ref.confidence_interval, abs=1e-12)
    bayes = EffectBayesianABTest(_gb_stat(ya, xa), _gb_stat(yb, xb),
                                 EffectBayesianConfig(difference_type=difference_type)).compute_result()
    read = cuped_bayesian(CupedArm.from_values(ya, xa), CupedArm.from_values(yb, xb),
                          relative=difference_type == "relative")
    assert [read.chance_to_win, read.ci_low, read.ci_high] == pytest.approx([bayes.chance_to_win, *bayes.ci],
                                                                            abs=1e-12)


def test_cuped_sums_add_up_and_match_the_values():
    half = CupedArm.from_values(YA[:20], XA[:20]) + CupedArm.from_values(YA[20:], XA[20:])
    assert half.n == A.n and half.sum_xy == pytest.approx(A.sum_xy) and half.var_y == pytest.approx(np.var(YA, ddof=1))
    assert A.cov_xy == pytest.approx(np.cov(YA, XA)[0, 1])  # numpy's sample covariance


def test_an_unrelated_covariate_changes_little_and_a_constant_one_nothing():
    noise = np.random.default_rng(3).normal(size=YA.size + YB.size)
    got = cuped(CupedArm.from_values(YA, noise[:40]), CupedArm.from_values(YB, noise[40:]))
    assert abs(got.variance_reduction) < 0.1
    flat = cuped(CupedArm.from_values(YA, np.ones(40)), CupedArm.from_values(YB, np.ones(45)))
    assert flat.theta == 0 and flat.variance_reduction == pytest.approx(0) and "θ = 0" in flat.note
    assert (flat.diff_low, flat.diff_high) == pytest.approx((flat.unadjusted_low, flat.unadjusted_high))


def test_cuped_over_a_zero_control_mean_has_no_relative_effect():
    got = cuped(CupedArm.from_values([0.0, 0.0, 0.0], [1.0, 2.0, 0.0]), CupedArm.from_values([1.0, 0.0, 2.0],
                                                                                               [1.0, 0.0, 2.0]))
    assert math.isnan(got.lift) and "control mean is 0" in got.note and not math.isnan(got.diff)


@pytest.mark.parametrize("post, pre, fragment", [
    ([1.0, 2.0], [1.0], "one pre-period value per unit"),
    ([1.0, math.nan], [1.0, 2.0], "NaN"),
])
def test_cuped_arm_rejects_bad_values(post, pre, fragment):
    with pytest.raises(StatsError, match=fragment):
        CupedArm.from_values(post, pre)


def test_cuped_needs_two_units_per_arm():
    with pytest.raises(StatsError, match="at least 2 units"):
        cuped(CupedArm.from_values([1.0], [1.0]), B)
