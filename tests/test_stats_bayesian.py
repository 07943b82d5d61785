"""The relative lift (delta method) and the Bayesian reads, pinned to gbstats 0.8.0 and scipy.

gbstats pins numpy<2 and pandas<2, so it cannot live in the project venv: the expected values below were
produced in a scratch venv (``pip install gbstats==0.8.0``) with the call written beside each, and the
``live`` tests recompute them with gbstats itself when it is importable.
"""

from __future__ import annotations

import math

import pytest

from promptlab.errors import StatsError
from promptlab.stats import LiftInterval, relative_lift

try:  # gbstats is optional here: the written values stand in when it is missing
    from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
    from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic
    HAVE_GBSTATS = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_GBSTATS = False

live = pytest.mark.skipif(not HAVE_GBSTATS, reason="gbstats not installed (it pins numpy<2)")

# Arm summaries shared by the cases below: (mean, per-unit variance, n).
T1_A = (0.2, 0.2 * 0.8, 1000)                     # ProportionStatistic(n=1000, sum=200)
T1_B = (0.24, 0.24 * 0.76, 1000)                  # ProportionStatistic(n=1000, sum=240)
M_A = (2.4, (400.0 - 120.0 ** 2 / 50) / 49, 50)   # SampleMeanStatistic(n=50, sum=120, sum_squares=400)
M_B = (160 / 60, (520.0 - 160.0 ** 2 / 60) / 59, 60)  # SampleMeanStatistic(n=60, sum=160, sum_squares=520)


# ---- relative lift -------------------------------------------------------------------------------------------
def test_relative_lift_of_two_proportions_matches_gbstats():
    got = relative_lift(*T1_A, *T1_B)
    # gbstats 0.8.0: t = TwoSidedTTest(ProportionStatistic(n=1000, sum=200), ProportionStatistic(n=1000, sum=240),
    #   FrequentistConfig(difference_type="relative")); t.point_estimate, t.confidence_interval, t.p_value, t.dof
    assert got.estimate == pytest.approx(0.2, abs=1e-12)
    assert (got.low, got.high) == pytest.approx((0.0007711474121982476, 0.39922885258780155), abs=1e-12)
    assert got.p_value == pytest.approx(0.049120646241254784, abs=1e-12)
    assert got.df == pytest.approx(1989.4853017916166, rel=1e-12)
    assert got.absolute == pytest.approx(0.04, abs=1e-12)
    assert isinstance(got, LiftInterval) and got.note == ""


def test_relative_lift_of_two_means_matches_gbstats():
    got = relative_lift(*M_A, *M_B)
    # gbstats 0.8.0: TwoSidedTTest(SampleMeanStatistic(n=50, sum=120, sum_squares=400),
    #   SampleMeanStatistic(n=60, sum=160, sum_squares=520), FrequentistConfig(difference_type="relative"))
    assert got.estimate == pytest.approx(0.11111111111111109, abs=1e-12)
    assert (got.low, got.high) == pytest.approx((-0.1269015527712698, 0.34912377499349195), abs=1e-12)
    assert got.p_value == pytest.approx(0.35641160284632467, abs=1e-12)
    assert got.df == pytest.approx(95.45100977369242, rel=1e-12)


@live
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_relative_lift_equals_gbstats_live(confidence):
    a = SampleMeanStatistic(n=50, sum=120.0, sum_squares=400.0)
    b = SampleMeanStatistic(n=60, sum=160.0, sum_squares=520.0)
    ref = TwoSidedTTest(a, b, FrequentistConfig(difference_type="relative", alpha=1 - confidence))
    got = relative_lift(a.mean, a.variance, a.n, b.mean, b.variance, b.n, confidence=confidence)
    assert [got.low, got.high, got.p_value] == pytest.approx([*ref.confidence_interval, ref.p_value], abs=1e-12)
    pa, pb = ProportionStatistic(n=37, sum=3), ProportionStatistic(n=41, sum=9)
    ref = TwoSidedTTest(pa, pb, FrequentistConfig(difference_type="relative", alpha=1 - confidence))
    got = relative_lift(pa.mean, pa.variance, pa.n, pb.mean, pb.variance, pb.n, confidence=confidence)
    assert [got.low, got.high, got.p_value] == pytest.approx([*ref.confidence_interval, ref.p_value], abs=1e-12)


def test_relative_lift_interval_widens_with_confidence_and_is_centred():
    narrow, wide = relative_lift(*M_A, *M_B, confidence=0.8), relative_lift(*M_A, *M_B, confidence=0.99)
    assert wide.low < narrow.low < narrow.estimate < narrow.high < wide.high
    assert narrow.estimate - narrow.low == pytest.approx(narrow.high - narrow.estimate)


def test_relative_lift_over_a_zero_baseline_is_unknown_not_zero():
    got = relative_lift(0.0, 0.0, 10, 0.1, 0.09, 10)
    assert math.isnan(got.estimate) and math.isnan(got.low) and math.isnan(got.p_value)
    assert "control mean is 0" in got.note and got.absolute == pytest.approx(0.1)


def test_relative_lift_without_spread_is_exact():
    got = relative_lift(1.0, 0.0, 10, 1.5, 0.0, 10)
    assert (got.estimate, got.low, got.high, got.p_value, got.df) == (0.5, 0.5, 0.5, 0.0, math.inf)
    assert relative_lift(1.0, 0.0, 10, 1.0, 0.0, 10).p_value == 1.0


@pytest.mark.parametrize("args, fragment", [
    ((0.2, 0.16, 1, 0.24, 0.18, 1000), "at least 2 units"),
    ((0.2, -0.16, 100, 0.24, 0.18, 1000), "negative variance"),
    ((math.nan, 0.16, 100, 0.24, 0.18, 1000), "finite"),
])
def test_relative_lift_rejects_bad_arms(args, fragment):
    with pytest.raises(StatsError, match=fragment):
        relative_lift(*args)


def test_relative_lift_rejects_bad_confidence():
    with pytest.raises(StatsError, match="confidence"):
        relative_lift(*T1_A, *T1_B, confidence=95)
