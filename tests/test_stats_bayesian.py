"""The relative lift (delta method) and the Bayesian reads, pinned to gbstats 0.8.0 and scipy.

gbstats pins numpy<2 and pandas<2, so it cannot live in the project venv: the expected values below were
produced in a scratch venv (``pip install gbstats==0.8.0``) with the call written beside each, and the
``live`` tests recompute them with gbstats itself when it is importable.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as st
from scipy.special import betaln

from promptlab.errors import StatsError
from promptlab.stats import (
    BetaPrior,
    GaussianPrior,
    LiftInterval,
    bayesian_effect,
    bayesian_proportions,
    beta_binomial,
    relative_lift,
)

try:  # gbstats is optional here: the written values stand in when it is missing
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
    from gbstats.bayesian.tests import GaussianPrior as GbPrior
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


# ---- GrowthBook's Gaussian effect model -----------------------------------------------------------------------
# Expected values: gbstats 0.8.0, r = EffectBayesianABTest(stat_a, stat_b, config).compute_result(), read as
# (r.chance_to_win, r.ci, r.expected, r.risk, r.uplift.stddev). T1 = ProportionStatistic(n=1000, sum=200) vs
# ProportionStatistic(n=1000, sum=240); M = the two SampleMeanStatistic above.
GB_CASES = {
    # EffectBayesianConfig()  (relative lift, flat improper prior: GrowthBook's defaults)
    "T1 relative, flat": (T1_A, T1_B, dict(), (0.9755089862914813, [0.0008923531615035452, 0.3991076468384962],
                          0.1999999999999999, [0.20093751048155092, 0.0009375104815510237], 0.10158740079360234)),
    # EffectBayesianConfig(difference_type="absolute")
    "T1 absolute, flat": (T1_A, T1_B, dict(relative=False), (
        0.9846789028986694, [0.003732721356494495, 0.07626727864350547], 0.03999999999999998,
        [0.040100781369637635, 0.00010078136963765236], 0.018504053609952605)),
    # EffectBayesianConfig(prior_effect=GaussianPrior(mean=0, variance=0.09, proper=True))
    "T1 relative, proper prior": (T1_A, T1_B, dict(prior=GaussianPrior(0.0, 0.09)), (
        0.9688908767112544, [-0.009162760999882003, 0.3680144356410301], 0.17942583732057407,
        [0.18059094122902594, 0.0011651039084518847], 0.09622044068565486)),
    # EffectBayesianConfig(prior_effect=GaussianPrior(mean=0.01, variance=0.0004, proper=True), prior_type="absolute")
    "T1 relative, absolute prior": (T1_A, T1_B, dict(prior=GaussianPrior(0.01, 0.0004, scale="absolute")), (
        0.9588449217232982, [-0.015858484840422182, 0.26349628011601256], 0.12381889763779522,
        [0.1250078831142583, 0.0011889854764631032], 0.07126528016839838)),
    # EffectBayesianConfig(inverse=True, alpha=0.01) on M
    "M inverse, 99%": (M_A, M_B, dict(inverse=True, credibility=0.99), (
        0.17703715820179156, [-0.1977250796359188, 0.41994730185814094], 0.11111111111111109,
        [0.011463196629178033, 0.12257430774028913], 0.11989777052443831)),
}


@pytest.mark.parametrize("name", list(GB_CASES))
def test_bayesian_effect_matches_gbstats(name):
    a, b, options, (chance, ci, expected, risk, sd) = GB_CASES[name]
    got = bayesian_effect(*a, *b, **options)
    assert got.chance_to_win == pytest.approx(chance, abs=1e-12)
    assert [got.ci_low, got.ci_high] == pytest.approx(ci, abs=1e-12)
    assert got.effect == pytest.approx(expected, abs=1e-12) and got.sd == pytest.approx(sd, rel=1e-12)
    assert [got.risk_control, got.risk_treatment] == pytest.approx(risk, abs=1e-12)


@live
@pytest.mark.parametrize("difference_type", ["relative", "absolute"])
@pytest.mark.parametrize("proper", [False, True])
def test_bayesian_effect_equals_gbstats_live(difference_type, proper):
    a, b = ProportionStatistic(n=37, sum=3), ProportionStatistic(n=41, sum=9)
    config = EffectBayesianConfig(difference_type=difference_type,
                                  prior_effect=GbPrior(mean=0.1, variance=0.25, proper=proper))
    ref = EffectBayesianABTest(a, b, config).compute_result()
    got = bayesian_proportions(3, 37, 9, 41, relative=difference_type == "relative",
                               prior=GaussianPrior(0.1, 0.25) if proper else None)
    assert [got.chance_to_win, got.ci_low, got.ci_high, got.effect, got.risk_control, got.risk_treatment] == \
        pytest.approx([ref.chance_to_win, *ref.ci, ref.expected, *ref.risk], abs=1e-12)


def test_bayesian_risk_is_the_expected_loss_by_scipy_integration():
    got = bayesian_effect(*M_A, *M_B)
    mu, sd = got.effect, got.sd
    # scipy.integrate.quad(lambda x: max(x, 0) * norm.pdf(x, mu, sd), -inf, inf): the definition of the risk
    keep_a = integrate.quad(lambda x: x * st.norm.pdf(x, mu, sd), 0, np.inf)[0]
    ship_b = integrate.quad(lambda x: -x * st.norm.pdf(x, mu, sd), -np.inf, 0)[0]
    assert [got.risk_control, got.risk_treatment] == pytest.approx([keep_a, ship_b], abs=1e-10)


def test_a_proper_prior_pulls_the_effect_towards_its_mean():
    flat = bayesian_effect(*T1_A, *T1_B)
    tight = bayesian_effect(*T1_A, *T1_B, prior=GaussianPrior(0.0, 0.01 ** 2))
    assert abs(tight.effect) < 0.01 < flat.effect and tight.sd < flat.sd
    assert flat.prior == "flat (improper)" and "N(0, 0.0001)" in tight.prior


@pytest.mark.parametrize("args, fragment", [
    ((0.0, 0.0, 0, 0.3, 0.21, 100), "no units"),
    ((0.0, 0.0, 100, 0.3, 0.21, 100), "control mean is 0"),
    ((0.5, 0.0, 100, 0.5, 0.0, 100), "no posterior"),
])
def test_bayesian_effect_is_na_not_a_coin_flip_when_it_cannot_be_read(args, fragment):
    got = bayesian_effect(*args)  # gbstats answers chance 0.5 and zeros here; unknown is not 0.5
    assert math.isnan(got.chance_to_win) and math.isnan(got.effect) and fragment in got.note


def test_bayesian_inputs_and_priors_are_checked():
    with pytest.raises(StatsError, match="variance"):
        GaussianPrior(0.0, 0.0)
    with pytest.raises(StatsError, match="scale"):
        GaussianPrior(0.0, 1.0, scale="log")
    with pytest.raises(StatsError, match="alpha > 0"):
        BetaPrior(0, 1)
    with pytest.raises(StatsError, match="variance >= 0"):
        bayesian_effect(0.2, -1.0, 10, 0.3, 0.2, 10)
    with pytest.raises(StatsError, match="x_t"):
        bayesian_proportions(3, 10, 12, 10)


# ---- Beta-Binomial ------------------------------------------------------------------------------------------
def _quad(dist, func, points=()):
    """scipy.integrate.quad of dist.pdf(x)·func(x) over where dist has its mass (quad misses a narrow spike
    if asked to integrate over the whole of [0, 1])."""
    low, high = dist.ppf(1e-15), dist.isf(1e-15)
    inside = [p for p in points if low < p < high]
    return integrate.quad(lambda x: dist.pdf(x) * func(x), low, high, points=inside or None, epsabs=1e-14,
                          epsrel=1e-12, limit=500)[0]


def _scipy_reference(x_a, n_a, x_b, n_b, alpha=1.0, beta=1.0):
    """Chance to beat, risk of keeping A and the CDF of p_B − p_A, by scipy quad over the Beta posteriors."""
    a, b = st.beta(alpha + x_a, beta + n_a - x_a), st.beta(alpha + x_b, beta + n_b - x_b)
    chance = _quad(b, a.cdf, [a.mean()])  # P(p_A < p_B) = ∫ f_B(x) F_A(x) dx
    # E[max(p_B − p_A, 0)] = ∫ f_B(x) E[max(x − p_A, 0)] dx, and E[max(x − p_A, 0)] = x·F_A(x) − m_A·F_A⁺(x) with
    # A⁺ = Beta(α_A + 1, β_A) (E[p 1{p < x}] = m·F⁺(x) for a Beta): beta.cdf, not a nested quad
    a_plus = st.beta(alpha + x_a + 1, beta + n_a - x_a)
    keep_a = _quad(b, lambda x: x * a.cdf(x) - a.mean() * a_plus.cdf(x), [a.mean()])

    def cdf(d):  # P(p_B − p_A ≤ d) = ∫ f_A(y) F_B(y + d) dy, flat (= 1) above y = 1 − d
        low, high = max(0.0, -d), min(1.0, 1.0 - d)
        return integrate.quad(lambda y: a.pdf(y) * b.cdf(y + d), low, high, epsabs=1e-14, epsrel=1e-12,
                              limit=500)[0] + a.sf(high)

    return chance, keep_a, cdf


@pytest.mark.parametrize("counts, prior", [
    ((200, 1000, 240, 1000), None), ((0, 20, 3, 20), None), ((20, 20, 20, 20), None), ((1, 3, 2, 2), None),
    ((0, 20, 0, 20), BetaPrior(0.5, 0.5)), ((29, 99, 44, 99), BetaPrior(2, 5)), ((19, 20, 0, 20), None),
])
def test_beta_binomial_matches_scipy_quad(counts, prior):
    p = prior or BetaPrior()
    chance, keep_a, cdf = _scipy_reference(*counts, p.alpha, p.beta)
    got = beta_binomial(*counts, prior=prior)
    assert got.chance_to_beat == pytest.approx(chance, abs=1e-9)
    assert got.risk_a == pytest.approx(keep_a, abs=1e-9)
    # the interval's ends are where scipy's CDF of p_B − p_A is 2.5% and 97.5%
    assert [cdf(got.ci_low), cdf(got.ci_high)] == pytest.approx([0.025, 0.975], abs=1e-9)


def test_beta_binomial_chance_matches_the_closed_form_sum():
    # Evan Miller (2015), "Formulas for Bayesian A/B testing": for integer α_B,
    # P(p_B > p_A) = Σ_{i<α_B} exp(betaln(α_A + i, β_A + β_B) − ln(β_B + i) − betaln(1 + i, β_B) − betaln(α_A, β_A))
    for x_a, n_a, x_b, n_b in ((200, 1000, 240, 1000), (3, 40, 9, 41), (50, 60, 45, 60)):
        aa, ba, ab, bb = 1 + x_a, 1 + n_a - x_a, 1 + x_b, 1 + n_b - x_b
        i = np.arange(ab)
        expected = np.exp(betaln(aa + i, ba + bb) - np.log(bb + i) - betaln(1 + i, bb) - betaln(aa, ba)).sum()
        assert beta_binomial(x_a, n_a, x_b, n_b).chance_to_beat == pytest.approx(expected, abs=1e-11)  # Σ roundoff


def test_beta_binomial_matches_seeded_monte_carlo_at_large_n():
    x_a, n_a, x_b, n_b, draws = 500_000, 1_000_000, 501_000, 1_000_000, 400_000
    rng = np.random.default_rng(2026)
    a = rng.beta(1 + x_a, 1 + n_a - x_a, draws)
    b = rng.beta(1 + x_b, 1 + n_b - x_b, draws)
    d, got = b - a, beta_binomial(x_a, n_a, x_b, n_b)
    win = float(np.mean(d > 0))
    # tolerances: 5 Monte Carlo standard errors (binomial SE for a share, sd/√draws for a mean)
    assert abs(got.chance_to_beat - win) < 5 * math.sqrt(win * (1 - win) / draws)
    gain = np.maximum(d, 0)
    assert abs(got.risk_a - gain.mean()) < 5 * gain.std() / math.sqrt(draws)
    assert got.diff == pytest.approx(d.mean(), abs=5 * d.std() / math.sqrt(draws))
    # a 2.5% quantile's SE is sqrt(q(1 − q)/draws)/density; the normal density at the quantile bounds it here
    q_se = math.sqrt(0.025 * 0.975 / draws) / (st.norm.pdf(st.norm.ppf(0.025)) / d.std())
    assert [got.ci_low, got.ci_high] == pytest.approx(np.quantile(d, [0.025, 0.975]), abs=5 * q_se)


def test_beta_binomial_is_symmetric_and_its_risks_differ_by_the_mean_difference():
    ab, ba = beta_binomial(30, 100, 45, 100), beta_binomial(45, 100, 30, 100)
    assert ab.chance_to_beat == pytest.approx(1 - ba.chance_to_beat, abs=1e-12)
    assert (ab.ci_low, ab.ci_high) == pytest.approx((-ba.ci_high, -ba.ci_low), abs=1e-10)
    assert (ab.risk_a, ab.risk_b) == pytest.approx((ba.risk_b, ba.risk_a), abs=1e-12)
    assert ab.risk_a - ab.risk_b == pytest.approx(ab.diff, abs=1e-12)


def test_beta_binomial_takes_fractional_counts_and_empty_arms():
    half = beta_binomial(2.5, 6, 4.5, 6)  # passes summed over per-case rates
    assert 0.5 < half.chance_to_beat < 1
    empty = beta_binomial(0, 0, 0, 0)  # no data: the prior alone, no crash
    assert empty.chance_to_beat == pytest.approx(0.5, abs=1e-12) and empty.diff == 0


@pytest.mark.parametrize("args", [(5, 3, 1, 3), (-1, 3, 1, 3), (math.nan, 3, 1, 3)])
def test_beta_binomial_rejects_impossible_counts(args):
    with pytest.raises(StatsError, match="valid count"):
        beta_binomial(*args)


def test_chance_to_win_watched_at_every_look_is_not_protected_against_peeking():
    """The docs' warning, measured: 2,000 A/A tests (p = 0.2 in both arms, 100 calls per arm per look) read at
    20 looks. At the last look alone "chance to win ≥ 95%" happens about 5% of the time, as a one-sided 5% test
    would (binomial tolerance of 5 SE); at any of the 20 looks about three times as often."""
    rng = np.random.default_rng(20261202)
    sims, looks, per_look = 2000, 20, 100
    xa = rng.binomial(per_look, 0.2, (sims, looks)).cumsum(axis=1)
    xb = rng.binomial(per_look, 0.2, (sims, looks)).cumsum(axis=1)
    wins = np.array([[bayesian_proportions(int(xa[s, k]), per_look * (k + 1), int(xb[s, k]),
                                           per_look * (k + 1)).chance_to_win for k in range(looks)]
                     for s in range(sims)])
    last, anywhere = np.mean(wins[:, -1] >= 0.95), np.mean(wins.max(axis=1) >= 0.95)
    assert abs(last - 0.05) < 5 * math.sqrt(0.05 * 0.95 / sims)
    assert anywhere > 0.12 and anywhere > 2.5 * last
