"""Property tests (hypothesis): p-values are probabilities, intervals hold their estimate, swapping the arms
flips the sign, and pairing never loses information."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from promptlab.stats import _planning as planning
from promptlab.stats import _sequential as sequential
from promptlab.stats._checks import ALTERNATIVES
from promptlab.stats._intervals import case_proportion_interval, newcombe_interval, wilson_interval
from promptlab.stats._multiplicity import benjamini_hochberg, holm
from promptlab.stats._paired import mcnemar, paired_bootstrap, paired_ttest
from promptlab.stats._quantiles import grouped_quantile, quantile, quantile_ci

counts = st.integers(min_value=1, max_value=2000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n)))
cells = st.integers(min_value=0, max_value=300)
scores = st.lists(st.floats(min_value=-10, max_value=10, allow_nan=False), min_size=2, max_size=40)
pvalues = st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=30)


def _is_p(p: float) -> bool:
    return 0.0 <= p <= 1.0


@given(counts)
def test_wilson_holds_its_estimate(xn):
    x, n = xn
    ci = wilson_interval(x, n)
    assert 0 <= ci.low <= ci.estimate <= ci.high <= 1


@given(counts, counts, st.sampled_from(ALTERNATIVES), st.booleans())
def test_two_proportion_z_is_a_probability_and_flips(a, b, alternative, pooled):
    (xa, na), (xb, nb) = a, b
    forward = sequential.two_proportion_ztest(xa, na, xb, nb, alternative, pooled)
    backward = sequential.two_proportion_ztest(xb, nb, xa, na, "two-sided", pooled)
    assert _is_p(forward.p_value)
    assert forward.statistic == pytest.approx(-backward.statistic, abs=1e-12)
    assert forward.estimate == pytest.approx(-backward.estimate, abs=1e-12)
    if alternative == "two-sided":
        assert forward.p_value == pytest.approx(backward.p_value, abs=1e-12)


@given(counts, counts)
def test_newcombe_holds_its_estimate_and_flips(a, b):
    (xa, na), (xb, nb) = a, b
    ci, flipped = newcombe_interval(xa, na, xb, nb), newcombe_interval(xb, nb, xa, na)
    assert -1 <= ci.low <= ci.estimate <= ci.high <= 1
    assert (ci.low, ci.high) == pytest.approx((-flipped.high, -flipped.low), abs=1e-12)


@given(cells, cells, cells, cells)
def test_mcnemar_probabilities_interval_and_swap(a, b, c, d):
    res, swapped = mcnemar(b, c, a=a, d=d), mcnemar(c, b, a=a, d=d)
    assert _is_p(res.p_exact) and _is_p(res.p_mid) and _is_p(res.p_chi2)
    assert res.p_mid <= res.p_exact + 1e-12
    assert res.p_exact == swapped.p_exact and res.p_mid == swapped.p_mid
    if res.n:
        assert -1 <= res.ci_low <= res.effect <= res.ci_high <= 1
        assert res.effect == pytest.approx(-swapped.effect)
        assert (res.ci_low, res.ci_high) == pytest.approx((-swapped.ci_high, -swapped.ci_low), abs=1e-12)


@given(scores, st.data())
def test_paired_t_is_a_probability_and_flips(a, data):
    b = data.draw(st.lists(st.floats(min_value=-10, max_value=10, allow_nan=False), min_size=len(a),
                           max_size=len(a)))
    forward, backward = paired_ttest(a, b), paired_ttest(b, a)
    assert _is_p(forward.p_value) and forward.ci_low <= forward.diff + 1e-9 <= forward.ci_high + 2e-9
    assert forward.diff == pytest.approx(-backward.diff, abs=1e-9)
    assert forward.p_value == pytest.approx(backward.p_value, abs=1e-9)


@given(scores)
def test_pairing_identical_arms_sees_no_noise(a):
    res = paired_ttest(a, a)
    assert (res.diff, res.se, res.p_value) == (0.0, 0.0, 1.0)


@given(scores, st.floats(min_value=0.01, max_value=5))
def test_pairing_a_shifted_copy_beats_the_unpaired_test(a, shift):
    assume(np.std(a) > 1e-3)
    b = [x + shift for x in a]
    paired = paired_ttest(a, b)
    assert paired.se == 0.0 < paired.se_unpaired
    assert paired.ci_low == paired.ci_high == pytest.approx(shift)


@given(scores, st.data())
def test_pairing_never_loses_with_positive_correlation(a, data):
    b = data.draw(st.lists(st.floats(min_value=-10, max_value=10, allow_nan=False), min_size=len(a),
                           max_size=len(a)))
    res = paired_ttest(a, b)
    assume(not math.isnan(res.correlation) and res.correlation >= 0)
    assert res.se <= res.se_unpaired * (1 + 1e-9) + 1e-12


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1), min_size=2, max_size=30), st.data())
def test_bootstrap_interval_holds_the_difference(a, data):
    b = data.draw(st.lists(st.integers(min_value=0, max_value=1), min_size=len(a), max_size=len(a)))
    res = paired_bootstrap(a, b, seed=0, n_resamples=500)
    assert res.ci_low - 1e-9 <= res.diff <= res.ci_high + 1e-9


@given(pvalues)
def test_adjusted_pvalues_are_probabilities_and_conservative(p):
    fwer, bh = holm(p), benjamini_hochberg(p)
    raw = np.asarray(p)
    assert ((0 <= fwer) & (fwer <= 1) & (0 <= bh) & (bh <= 1)).all()
    assert (fwer >= raw - 1e-12).all() and (bh >= raw - 1e-12).all() and (fwer >= bh - 1e-12).all()
    order = np.argsort(raw, kind="stable")
    assert (np.diff(fwer[order]) >= -1e-12).all()


@given(counts, counts, st.floats(min_value=100, max_value=1e6))
def test_always_valid_is_a_probability_holds_and_flips(a, b, tuning):
    (xa, na), (xb, nb) = a, b
    res = sequential.always_valid_proportions(xa, na, xb, nb, tuning=tuning)
    back = sequential.always_valid_proportions(xb, nb, xa, na, tuning=tuning)
    assert _is_p(res.p_value) and res.ci_low <= res.estimate <= res.ci_high
    assert res.p_value == pytest.approx(back.p_value) and res.estimate == pytest.approx(-back.estimate)
    assert (res.p_value < 0.05) == (res.ci_low > 0 or res.ci_high < 0) or math.isinf(res.ci_high)


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=1, max_size=200),
       st.floats(min_value=0, max_value=1))
def test_quantile_definition_is_one_and_the_interval_holds_it(values, q):
    assert quantile(values, q) == np.quantile(values, q, method="inverted_cdf")
    assert grouped_quantile(values, [0] * len(values), q)[0] == quantile(values, q)
    ci = quantile_ci(values, q)
    assert ci.low <= ci.estimate <= ci.high


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=6))
def test_srm_p_is_a_probability(observed):
    assert _is_p(sequential.srm_check(observed).p_value)


@given(st.floats(min_value=0.01, max_value=0.9), st.floats(min_value=0.005, max_value=0.09))
def test_sample_size_and_mde_invert_each_other(p1, lift):
    n = planning.sample_size_two_proportions(p1, p1 + lift)
    mde = planning.mde_two_proportions(p1, n)
    assert mde <= lift + 1e-9
    assert planning.sample_size_two_proportions(p1, p1 + lift / 2) >= n


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([True, False, None]), st.sampled_from([True, False, None])),
                min_size=1, max_size=40))
def test_compare_swapping_baseline_flips_the_sign(pairs):
    import pandas as pd

    from promptlab.stats._comparison import compare

    rows = [{"case_id": f"c{i}", "variant": v, "model": "m", "repeat": 0, "passed": outcome}
            for i, pair in enumerate(pairs) for v, outcome in zip("AB", pair, strict=True)]
    df = pd.DataFrame(rows).astype({"passed": "boolean"})
    forward, backward = compare(df, "A").df.iloc[0], compare(df, "B").df.iloc[0]
    assert _is_p(forward.p_value) and _is_p(forward.p_exact) and _is_p(forward.p_adj)
    assert forward.n + forward.n_dropped == len(pairs)
    assert (forward.b, forward.c) == (backward.c, backward.b)
    if forward.n:
        assert forward["diff"] == pytest.approx(-backward["diff"])
        assert forward.p_value == pytest.approx(backward.p_value)
        assert forward.ci_low <= forward["diff"] <= forward.ci_high


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.integers(min_value=0, max_value=1), min_size=1, max_size=4), min_size=1, max_size=30))
def test_case_proportion_interval_holds_its_estimate_and_never_collapses(per_case):
    values = [v for answers in per_case for v in answers]
    ids = [f"c{i}" for i, answers in enumerate(per_case) for _ in answers]
    res = case_proportion_interval(values, ids)
    assert 0 <= res.low <= res.mean <= res.high <= 1 and res.high > res.low
    assert res.n == len(per_case) <= res.n_eff <= res.calls == len(values)
    if res.mean in (0.0, 1.0):  # every answer agrees: exactly one answer per case's Wilson interval
        wilson = wilson_interval(int(res.mean) * res.n, res.n)
        assert (res.low, res.high) == pytest.approx((wilson.low, wilson.high), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.sampled_from([True, False, None])), min_size=2,
                max_size=40), st.sampled_from([0.05, 0.1]))
def test_compare_verdicts_never_contradict_the_displayed_interval(triples, alpha):
    import pandas as pd

    from promptlab.stats._comparison import compare

    rows = [{"case_id": f"c{i}", "variant": v, "model": "m", "repeat": 0, "passed": outcome}
            for i, triple in enumerate(triples) for v, outcome in zip("ABC", triple, strict=True)]
    df = compare(pd.DataFrame(rows).astype({"passed": "boolean"}), "A", alpha=alpha).df
    tested = int((df["n"] > 0).sum())  # a variant with no complete pair is not in the family
    for row in df.itertuples():
        excludes = row.ci_low > 0 or row.ci_high < 0
        assert (row.verdict in ("better", "worse")) == (excludes and row.p_adj < alpha) or row.verdict == "borderline"
        assert (row.verdict == "no detectable difference") == (not excludes and row.p_adj >= alpha)
        assert row.n == 0 or row.ci_level == pytest.approx(1 - alpha / tested)
