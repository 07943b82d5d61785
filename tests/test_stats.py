"""Every statistic pinned to the reference values of docs/statistics.md (the reference call is in the
comment) and cross-checked live against statsmodels where it has the method."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from promptlab.errors import PromptlabError, StatsError
from promptlab.stats import _planning as planning
from promptlab.stats import _sequential as sequential
from promptlab.stats._intervals import case_proportion_interval, newcombe_interval, wilson_bounds, wilson_interval
from promptlab.stats._means import case_mean_se, clustered_se, mean_se
from promptlab.stats._multiplicity import benjamini_hochberg, holm
from promptlab.stats._paired import (
    mcnemar,
    paired_bootstrap,
    paired_bootstrap_levels,
    paired_proportion_interval,
    paired_ttest,
    sign_test,
)
from promptlab.stats._quantiles import QUANTILE_METHOD, compare_quantiles, grouped_quantile, quantile, quantile_ci

S_A = [1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0]
S_B = [1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1]
CLUSTERS = [i // 5 for i in range(20)]
P_FAMILY = [0.01, 0.04, 0.03, 0.005, 0.20]


# ---- Wilson and zero-event bounds ------------------------------------------------------------------------
@pytest.mark.parametrize(("x", "n", "low", "high"), [
    (200, 1000, 0.1763770904, 0.2259189646),  # proportion_confint(200, 1000, method="wilson")
    (240, 1000, 0.2145565252, 0.2674333892),  # proportion_confint(240, 1000, method="wilson")
    (0, 20, 0.0, 0.161125),  # proportion_confint(0, 20, method="wilson")
    (9, 10, 0.595850, 0.982124),  # proportion_confint(9, 10, method="wilson")
])
def test_wilson_reference(x, n, low, high):
    ci = wilson_interval(x, n)
    assert ci.low == pytest.approx(low, abs=1e-6)
    assert ci.high == pytest.approx(high, abs=1e-6)
    assert (ci.low, ci.high) == pytest.approx(proportion_confint(x, n, method="wilson"), abs=1e-12)


def test_wilson_zero_events_exposes_exact_bound():
    # 1 − 0.05**(1/20): exact one-sided 95% upper bound when 0 of 20 failed (or passed)
    all_pass, none_pass = wilson_interval(20, 20), wilson_interval(0, 20)
    assert all_pass.zero_event_bound == pytest.approx(1 - 0.05 ** (1 / 20))
    assert none_pass.zero_event_bound == pytest.approx(0.1391083930)
    assert "0 failures in 20" in all_pass.note and "13.9%" in all_pass.note
    assert "0 successes in 20" in none_pass.note
    assert wilson_interval(9, 10).zero_event_bound is None and wilson_interval(9, 10).note == ""


def test_wilson_n_zero_is_uninformative_not_an_error():
    ci = wilson_interval(0, 0)
    assert math.isnan(ci.estimate) and (ci.low, ci.high) == (0.0, 1.0)


@pytest.mark.parametrize(("x", "n"), [(-1, 10), (11, 10), (1, -1)])
def test_wilson_rejects_bad_counts(x, n):
    with pytest.raises(StatsError, match="not a valid count"):
        wilson_interval(x, n)


def test_stats_error_is_in_the_tree():
    assert issubclass(StatsError, PromptlabError) and issubclass(StatsError, ValueError)


def test_newcombe_independent_matches_statsmodels():
    # confint_proportions_2indep(240, 1000, 200, 1000, method="newcomb") → B − A
    ci = newcombe_interval(200, 1000, 240, 1000)
    ref = confint_proportions_2indep(240, 1000, 200, 1000, method="newcomb", compare="diff")
    assert ci.estimate == pytest.approx(0.04)
    assert (ci.low, ci.high) == pytest.approx(ref, abs=1e-12)
    assert (ci.low, ci.high) == pytest.approx((0.0036797145, 0.0762026615), abs=1e-9)


# ---- means and standard errors ---------------------------------------------------------------------------
def test_eval_standard_errors_reference():
    # docs/statistics.md "Eval SEs": mean 0.6, CLT SE 0.1123902974, clustered 0.1224744871
    # (× inspect_ai's sqrt(C/(C−1)) → 0.1414213562)
    clt = mean_se(S_A)
    assert clt.mean == pytest.approx(0.6) and clt.se == pytest.approx(0.1123902974, abs=1e-10)
    paper = clustered_se(S_A, CLUSTERS)
    assert paper.se == pytest.approx(0.1224744871, abs=1e-10) and paper.method == "clustered"
    inspect = clustered_se(S_A, CLUSTERS, small_sample_factor=True)
    assert inspect.se == pytest.approx(0.1414213562, abs=1e-10) and inspect.method == "clustered (inspect_ai)"


def test_case_mean_se_averages_repeats_first():
    # two repeats per case: the SE is over the 3 per-case means [1, 0.5, 0], not over 6 answers
    result = case_mean_se([1, 1, 1, 0, 0, 0], ["a", "a", "b", "b", "c", "c"])
    assert result.n == 3 and result.mean == pytest.approx(0.5)
    assert result.se == pytest.approx(np.std([1, 0.5, 0], ddof=1) / math.sqrt(3))


@pytest.mark.parametrize(("p", "n"), [(0.0, 6), (1.0, 6), (0.5, 6.0), (0.3, 17.25), (0.02, 41.7), (0.9, 1.5)])
@pytest.mark.parametrize("confidence", [0.95, 0.99, 0.975])
def test_wilson_bounds_match_statsmodels_for_fractional_n(p, n, confidence):
    # statsmodels proportion_confint(p * n, n, alpha=1 - confidence, method="wilson"), fractional counts included
    low, high = wilson_bounds(p, n, confidence)
    ref = proportion_confint(p * n, n, alpha=1 - confidence, method="wilson")
    assert (low, high) == pytest.approx(ref, abs=1e-12)


def test_wilson_bounds_equal_the_wilson_interval_on_whole_counts():
    for x, n in ((0, 6), (9, 11), (200, 1000)):
        ci = wilson_interval(x, n)
        assert wilson_bounds(x / n, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    with pytest.raises(StatsError, match="n=0"):
        wilson_bounds(0.5, 0)


@pytest.mark.parametrize("repeats", [1, 2, 3, 10])
def test_case_proportion_interval_never_collapses_at_the_boundary(repeats):
    # every case agrees: the repeats say nothing about within-case agreement, so n_eff = cases and the
    # interval is proportion_confint(0, 6, method="wilson") = (0, 0.3903342879) however many repeats
    cases = [f"c{i}" for i in range(6) for _ in range(repeats)]
    result = case_proportion_interval([0] * len(cases), cases)
    assert (result.low, result.high) == pytest.approx(proportion_confint(0, 6, method="wilson"), abs=1e-12)
    assert (result.mean, result.se, result.n, result.calls, result.n_eff) == (0.0, 0.0, 6, 6 * repeats, 6.0)


def test_case_proportion_interval_is_the_clt_over_cases_floored_by_wilson_at_n_eff():
    values = [1, 1, 1, 0, 0, 0, 0, 1]
    cases = ["a", "a", "b", "b", "c", "c", "d", "d"]
    result = case_proportion_interval(values, cases)
    over = case_mean_se(values, cases)
    z = 1.959963984540054
    # per-case [1, .5, 0, .5]: SE sqrt(1/6)/2, n_eff = 0.25 / SE² = 6 (between 4 cases and 8 calls)
    assert result.se == over.se and result.n_eff == pytest.approx(6.0)
    wilson = proportion_confint(3, 6, method="wilson")  # (0.1876, 0.8124): narrower, so the CLT interval stands
    assert (result.low, result.high) == pytest.approx((0.5 - z * over.se, 0.5 + z * over.se))
    assert result.low < wilson[0] and result.high > wilson[1]
    # one discordant case of six near 0: the CLT interval clips at 0, the Wilson floor keeps the upper end honest
    near = case_proportion_interval([1, 0] + [0] * 10, [f"c{i // 2}" for i in range(12)])
    n_eff = (1 / 12) * (11 / 12) / near.se ** 2
    assert near.n_eff == pytest.approx(min(12, max(6, n_eff)))
    assert near.high == pytest.approx(proportion_confint(near.n_eff / 12, near.n_eff, method="wilson")[1])
    assert near.low == 0.0


def test_case_proportion_interval_refuses_what_is_not_a_pass_or_failure():
    with pytest.raises(StatsError, match=r"1 \(pass\) or 0 \(failure\).*no verdict as 0"):
        case_proportion_interval([1, math.nan], ["a", "a"])
    with pytest.raises(StatsError, match="one case id per value"):
        case_proportion_interval([1, 0], ["a"])


def test_mean_se_edge_cases():
    assert math.isnan(mean_se([0.7]).se)
    with pytest.raises(StatsError, match="no values"):
        mean_se([math.nan])


# ---- independent arms (online, fixed horizon) ------------------------------------------------------------
@pytest.mark.parametrize(("xa", "na", "xb", "nb", "z", "p2", "p1"), [
    # T1: proportions_ztest([240, 200], [1000, 1000])
    (200, 1000, 240, 1000, 2.1591675854, 0.0308371678, 0.0154185839),
    # T2: proportions_ztest([60, 45], [500, 500])
    (45, 500, 60, 500, 1.5473376461, 0.1217818484, 0.0608909242),
])
def test_two_proportion_ztest_reference(xa, na, xb, nb, z, p2, p1):
    two = sequential.two_proportion_ztest(xa, na, xb, nb)
    one = sequential.two_proportion_ztest(xa, na, xb, nb, alternative="greater")
    assert two.statistic == pytest.approx(z, abs=1e-9) and two.p_value == pytest.approx(p2, abs=1e-10)
    assert one.p_value == pytest.approx(p1, abs=1e-10)
    less = sequential.two_proportion_ztest(xa, na, xb, nb, alternative="less")
    assert less.p_value == pytest.approx(1 - p1)
    ref_z, ref_p = proportions_ztest([xb, xa], [nb, na])
    assert (two.statistic, two.p_value) == pytest.approx((ref_z, ref_p), abs=1e-12)


def test_two_proportion_unpooled_matches_statsmodels():
    # statsmodels.stats.proportion.test_proportions_2indep(240, 1000, 200, 1000, method="wald")
    ours = sequential.two_proportion_ztest(200, 1000, 240, 1000, pooled=False)
    ref = sm_proportion.test_proportions_2indep(240, 1000, 200, 1000, method="wald", compare="diff")
    assert (ours.statistic, ours.p_value) == pytest.approx((ref.statistic, ref.pvalue), abs=1e-12)


def test_welch_from_summaries_reference():
    # docs/statistics.md: fixed-horizon Welch on T1 data, p = 0.0307611084
    # scipy.stats.ttest_ind_from_stats(.24, sqrt(.24*.76), 1000, .2, sqrt(.16), 1000, equal_var=False)
    res = sequential.welch_test(0.2, 0.2 * 0.8, 1000, 0.24, 0.24 * 0.76, 1000)
    assert res.p_value == pytest.approx(0.0307611084, abs=1e-10) and res.estimate == pytest.approx(0.04)


def test_is_significant_is_two_sided_by_default_and_unpacks():
    res = sequential.is_significant(200, 1000, 240, 1000)
    significant, p = res
    assert significant and bool(res) and p == pytest.approx(0.0308371678, abs=1e-10)
    # the starting document's test: one-sided pooled z (p = 1 − cdf(z)); ours computes it with norm.sf
    article = sequential.is_significant(45, 500, 60, 500, alternative="greater")
    assert article.p_value == pytest.approx(0.0608909242, abs=1e-10) and not article


def test_far_tail_p_is_not_rounded_to_zero():
    # 1 − norm.cdf(z) is exactly 0 here; norm.sf keeps the tail
    res = sequential.two_proportion_ztest(100, 10_000, 900, 10_000, alternative="greater")
    assert 0 < res.p_value < 1e-100


# ---- paired tests ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b", "c", "d", "exact", "mid", "chi2", "p_chi2"), [
    (120, 10, 25, 45, 0.0166738478, 0.0113309842, 6.4285714, 0.0112298867),  # M1
    (80, 3, 12, 5, 0.03515625, 0.0212707520, 5.4, 0.0201367516),  # M2
])
def test_mcnemar_reference(a, b, c, d, exact, mid, chi2, p_chi2):
    # statsmodels.stats.contingency_tables.mcnemar([[a, b], [c, d]], exact=True); mid-p by formula
    res = mcnemar(b, c, a=a, d=d)
    assert res.p_exact == pytest.approx(exact, abs=1e-10) and res.p_mid == pytest.approx(mid, abs=1e-10)
    assert res.p_value == res.p_mid
    assert res.chi2 == pytest.approx(chi2, abs=1e-7) and res.p_chi2 == pytest.approx(p_chi2, abs=1e-10)
    assert res.p_exact == pytest.approx(sm_mcnemar([[a, b], [c, d]], exact=True).pvalue, abs=1e-12)
    # mcnemar(..., exact=False, correction=False): chi-square without continuity correction
    ref = sm_mcnemar([[a, b], [c, d]], exact=False, correction=False)
    assert (res.chi2, res.p_chi2) == pytest.approx((ref.statistic, ref.pvalue), abs=1e-12)
    assert res.effect == pytest.approx((c - b) / (a + b + c + d))
    assert res.ci_low < res.effect < res.ci_high


def test_pairing_beats_the_unpaired_test_on_m1():
    # docs/statistics.md: an unpaired z-test on M1's marginals gives p = 0.1056
    # proportions_ztest([145, 130], [200, 200])
    unpaired = sequential.two_proportion_ztest(130, 200, 145, 200)
    assert unpaired.p_value == pytest.approx(0.1056, abs=5e-5)
    assert mcnemar(10, 25, a=120, d=45).p_value < 0.05 < unpaired.p_value


def test_paired_proportion_interval_reference():
    # R contingencytables::Newcombe_square_and_add_CI_paired_2x2(matrix(c(59, 6, 16, 80), 2, byrow=TRUE))
    # → estimate −0.0621 (95% CI −0.1186 to −0.0046) for first − second; ours is second − first
    ci = paired_proportion_interval(59, 6, 16, 80)
    assert ci.estimate == pytest.approx(0.0621, abs=5e-5)
    assert (ci.low, ci.high) == pytest.approx((0.0046, 0.1186), abs=5e-5)


def test_mcnemar_edge_cases_answer():
    none = mcnemar(0, 0, a=30, d=10)
    assert (none.p_exact, none.p_mid, none.chi2, none.p_chi2, none.effect) == (1.0, 1.0, 0.0, 1.0, 0.0)
    assert none.ci_low < 0 < none.ci_high
    empty = mcnemar(0, 0)
    assert math.isnan(empty.effect) and (empty.ci_low, empty.ci_high, empty.p_value) == (-1.0, 1.0, 1.0)
    with pytest.raises(StatsError, match="counts"):
        mcnemar(-1, 3)


def test_paired_ttest_reference():
    # scipy.stats.ttest_rel(S_B, S_A) → t 2.1794494718, p 0.0420862867; paired SE 0.0917662935 vs 0.1450952500
    res = paired_ttest(S_A, S_B)
    assert res.diff == pytest.approx(0.2)
    assert res.statistic == pytest.approx(2.1794494718, abs=1e-9)
    assert res.p_value == pytest.approx(0.0420862867, abs=1e-10)
    assert res.se == pytest.approx(0.0917662935, abs=1e-10)
    assert res.se_unpaired == pytest.approx(0.1450952500, abs=1e-10)
    # the identity SE² = SE_A² + SE_B² − 2 r SE_A SE_B
    se_a, se_b = mean_se(S_A).se, mean_se(S_B).se
    assert res.se ** 2 == pytest.approx(se_a ** 2 + se_b ** 2 - 2 * res.correlation * se_a * se_b)


def test_paired_ttest_degenerate_cases():
    same = paired_ttest([1, 0, 1], [1, 0, 1])
    assert (same.p_value, same.diff, same.ci_low, same.ci_high) == (1.0, 0.0, 0.0, 0.0)
    shifted = paired_ttest([0, 0, 0, 0, 0], [1, 1, 1, 1, 1])
    assert shifted.method == "sign test" and shifted.p_value == pytest.approx(2 * 0.5 ** 5)
    nothing = paired_ttest([math.nan], [1.0])
    assert nothing.n == 0 and nothing.dropped == 1 and nothing.p_value == 1.0
    with pytest.raises(StatsError, match="one length"):
        paired_ttest([1, 2], [1])


def test_paired_bootstrap_is_seeded_and_brackets_the_difference():
    first = paired_bootstrap(S_A, S_B, seed=3)
    again = paired_bootstrap(S_A, S_B, seed=3)
    assert first == again and first.method == "BCa"
    assert first.diff == pytest.approx(0.2) and first.ci_low < first.diff < first.ci_high


def test_paired_bootstrap_large_n_uses_percentile_fast_path():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 20_000).astype(float)
    b = np.where(rng.random(20_000) < 0.1, 1 - a, a)
    res = paired_bootstrap(a, b, seed=0, n_resamples=2000)
    t = paired_ttest(a, b)
    assert res.method == "percentile"
    assert (res.ci_low, res.ci_high) == pytest.approx((t.ci_low, t.ci_high), abs=2e-3)


@pytest.mark.parametrize("n", [20, 6000])
def test_paired_bootstrap_levels_equal_one_call_per_level(n):
    rng = np.random.default_rng(4)
    a = rng.normal(size=n)
    b = a + rng.normal(0.1, 1, size=n)
    levels = (0.975, 0.95, 0.99)
    together = paired_bootstrap_levels(a, b, levels, seed=5, n_resamples=500)
    assert together == tuple(paired_bootstrap(a, b, seed=5, n_resamples=500, confidence=c) for c in levels)
    assert together[2].ci_low < together[0].ci_low < together[1].ci_low  # wider at higher confidence


def test_sign_test_is_mcnemar_on_discordant_pairs():
    assert sign_test(3, 12) == pytest.approx((0.03515625, 0.0212707520), abs=1e-10)
    assert sign_test(0, 0) == (1.0, 1.0)


# ---- multiplicity ----------------------------------------------------------------------------------------
def test_holm_and_bh_reference():
    # multipletests(p, method="holm")[1] → [0.04, 0.09, 0.09, 0.025, 0.20]
    # multipletests(p, method="fdr_bh")[1] → [0.025, 0.05, 0.05, 0.025, 0.20]
    assert holm(P_FAMILY) == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.20])
    assert benjamini_hochberg(P_FAMILY) == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.20])
    assert holm(P_FAMILY) == pytest.approx(multipletests(P_FAMILY, method="holm")[1])
    assert benjamini_hochberg(P_FAMILY) == pytest.approx(multipletests(P_FAMILY, method="fdr_bh")[1])


def test_multiplicity_keeps_nan_out_of_the_family():
    out = holm([0.01, math.nan, 0.04])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    assert holm([]).size == 0 and benjamini_hochberg([]).size == 0
    with pytest.raises(StatsError, match="outside"):
        holm([1.5])


# ---- quantiles -------------------------------------------------------------------------------------------
def test_p95_definitions_reference():
    # docs/statistics.md: p95 of 1..100 — numpy linear 95.05, inverted_cdf 95, the starting document's formula 96
    values = list(range(1, 101))
    assert np.quantile(values, 0.95) == pytest.approx(95.05)
    assert sorted(values)[int(100 * 0.95)] == 96
    assert QUANTILE_METHOD == "inverted_cdf" and quantile(values, 0.95) == 95


def test_quantile_ci_reference():
    # scipy.stats.quantile_test(range(1, 101), q=95, p=0.95).confidence_interval(0.95) → [90, 100]
    ci = quantile_ci(range(1, 101), q=0.95)
    assert (ci.estimate, ci.low, ci.high, ci.n) == (95, 90, 100, 100)


def test_quantile_ci_small_sample_is_unbounded_not_nan():
    ci = quantile_ci(range(1, 11), q=0.95)
    assert ci.high == math.inf and ci.low == 8
    with pytest.raises(StatsError, match="no values"):
        quantile_ci([])
    with pytest.raises(StatsError, match="quantile level"):
        quantile_ci([1, 2], q=95)


def test_grouped_quantile_matches_numpy():
    rng = np.random.default_rng(1)
    values, groups = rng.lognormal(size=1000), rng.integers(0, 7, 1000)
    got = grouped_quantile(values, groups, 0.95)
    for g, value in got.items():
        assert value == np.quantile(values[groups == g], 0.95, method="inverted_cdf")


def test_compare_quantiles_p95_latency():
    res = compare_quantiles(range(1, 101), range(11, 111), q=0.95, seed=0)
    assert (res.a.estimate, res.b.estimate, res.diff) == (95, 105, 10)
    assert res.ci_low <= 10 <= res.ci_high
    assert res == compare_quantiles(range(1, 101), range(11, 111), q=0.95, seed=0)


# ---- online: always-valid, SRM ---------------------------------------------------------------------------
def test_always_valid_reference():
    # gbstats 0.8.0 SequentialTwoSidedTTest / confseq normal_log_mixture on T1, S = 5,000, α = 0.05
    res = sequential.always_valid_proportions(200, 1000, 240, 1000)
    assert res.p_value == pytest.approx(0.3456753217, abs=1e-10)
    assert (res.ci_low, res.ci_high) == pytest.approx((-0.0178025758, 0.0978025758), abs=1e-10)
    assert not res.significant


def test_always_valid_p_is_a_running_minimum_over_looks():
    looks = sequential.always_valid_proportions([50, 100, 200, 230], [250, 500, 1000, 1100],
                                                [80, 140, 240, 250], [250, 500, 1000, 1100])
    assert list(looks.columns) == sequential.SEQUENTIAL_COLUMNS
    assert (np.diff(looks["p_value"]) <= 0).all()
    assert (looks["p_value"] <= looks["p_look"]).all()
    assert looks.loc[2, "p_look"] == pytest.approx(0.3456753217, abs=1e-10)


def test_always_valid_without_variance_answers():
    res = sequential.always_valid_proportions(0, 0, 0, 0)
    assert res.p_value == 1.0 and (res.ci_low, res.ci_high) == (-math.inf, math.inf)


@pytest.mark.parametrize(("counts", "chi2", "p"), [
    ([5000, 5200], 3.9215686275, 0.0476703807),  # scipy.stats.chisquare([5000, 5200])
    ([10000, 10300], 4.4334975369, 0.0352402238),  # scipy.stats.chisquare([10000, 10300])
])
def test_srm_reference(counts, chi2, p):
    res = sequential.srm_check(counts, [0.5, 0.5])
    assert res.chi2 == pytest.approx(chi2, abs=1e-9) and res.p_value == pytest.approx(p, abs=1e-10)
    assert not res.mismatch and "no sample ratio mismatch" in res.message


def test_srm_flags_a_broken_split():
    res = sequential.srm_check([5000, 5600])
    assert res.mismatch and res.p_value < 0.001 and "find the cause" in res.message
    assert sequential.srm_check([900, 100], weights=[9, 1]).mismatch is False
    with pytest.raises(StatsError, match="weight"):
        sequential.srm_check([10, 10], weights=[1])


# ---- planning --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("p1", "p2", "n"), [(0.20, 0.22, 6510), (0.10, 0.12, 3841)])
def test_sample_size_two_proportions_reference(p1, p2, n):
    # docs/statistics.md pooled-null formula, α 0.05 two-sided, power 0.8, rounded up
    assert planning.sample_size_two_proportions(p1, p2) == n


def test_mde_inverts_the_sample_size():
    mde = planning.mde_two_proportions(0.20, 6510)
    assert mde == pytest.approx(0.02, abs=1e-4)
    assert planning.sample_size_two_proportions(0.2, 0.2 + mde) <= 6510
    assert planning.mde_two_proportions(0.5, 1) == math.inf
    assert planning.mde_two_proportions(0.2, 6510, direction="decrease") > 0


def test_paired_planner_reference():
    # docs/statistics.md: ω² = 0.1161, δ = 0.03 → 1013
    assert planning.sample_size_paired(0.1161, 0.03) == 1013
    mde = planning.smallest_detectable_difference(1013, 0.1161)
    assert mde == pytest.approx(0.03, abs=2e-5) and mde <= 0.03
    assert planning.smallest_detectable_difference(0, 0.1) == math.inf


def test_paired_plan_from_pilot():
    plan = planning.paired_plan_from_pilot(S_A, S_B, delta=0.05)
    omega2 = np.var(np.subtract(S_B, S_A), ddof=1)
    assert plan.omega2 == pytest.approx(omega2) and plan.n_pilot == 20
    assert plan.n == planning.sample_size_paired(omega2, 0.05)
    assert plan.correlation == pytest.approx(paired_ttest(S_A, S_B).correlation)
    with pytest.raises(StatsError, match="complete pairs"):
        planning.paired_plan_from_pilot([1], [0], delta=0.1)


def test_welch_without_spread_respects_the_alternative():
    from promptlab.stats._sequential import welch_test

    # no variance: B is certainly lower, so "B greater" has p 1 and "B less" p 0
    assert welch_test(1.0, 0.0, 10, 0.5, 0.0, 10, alternative="greater").p_value == 1.0
    assert welch_test(1.0, 0.0, 10, 0.5, 0.0, 10, alternative="less").p_value == 0.0
    assert welch_test(1.0, 0.0, 10, 1.0, 0.0, 10).p_value == 1.0
