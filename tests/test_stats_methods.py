"""The methods users ask for by name (issue 17), each pinned to an outside reference with the call beside it:
Jeffreys / Clopper–Pearson / Agresti–Coull and the zero-failure bound (statsmodels, scipy), Bonferroni
(statsmodels), the Welch interval (scipy), power and planners (statsmodels' NormalIndPower, TTestPower,
proportion_effectsize, power_proportions_2indep), one-sided confidence sequences (confseq's published values and
a numerical integral of the mixture), the sequential SRM test (scipy's Dirichlet-multinomial and multinomial,
simulated type-I error) and the quantile difference (scipy's bootstrap, simulated coverage, histograms)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestPower
from statsmodels.stats.proportion import power_proportions_2indep, proportion_confint, proportion_effectsize

import promptlab as pl
from promptlab.errors import StatsError
from promptlab.stats import _confseq as confseq
from promptlab.stats import _planning as planning
from promptlab.stats import _srm as srm
from promptlab.stats._intervals import PROPORTION_METHODS, proportion_interval, zero_event_upper_bound
from promptlab.stats._lift import relative_lift
from promptlab.stats._multiplicity import bonferroni, holm
from promptlab.stats._quantiles import quantile_difference, quantile_difference_from_histograms
from promptlab.stats._sequential import always_valid, welch_interval

COUNTS = [(0, 1), (0, 20), (1, 20), (9, 10), (10, 10), (37, 40), (200, 1000), (3, 100_000), (99_990, 100_000)]
STATSMODELS_NAME = {"jeffreys": "jeffreys", "clopper-pearson": "beta", "agresti-coull": "agresti_coull",
                    "wilson": "wilson"}


# ---- proportions by name ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", PROPORTION_METHODS)
@pytest.mark.parametrize("x,n", COUNTS)
@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_proportion_interval_matches_statsmodels(method, x, n, confidence):
    got = proportion_interval(x, n, confidence, method=method)
    # statsmodels proportion_confint(x, n, alpha=1 - confidence, method="jeffreys"|"beta"|"agresti_coull"|"wilson")
    low, high = proportion_confint(x, n, alpha=1 - confidence, method=STATSMODELS_NAME[method])
    if method == "jeffreys" and x == 0:
        low = 0.0  # Brown, Cai & DasGupta (2001) set the bound to 0 at 0 events; statsmodels keeps the quantile
    if method == "jeffreys" and x == n:
        high = 1.0
    assert (got.low, got.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert got.estimate == x / n and got.method == method
    assert (got.zero_event_bound is not None) == (x in (0, n))


def test_clopper_pearson_is_exact_and_contains_jeffreys():
    # the exact interval for 0 of 20: [0, scipy.stats.beta.isf(0.025, 1, 20)] = [0, 0.16843347]
    assert proportion_interval(0, 20, method="clopper-pearson").high == pytest.approx(0.16843347, abs=1e-8)
    for x, n in COUNTS:  # Beta(x + ½, n − x + ½) lies between Clopper–Pearson's two beta laws
        exact, jeffreys = (proportion_interval(x, n, method=m) for m in ("clopper-pearson", "jeffreys"))
        assert exact.low <= jeffreys.low and jeffreys.high <= exact.high


def test_proportion_interval_bad_input_and_empty():
    empty = proportion_interval(0, 0, method="jeffreys")
    assert math.isnan(empty.estimate) and (empty.low, empty.high) == (0.0, 1.0)
    with pytest.raises(StatsError, match="not one of"):
        proportion_interval(1, 10, method="wald")
    with pytest.raises(StatsError, match="not a valid count"):
        proportion_interval(11, 10, method="clopper-pearson")
    assert pl.stats.proportion_interval(5, 10).method == "wilson"  # Wilson stays the default


@pytest.mark.parametrize("n", [1, 20, 300, 10_000])
def test_zero_failure_bound_is_the_exact_one_sided_bound(n):
    # scipy.stats.beta.ppf(0.95, 1, n): the Clopper–Pearson one-sided upper bound at 0 events
    assert zero_event_upper_bound(n) == pytest.approx(st.beta.ppf(0.95, 1, n), rel=1e-12)
    # statsmodels proportion_confint(0, n, alpha=0.10, method="beta")[1]: the same bound
    assert zero_event_upper_bound(n) == pytest.approx(proportion_confint(0, n, alpha=0.10, method="beta")[1])


def test_zero_failure_bound_rule_of_three():
    # Hanley & Lippman-Hand (1983), JAMA 249: "rule of three", 95% upper bound ≈ 3/n for large n
    for n in (1000, 100_000):  # n·bound → −ln 0.05 = 2.996, the rule's "3"
        assert n * zero_event_upper_bound(n) == pytest.approx(3, abs=0.01)
    assert zero_event_upper_bound(20) == pytest.approx(0.139, abs=5e-4)  # their table: 0 of 20 → 13.9%


# ---- multiplicity ----------------------------------------------------------------------------------------------
def test_bonferroni_matches_statsmodels():
    p = [0.01, 0.04, 0.03, 0.005, 0.20]
    # statsmodels multipletests(p, method="bonferroni")[1] → 0.05, 0.2, 0.15, 0.025, 1
    assert bonferroni(p).tolist() == pytest.approx(multipletests(p, method="bonferroni")[1].tolist())
    assert bonferroni(p).tolist() == pytest.approx([0.05, 0.2, 0.15, 0.025, 1.0])
    with_nan = bonferroni([0.01, math.nan, 0.04])
    assert math.isnan(with_nan[1]) and with_nan[[0, 2]].tolist() == pytest.approx([0.02, 0.08])
    assert (holm(p) <= bonferroni(p)).all()  # Holm never adjusts more than Bonferroni
    with pytest.raises(StatsError, match="outside"):
        bonferroni([0.5, 1.5])
    assert bonferroni([]).size == 0


# ---- means: the Welch interval and the relative lift -----------------------------------------------------------
def _summary(x: np.ndarray) -> tuple[float, float, int]:
    return float(x.mean()), float(x.var(ddof=1)), int(x.size)


@pytest.mark.parametrize("seed,n_a,n_b", [(0, 30, 30), (1, 12, 400), (2, 5000, 4000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_welch_interval_matches_scipy(seed, n_a, n_b, confidence):
    rng = np.random.default_rng(seed)
    a, b = rng.lognormal(0, 1, n_a), rng.lognormal(0.1, 1.3, n_b)
    got = welch_interval(*_summary(a), *_summary(b), confidence=confidence)
    # scipy.stats.ttest_ind(b, a, equal_var=False).confidence_interval(confidence)
    ref = st.ttest_ind(b, a, equal_var=False)
    ci = ref.confidence_interval(confidence)
    assert (got.low, got.high) == (pytest.approx(ci.low, rel=1e-10), pytest.approx(ci.high, rel=1e-10))
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-10) and got.df == pytest.approx(ref.df, rel=1e-10)
    # the relative lift is the delta-method interval of promptlab.stats.relative_lift (pinned to gbstats there)
    assert got.relative == relative_lift(*_summary(a), *_summary(b), confidence=confidence)


def test_welch_interval_degenerate_and_bad_input():
    flat = welch_interval(1.0, 0.0, 10, 1.5, 0.0, 10)
    assert (flat.low, flat.high, flat.p_value) == (0.5, 0.5, 0.0)
    zero_base = welch_interval(0.0, 0.2, 10, 0.5, 0.2, 10)
    assert math.isnan(zero_base.relative.estimate) and "control mean is 0" in zero_base.relative.note
    with pytest.raises(StatsError, match="at least 2 units"):
        welch_interval(1.0, 0.1, 1, 1.0, 0.1, 10)
    with pytest.raises(StatsError, match="NaN"):
        welch_interval(math.nan, 0.1, 5, 1.0, 0.1, 10)


# ---- planning: power and sample size pinned to statsmodels -----------------------------------------------------
@pytest.mark.parametrize("p1,p2,n", [(0.20, 0.22, 6510), (0.10, 0.12, 500), (0.5, 0.4, 100), (0.01, 0.03, 2000)])
def test_power_two_proportions_pooled_matches_statsmodels(p1, p2, n):
    # statsmodels power_proportions_2indep(p2 - p1, p1, n, ratio=1, alpha=0.05).power (pooled null variance)
    ref = power_proportions_2indep(p2 - p1, p1, n, ratio=1, alpha=0.05, alternative="two-sided").power
    assert planning.power_two_proportions(p1, p2, n) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("p1,p2,n", [(0.20, 0.22, 6510), (0.10, 0.12, 500), (0.5, 0.4, 100)])
def test_power_two_proportions_arcsine_matches_normal_ind_power(p1, p2, n):
    h = proportion_effectsize(p2, p1)
    # statsmodels NormalIndPower().power(proportion_effectsize(p2, p1), n, 0.05, ratio=1)
    ref = NormalIndPower().power(h, nobs1=n, alpha=0.05, ratio=1)
    assert planning.power_two_proportions(p1, p2, n, method="arcsine") == pytest.approx(ref, rel=1e-10)
    # one-sided: NormalIndPower().power(|h|, n, 0.05, ratio=1, alternative="larger")
    ref1 = NormalIndPower().power(abs(h), nobs1=n, alpha=0.05, ratio=1, alternative="larger")
    got1 = planning.power_two_proportions(p1, p2, n, method="arcsine", alternative="one-sided")
    assert got1 == pytest.approx(ref1, rel=1e-10)


@pytest.mark.parametrize("p1,p2", [(0.20, 0.22), (0.10, 0.12), (0.5, 0.45)])
def test_sample_size_arcsine_matches_normal_ind_power(p1, p2):
    # statsmodels NormalIndPower().solve_power(effect_size=proportion_effectsize(p2, p1), alpha=0.05, power=0.8,
    # ratio=1): the unrounded size; promptlab rounds up
    ref = NormalIndPower().solve_power(effect_size=proportion_effectsize(p2, p1), alpha=0.05, power=0.8, ratio=1)
    assert planning.sample_size_two_proportions(p1, p2, method="arcsine") == math.ceil(ref)
    n = planning.sample_size_two_proportions(p1, p2)
    assert planning.power_two_proportions(p1, p2, n) >= 0.8 > planning.power_two_proportions(p1, p2, n - 2)


@pytest.mark.parametrize("p_base,n", [(0.20, 6510), (0.10, 3841), (0.5, 200)])
def test_mde_has_the_planned_power_by_statsmodels(p_base, n):
    mde = planning.mde_two_proportions(p_base, n)
    # statsmodels power_proportions_2indep(mde, p_base, n).power: 0.8 (its far tail adds under 1e-5)
    assert power_proportions_2indep(mde, p_base, n, alpha=0.05).power == pytest.approx(0.8, abs=1e-5)


@pytest.mark.parametrize("n,omega2,delta", [(1013, 0.1161, 0.03), (50, 0.25, 0.1), (8, 1.0, 1.0)])
def test_power_paired_matches_statsmodels(n, omega2, delta):
    d = delta / math.sqrt(omega2)
    # statsmodels NormalIndPower().power(δ/ω, n, 0.05, ratio=0): the one-sample z test
    assert planning.power_paired(n, omega2, delta) == pytest.approx(
        NormalIndPower().power(d, nobs1=n, alpha=0.05, ratio=0), rel=1e-10)
    # statsmodels TTestPower().power(δ/ω, n, 0.05): the paired (one-sample) t test
    assert planning.power_paired(n, omega2, delta, test="t") == pytest.approx(
        TTestPower().power(d, nobs=n, alpha=0.05), rel=1e-9)
    assert planning.power_paired(n, omega2, delta, test="t", alternative="one-sided") == pytest.approx(
        TTestPower().power(d, nobs=n, alpha=0.05, alternative="larger"), rel=1e-9)


@pytest.mark.parametrize("omega2,delta,power", [(0.1161, 0.03, 0.8), (0.25, 0.1, 0.9), (1.0, 1.0, 0.8),
                                               (1.0, 5.0, 0.8)])
def test_sample_size_paired_t_matches_ttest_power(omega2, delta, power):
    # statsmodels TTestPower().solve_power(effect_size=δ/ω, alpha=0.05, power=power), rounded up
    ref = TTestPower().solve_power(effect_size=delta / math.sqrt(omega2), alpha=0.05, power=power)
    assert planning.sample_size_paired(omega2, delta, power=power, test="t") == math.ceil(ref)
    assert planning.sample_size_paired(omega2, delta, power=power, test="t") >= planning.sample_size_paired(
        omega2, delta, power=power)


def test_power_bad_input():
    with pytest.raises(StatsError, match="not one of"):
        planning.power_paired(10, 1.0, 0.5, test="wilcoxon")
    with pytest.raises(StatsError, match="not one of"):
        planning.power_two_proportions(0.1, 0.2, 10, method="exact")
    with pytest.raises(StatsError, match="n_per_arm"):
        planning.power_two_proportions(0.1, 0.2, 0)
    assert planning.power_paired(10, 1.0, 0.0) == pytest.approx(0.05)  # no effect: power is the size


# ---- one-sided confidence sequences ----------------------------------------------------------------------------
def test_one_sided_mixture_matches_confseq_published_values():
    # confseq (Howard et al.) test/uniform_boundaries_unittest.cpp, values "from a reference implementation in R":
    # normal_log_mixture(10, 100, 100) = -0.06502391 and normal_mixture_bound(100, 0.05, 100) = 27.66071 (one-sided)
    assert confseq.one_sided_log_mixture(10, 100, 100) == pytest.approx(-0.06502391, abs=1e-7)
    assert confseq.one_sided_boundary(100, 0.05, 100) == pytest.approx(27.66071, abs=1e-5)


@pytest.mark.parametrize("s,v,v_opt", [(10, 100, 100), (-3, 50, 500), (40, 400, 100), (0, 1, 5000)])
def test_one_sided_mixture_is_the_integral_over_a_half_normal(s, v, v_opt):
    rho = confseq.one_sided_rho(v_opt)

    def integrand(lam: float) -> float:  # exp(λs − λ²v/2) · half-normal density of precision ρ
        return math.exp(lam * s - lam * lam * v / 2) * 2 * st.norm.pdf(lam, scale=1 / math.sqrt(rho))

    # scipy.integrate.quad of the mixture over λ ≥ 0 (Howard et al. 2021's definition), in logs
    value, _ = integrate.quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-12, limit=200)
    assert confseq.one_sided_log_mixture(s, v, v_opt) == pytest.approx(math.log(value), abs=1e-8)


def test_one_sided_sequence_holds_at_every_look_and_is_tighter():
    rng = np.random.default_rng(7)
    paths, steps, look = 2000, 2000, 20
    n = np.arange(look, steps + 1, look)
    x = rng.standard_normal((paths, steps)).cumsum(axis=1)[:, look - 1::look]  # sums at each look, θ = 0
    estimate, variance = x / n, 1.0 / n  # the mean of n unit-variance values and Var(mean)
    half = np.array([confseq.one_sided_boundary(m, 0.05, 5000) for m in n]) * np.sqrt(variance / n)
    crossed = ((estimate - half) > 0).any(axis=1).mean()  # lower bound above the true 0 at some look
    # time-uniform: at most α (+3 SE of 2,000 paths); the fixed one-sided z at every look crosses far more
    assert crossed <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / paths)
    assert ((estimate / np.sqrt(variance)) > st.norm.isf(0.05)).any(axis=1).mean() > 0.2
    one = confseq.one_sided_sequence(0.02, 1e-4, 4000)
    two = always_valid(0.02, 1e-4, 4000)
    assert two.ci_low < one.bound < 0.02 and one.side == "lower"


def test_one_sided_sequence_looks_and_sides():
    frame = confseq.one_sided_sequence([0.0, 0.01, 0.03], [1e-3, 2e-4, 1e-4], [100, 1000, 2000])
    assert list(frame.columns) == confseq.ONE_SIDED_COLUMNS
    assert (np.diff(frame["p_value"]) <= 0).all() and frame["p_value"].iloc[-1] < 0.05
    upper = confseq.one_sided_sequence(-0.03, 1e-4, 2000, side="upper")
    lower = confseq.one_sided_sequence(0.03, 1e-4, 2000)
    assert upper.bound == pytest.approx(-lower.bound) and upper.p_value == pytest.approx(lower.p_value)
    empty = confseq.one_sided_sequence(0.1, 0.0, 0)
    assert (empty.p_value, empty.bound) == (1.0, -math.inf)
    with pytest.raises(StatsError, match="side"):
        confseq.one_sided_sequence(0.1, 0.01, 10, side="both")


# ---- sequential SRM --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("counts,weights", [([5000, 5200], [1, 1]), ([900, 120], [9, 1]), ([40, 31, 29], [1, 1, 1]),
                                            ([0, 0], [1, 1]), ([7, 0], [1, 3])])
def test_srm_bayes_factor_is_dirichlet_multinomial_over_multinomial(counts, weights):
    p0 = np.asarray(weights, float) / sum(weights)
    alpha = 10_000 * p0
    n = sum(counts)
    # scipy.stats.dirichlet_multinomial.logpmf(x, α, n) − scipy.stats.multinomial.logpmf(x, n, p0): the paper's
    # marginal likelihood ratio (Lindon, Semmens & Gotwalt 2022, eq. for the Dirichlet-multinomial Bayes factor)
    ref = 0.0 if n == 0 else (st.dirichlet_multinomial.logpmf(counts, alpha, n) - st.multinomial.logpmf(counts, n, p0))
    assert srm.log_bayes_factor(counts, p0) == pytest.approx(ref, abs=1e-8)


def test_srm_bayes_factor_closed_form_with_gammaln():
    from scipy.special import gammaln

    x, p0, c = np.array([5000, 5600]), np.array([0.5, 0.5]), 10_000
    a = c * p0
    # the closed form, written out with scipy.special.gammaln
    ref = (gammaln(a.sum()) - gammaln(a.sum() + x.sum()) + (gammaln(a + x) - gammaln(a)).sum() - (x * np.log(p0)).sum())
    got = pl.stats.sequential_srm([5000, 5600])
    assert got.log_bayes_factor == pytest.approx(ref, abs=1e-9)
    assert got.mismatch and got.p_value == pytest.approx(math.exp(-ref))
    # the comparison column is the fixed χ² of each look: scipy.stats.chisquare([5000, 5600]).pvalue = 5.6e-09
    assert got.looks["chi2_p"].iloc[0] == pytest.approx(st.chisquare([5000, 5600]).pvalue, rel=1e-12)


def test_srm_is_the_same_read_one_unit_at_a_time_or_in_batches():
    rng = np.random.default_rng(3)
    arms = rng.choice(3, size=600, p=[0.5, 0.3, 0.2])
    per_unit = np.cumsum(np.eye(3)[arms], axis=0)
    p0 = np.array([0.5, 0.3, 0.2])
    a = 10_000 * p0
    # sequential Bayes: Σ ln of each unit's posterior predictive (α_k + x_k)/(A + n) over its null probability p0_k
    counts = np.zeros(3)
    total = 0.0
    for k in arms:
        total += math.log((a[k] + counts[k]) / (a.sum() + counts.sum())) - math.log(p0[k])
        counts[k] += 1
    batched = srm.sequential_srm(per_unit[99::100], [5, 3, 2])
    assert batched.log_bayes_factor == pytest.approx(total, abs=1e-8)
    assert len(batched.looks) == 6 and batched.looks["n"].tolist() == [100, 200, 300, 400, 500, 600]


def test_srm_type_one_error_under_the_null_is_at_most_alpha():
    rng = np.random.default_rng(11)
    experiments, looks, per_look = 400, 50, 200
    draws = rng.binomial(per_look, 0.5, size=(experiments, looks)).cumsum(axis=1)
    total = per_look * np.arange(1, looks + 1)
    seq, chi = 0, 0
    for row in draws:
        counts = np.column_stack([row, total - row])
        read = srm.sequential_srm(counts, threshold=0.05)
        seq += read.mismatch
        chi += (read.looks["chi2_p"] < 0.05).any()
    # always valid: at most α = 0.05 (+3 SE of 400 experiments) however often it is read; the fixed χ² read at all
    # 50 looks flags far more often (Armitage et al. 1969)
    assert seq / experiments <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / experiments)
    assert chi / experiments > 0.15


def test_srm_detects_a_broken_split_and_rejects_bad_input():
    looks = np.array([[n * 0.53, n * 0.47] for n in range(2000, 40_001, 2000)]).round()
    res = srm.sequential_srm(looks)
    assert res.mismatch and "mismatch" in res.message and res.observed == (21200, 18800)
    first = int(np.argmax(res.looks["p_value"] < 0.001))
    assert 0 < first < len(looks) - 1  # found before the end
    with pytest.raises(StatsError, match="cumulative"):
        srm.sequential_srm([[10, 10], [5, 30]])
    with pytest.raises(StatsError, match="weight"):
        srm.sequential_srm([10, 10], [1, 0])
    with pytest.raises(StatsError, match="whole"):
        srm.sequential_srm([10.5, 10])


def test_experiment_shows_the_sequential_srm_beside_the_chi2(tmp_path):
    from promptlab.production import Design, EventLog, analyze_experiment, hash_unit

    def rows(arm: str, n: int, hour: int) -> pd.DataFrame:
        return pd.DataFrame({"ts_ms": 1_736_121_600_000 + hour * 3_600_000 + np.arange(n), "experiment": "exp",
                             "prompt": "p", "version": arm, "arm": arm, "success": 1, "latency_s": 0.5,
                             "unit_hash": [hash_unit(f"{arm}-{hour}-{i}") for i in range(n)]})

    log = EventLog(tmp_path / "e.db")
    frames = [rows(arm, n, hour) for hour in range(4) for arm, n in (("A", 500), ("B", 700))]
    frames.append(rows("A", 500, 0).assign(ts_ms=lambda f: f["ts_ms"] + 3 * 3_600_000))  # returning units
    log.append_frame(pd.concat(frames, ignore_index=True))
    report = analyze_experiment(log, Design("exp", ("A", "B"), (1.0, 1.0), "A"))
    seq = report.srm.sequential
    assert seq.looks["n"].tolist() == [1200, 2400, 3600, 4800]  # units by the look of their first call
    assert seq.observed == (2000, 2800) == tuple(report.arms["units"])
    # the last look's Bayes factor: scipy dirichlet_multinomial.logpmf − multinomial.logpmf on the distinct units
    ref = st.dirichlet_multinomial.logpmf([2000, 2800], [5000, 5000], 4800) - st.multinomial.logpmf(
        [2000, 2800], 4800, [0.5, 0.5])
    assert seq.log_bayes_factor == pytest.approx(ref, abs=1e-8)
    assert report.srm.flagged and seq.mismatch and "sequential SRM" in report.reasons[0]


# ---- the difference of a quantile (Deng, Knoblich & Lu 2018) ---------------------------------------------------
def test_quantile_difference_agrees_with_scipy_bootstrap_on_large_samples():
    rng = np.random.default_rng(5)
    a, b = rng.lognormal(0.0, 0.6, 10_000), rng.lognormal(0.1, 0.6, 10_000)
    got = quantile_difference(a, b, 0.95)

    def stat(x, y, axis=-1):
        return (np.quantile(y, 0.95, axis=axis, method="inverted_cdf")
                - np.quantile(x, 0.95, axis=axis, method="inverted_cdf"))

    # scipy.stats.bootstrap((a, b), stat, n_resamples=1000, method="percentile", rng=default_rng(0))
    ref = st.bootstrap((a, b), stat, vectorized=True, n_resamples=1000, method="percentile",
                       rng=np.random.default_rng(0)).confidence_interval
    assert got.diff == pytest.approx(stat(a, b))
    assert got.ci_low == pytest.approx(ref.low, abs=0.15 * (ref.high - ref.low))
    assert got.ci_high == pytest.approx(ref.high, abs=0.15 * (ref.high - ref.low))


def test_quantile_difference_covers_the_true_difference():
    rng = np.random.default_rng(9)
    z95 = st.norm.ppf(0.95)
    truth = math.exp(0.2 + 0.5 * z95) - math.exp(0.5 * z95)  # p95 of lognormal(0.2, 0.5) − of lognormal(0, 0.5)
    reps = 400
    covered = 0
    for _ in range(reps):
        res = quantile_difference(rng.lognormal(0, 0.5, 3000), rng.lognormal(0.2, 0.5, 3000), 0.95)
        covered += res.ci_low <= truth <= res.ci_high
    # nominal 95% ± 3 SE of 400 seeded repetitions
    assert abs(covered / reps - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / reps)


def test_quantile_difference_from_histograms_is_the_raw_read_within_its_error():
    rng = np.random.default_rng(2)
    a, b = rng.lognormal(-0.5, 0.7, 50_000), rng.lognormal(-0.3, 0.7, 40_000)
    edges = np.geomspace(0.001, 1000, 12_001)  # log buckets about 0.12% wide, 1 ms to 1,000 s
    raw = quantile_difference(a, b, 0.95)
    hist = quantile_difference_from_histograms(edges, np.histogram(a, edges)[0], np.histogram(b, edges)[0], 0.95)
    assert 0 < hist.max_error < 0.05 * raw.diff and raw.max_error == 0
    for field in ("diff", "ci_low", "ci_high", "estimate_a", "estimate_b"):
        assert abs(getattr(hist, field) - getattr(raw, field)) <= hist.max_error, field
    assert (hist.n_a, hist.n_b) == (50_000, 40_000)


def test_quantile_difference_ugly_inputs():
    small = quantile_difference([1.0, 2.0, 3.0], [1.0, 2.0, 5.0], 0.95)  # too few values for the upper rank
    assert math.isnan(small.se_a) and (small.ci_low, small.ci_high) == (-math.inf, math.inf)
    with_nan = quantile_difference([np.nan, *range(1, 201)], list(range(1, 201)), 0.5)
    assert with_nan.n_a == 200 and with_nan.diff == 0
    with pytest.raises(StatsError, match="no values"):
        quantile_difference([], [1.0], 0.5)
    with pytest.raises(StatsError, match="0 < q < 1"):
        quantile_difference([1.0, 2.0], [1.0], 1.0)
    with pytest.raises(StatsError, match="increasing"):
        quantile_difference_from_histograms([0, 1, 1], [1, 1], [1, 1])
    with pytest.raises(StatsError, match="counts_b"):
        quantile_difference_from_histograms([0, 1, 2], [1, 1], [1])
