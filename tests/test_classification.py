"""Classification metrics: every number pinned to scikit-learn (the call in a comment or in the code), the case
bootstrap checked for reproducibility, pairing and coverage, and the Results glue, card and report."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from statsmodels.stats.proportion import proportion_confint

import promptlab as pl
from promptlab.errors import ArgumentError, ProviderError, StatsError, UnknownNameError
from promptlab.evaluation._classification import COMPARE_COLUMNS
from promptlab.evaluation._results import build_frame
from promptlab.stats._classification import NONE_LABEL, _compare_levels, classification_metrics, compare_macro_f1

# A fixed confusion matrix: "c" is expected 3 times and never named, "d" is named once and never expected,
# two answers name no label. Rows expected, columns read: a b c d (none).
LABELS = ["a", "b", "c", "d"]
EXPECTED = ["a"] * 5 + ["b"] * 4 + ["c"] * 3
PREDICTED = ["a", "a", "a", "b", None, "b", "b", "a", "d", "a", None, "b"]


def _sk(predicted):
    """The answers as scikit-learn reads them: no label is one more class, "(none)"."""
    return [NONE_LABEL if p is None else p for p in predicted]


def _sk_all(expected, predicted, labels):
    """Every reference number from scikit-learn, for the rows given (zero_division=np.nan: 0/0 is NaN)."""
    y_pred = _sk(predicted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # κ's undefined case warns; its value (NaN) is what is compared
        precision, recall, f1, support = precision_recall_fscore_support(expected, y_pred, labels=labels,
                                                                         zero_division=np.nan)
        return {
            "confusion": confusion_matrix(expected, y_pred, labels=[*labels, NONE_LABEL])[: len(labels)],
            "precision": precision, "recall": recall, "f1": f1, "support": support,
            "macro_f1": f1_score(expected, y_pred, labels=labels, average="macro", zero_division=np.nan),
            "micro_f1": f1_score(expected, y_pred, labels=labels, average="micro", zero_division=np.nan),
            "kappa": cohen_kappa_score(expected, y_pred), "accuracy": accuracy_score(expected, y_pred)}


def _assert_matches_sklearn(metrics, expected, predicted, labels):
    ref = _sk_all(expected, predicted, labels)
    assert (metrics.confusion.to_numpy() == ref["confusion"]).all()
    table = metrics.per_label
    for name in ("precision", "recall", "f1"):
        np.testing.assert_allclose(table[name].to_numpy(dtype=float), ref[name], rtol=0, atol=1e-12,
                                   equal_nan=True, err_msg=name)
    assert table["support"].tolist() == ref["support"].tolist()
    for name in ("macro_f1", "micro_f1", "kappa", "accuracy"):
        got, want = metrics.summary[name], ref[name]
        assert (np.isnan(got) and np.isnan(want)) or got == pytest.approx(want, abs=1e-12), name


# ---- point estimates, pinned to scikit-learn ------------------------------------------------------------------
def test_fixed_matrix_with_a_label_never_named_and_one_never_expected():
    m = classification_metrics(EXPECTED, PREDICTED, LABELS, n_boot=0)
    _assert_matches_sklearn(m, EXPECTED, PREDICTED, LABELS)
    # confusion_matrix(EXPECTED, _sk(PREDICTED), labels=LABELS + ["(none)"])[:4]
    assert m.confusion.to_numpy().tolist() == [[3, 1, 0, 0, 1], [1, 2, 0, 1, 0], [1, 1, 0, 0, 1], [0, 0, 0, 0, 0]]
    assert list(m.confusion.columns) == [*LABELS, "(none)"]
    per = m.per_label.set_index("label")
    # precision_recall_fscore_support(..., labels=LABELS, zero_division=np.nan):
    # precision [0.6, 0.5, nan, 0.0], recall [0.6, 0.5, 0.0, nan], f1 [0.6, 0.5, 0.0, 0.0], support [5, 4, 3, 0]
    assert np.isnan(per.loc["c", "precision"]) and per.loc["c", "recall"] == 0 and per.loc["c", "f1"] == 0
    assert per.loc["d", "precision"] == 0 and np.isnan(per.loc["d", "recall"]) and per.loc["d", "support"] == 0
    assert per["predicted"].tolist() == [5, 4, 0, 1]
    # f1_score(average="macro", zero_division=np.nan) -> 0.275; average="micro" -> 10/22;
    # cohen_kappa_score(EXPECTED, _sk(PREDICTED)) -> 0.18446601941747576; accuracy_score -> 5/12
    assert m.summary["macro_f1"] == pytest.approx(0.275) and m.summary["micro_f1"] == pytest.approx(10 / 22)
    assert m.summary["kappa"] == pytest.approx(0.18446601941747576, abs=1e-12)
    assert m.summary["accuracy"] == pytest.approx(5 / 12)
    assert (m.summary["n"], m.summary["cases"], m.summary["no_label"]) == (12, 12, 2)


def test_a_label_neither_expected_nor_named_is_left_out_of_macro_f1():
    labels = [*LABELS, "e"]
    m = classification_metrics(EXPECTED, PREDICTED, labels, n_boot=0)
    _assert_matches_sklearn(m, EXPECTED, PREDICTED, labels)
    row = m.per_label.set_index("label").loc["e"]
    assert np.isnan(row["precision"]) and np.isnan(row["recall"]) and np.isnan(row["f1"]), "unknown is NA, never 0"
    # f1_score(EXPECTED, _sk(PREDICTED), labels=LABELS + ["e"], average="macro", zero_division=np.nan) -> 0.275
    assert m.summary["macro_f1"] == pytest.approx(0.275)


def test_kappa_is_na_when_chance_agreement_is_one_and_all_answers_no_label_is_zero_f1():
    # cohen_kappa_score(["a"] * 4, ["a"] * 4) -> nan (0/0)
    m = classification_metrics(["a"] * 4, ["a"] * 4, ["a", "b"], n_boot=0)
    _assert_matches_sklearn(m, ["a"] * 4, ["a"] * 4, ["a", "b"])
    assert np.isnan(m.summary["kappa"]) and m.summary["macro_f1"] == 1.0
    silent = classification_metrics(["a", "b", "a"], [None, None, None], ["a", "b"], n_boot=0)
    _assert_matches_sklearn(silent, ["a", "b", "a"], [None, None, None], ["a", "b"])
    assert silent.summary["micro_f1"] == 0 and silent.summary["no_label"] == 3


def test_the_statistics_page_reports_what_promptlab_computes():
    """docs/statistics.md's CL rows are scikit-learn's numbers (test_statistics_doc checks that); here promptlab
    gives the same on the page's arrays."""
    from test_statistics_doc import ROWS, TEXT, parse_data

    data, rows = parse_data(TEXT), {row.id: [float(v) for v in row.values] for row in ROWS}
    read = [None if label == NONE_LABEL else label for label in data["Y_READ"]]
    m = classification_metrics(data["Y_TRUE"], read, data["LABELS"], n_boot=0)
    with_e = classification_metrics(data["Y_TRUE"], read, [*data["LABELS"], "e"], n_boot=0)
    assert m.confusion.to_numpy().ravel().tolist() == rows["CL1"]
    per = m.per_label
    for row_id, got in (("CL2", per["precision"]), ("CL3", per["recall"]), ("CL4", with_e.per_label["f1"]),
                        ("CL5", per["support"])):
        np.testing.assert_allclose(got.to_numpy(dtype=float), rows[row_id], atol=5e-11, equal_nan=True)
    for row_id, got in (("CL6", with_e.summary["macro_f1"]), ("CL8", m.summary["micro_f1"]),
                        ("CL9", m.summary["accuracy"]), ("CL10", m.summary["kappa"])):
        assert got == pytest.approx(rows[row_id][0], abs=5e-11), row_id


@pytest.mark.parametrize("seed", range(6))
def test_random_label_arrays_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = ["x", "y", "z", "w"][: 2 + seed % 3]
    n = int(rng.integers(5, 60))
    expected = rng.choice(labels, n).tolist()
    predicted = [None if r < 0.15 else p for r, p in zip(rng.random(n), rng.choice(labels, n).tolist(), strict=True)]
    _assert_matches_sklearn(classification_metrics(expected, predicted, labels, n_boot=0), expected, predicted,
                            labels)


def test_no_answers_give_na_not_zero():
    m = classification_metrics([], [], ["a", "b"])
    assert m.summary["n"] == 0 and all(np.isnan(m.summary[k]) for k in ("accuracy", "macro_f1", "kappa"))
    assert np.isnan(m.summary["macro_f1_ci_low"]) and m.per_label["precision"].isna().all()


# ---- the case bootstrap ------------------------------------------------------------------------------------------
def _data(n_cases, seed=0):
    rng = np.random.default_rng(seed)
    expected = rng.choice(["a", "b", "c"], n_cases, p=[0.5, 0.3, 0.2])
    right = rng.random(n_cases) < 0.7
    other = rng.choice(["a", "b", "c", None], n_cases)
    predicted = [e if ok else o for e, ok, o in zip(expected, right, other, strict=True)]
    return expected.tolist(), predicted, [f"case-{i:04d}" for i in range(n_cases)]


def _case_draws(seed, n_cases, n_boot):
    """The bootstrap's resamples as case counts, drawn here with numpy: n_cases picks with replacement each."""
    picks = np.random.default_rng(seed).integers(0, n_cases, size=(n_boot, n_cases))
    return np.array([np.bincount(row, minlength=n_cases) for row in picks])


def test_bootstrap_percentiles_equal_sklearn_on_the_same_case_draws():
    """Each resample is sklearn's metric on the rows weighted by how often their case was drawn; the interval is
    numpy's percentile of those (the draws: numpy's picks of cases with replacement, sorted case ids, seed 3)."""
    expected, predicted, cases = _data(40)
    expected, predicted, cases = expected * 2, predicted[::-1] + predicted[1:] + predicted[:1], cases * 2
    m = classification_metrics(expected, predicted, ["a", "b", "c"], cases=cases, n_boot=150, seed=3)
    order = sorted(set(cases))
    code = np.array([order.index(c) for c in cases])
    draws = _case_draws(3, len(order), 150)
    y_pred = _sk(predicted)
    macro, kappa, recall_a = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for w in draws:
            weight = w[code]
            # f1_score(expected, y_pred, labels=[a, b, c], average="macro", zero_division=np.nan, sample_weight=weight)
            macro.append(f1_score(expected, y_pred, labels=["a", "b", "c"], average="macro", zero_division=np.nan,
                                  sample_weight=weight))
            kappa.append(cohen_kappa_score(expected, y_pred, sample_weight=weight))
            recall_a.append(precision_recall_fscore_support(expected, y_pred, labels=["a", "b", "c"],
                                                            zero_division=np.nan, sample_weight=weight)[1][0])
    for name, values in (("macro_f1", macro), ("kappa", kappa)):
        low, high = np.quantile(values, [0.025, 0.975])
        assert m.summary[f"{name}_ci_low"] == pytest.approx(low, abs=1e-12)
        assert m.summary[f"{name}_ci_high"] == pytest.approx(high, abs=1e-12)
    # recall is a proportion: the percentile interval, never narrower than Wilson at the recall over the cases
    # expecting "a": proportion_confint(recall * cases, cases, method="wilson")
    row = m.per_label.set_index("label").loc["a"]
    low, high = np.quantile(recall_a, [0.025, 0.975])
    n_a = len({c for c, e in zip(cases, expected, strict=True) if e == "a"})
    w_low, w_high = proportion_confint(row["recall"] * n_a, n_a, method="wilson")
    assert [row["recall_ci_low"], row["recall_ci_high"]] == pytest.approx([min(low, w_low), max(high, w_high)])


def test_proportions_are_never_narrower_than_wilson_over_their_cases():
    """4 answers naming "a", all right: the bootstrap alone says precision [1, 1]; Wilson's floor says [0.51, 1]
    (statsmodels proportion_confint(4, 4, method="wilson")). The same 4 answers as 2 cases × 2 repeats stand on
    2 cases: proportion_confint(2, 2, method="wilson")."""
    expected = ["a"] * 4 + ["b"] * 6
    predicted = ["a"] * 4 + ["b", "b", "b", None, "b", "b"]
    m = classification_metrics(expected, predicted, ["a", "b"], cases=[f"c{i}" for i in range(10)])
    row = m.per_label.set_index("label").loc["a"]
    assert row["precision"] == 1.0
    assert [row["precision_ci_low"], row["precision_ci_high"]] == pytest.approx(
        proportion_confint(4, 4, method="wilson"), abs=1e-9)
    repeated = classification_metrics(["a"] * 4 + ["b"] * 4, ["a"] * 4 + ["b", None, "b", None], ["a", "b"],
                                      cases=["c1", "c1", "c2", "c2", "c3", "c3", "c4", "c4"])
    row = repeated.per_label.set_index("label").loc["a"]
    assert [row["precision_ci_low"], row["recall_ci_low"]] == pytest.approx(
        [proportion_confint(2, 2, method="wilson")[0]] * 2, abs=1e-9)
    # accuracy 6/8 over 4 cases: at least Wilson at 0.75 over 4 cases
    w_low, w_high = proportion_confint(0.75 * 4, 4, method="wilson")
    assert repeated.summary["accuracy_ci_low"] <= w_low and repeated.summary["accuracy_ci_high"] >= w_high


def test_same_seed_same_intervals_other_seed_other_intervals_and_row_order_does_not_matter():
    expected, predicted, cases = _data(80)
    first = classification_metrics(expected, predicted, ["a", "b", "c"], cases=cases, seed=7)
    again = classification_metrics(expected, predicted, ["a", "b", "c"], cases=cases, seed=7)
    order = np.random.default_rng(1).permutation(len(cases))
    shuffled = classification_metrics([expected[i] for i in order], [predicted[i] for i in order], ["a", "b", "c"],
                                      cases=[cases[i] for i in order], seed=7)
    other = classification_metrics(expected, predicted, ["a", "b", "c"], cases=cases, seed=8)
    assert first.summary == again.summary == shuffled.summary
    pd.testing.assert_frame_equal(first.per_label, shuffled.per_label)
    assert first.summary["macro_f1_ci_low"] != other.summary["macro_f1_ci_low"]


def test_estimate_inside_its_interval_and_the_interval_shrinks_with_more_cases():
    small, big = (classification_metrics(e, p, ["a", "b", "c"], cases=c)
                  for e, p, c in (_data(n, seed=2) for n in (60, 960)))
    for m in (small, big):
        for name in ("accuracy", "macro_f1", "micro_f1", "kappa"):
            assert m.summary[f"{name}_ci_low"] <= m.summary[name] <= m.summary[f"{name}_ci_high"], name

    def width(m, name):
        return m.summary[f"{name}_ci_high"] - m.summary[f"{name}_ci_low"]
    # 16x the cases: about a quarter of the width (1/sqrt(16)); allow a wide margin
    for name in ("accuracy", "macro_f1", "kappa"):
        assert width(big, name) < 0.45 * width(small, name), name


def test_repeats_move_with_their_case():
    """Two identical answers per case, resampled by case, give exactly the intervals of one answer per case
    (every metric is a ratio of counts); taken as independent rows they would look twice as precise."""
    expected, predicted, cases = _data(50, seed=4)
    once = classification_metrics(expected, predicted, ["a", "b", "c"], cases=cases, seed=1)
    twice = classification_metrics(expected * 2, predicted * 2, ["a", "b", "c"], cases=cases * 2, seed=1)
    naive = classification_metrics(expected * 2, predicted * 2, ["a", "b", "c"], seed=1)
    assert twice.summary["cases"] == 50 and twice.summary["n"] == 100
    for name in ("accuracy", "macro_f1", "kappa"):
        assert twice.summary[f"{name}_ci_low"] == pytest.approx(once.summary[f"{name}_ci_low"], abs=1e-12)
        assert twice.summary[f"{name}_ci_high"] == pytest.approx(once.summary[f"{name}_ci_high"], abs=1e-12)
    assert (naive.summary["macro_f1_ci_high"] - naive.summary["macro_f1_ci_low"]
            < 0.85 * (twice.summary["macro_f1_ci_high"] - twice.summary["macro_f1_ci_low"]))


def test_coverage_is_near_nominal_on_simulated_classifiers():
    """Sanity, not proof: 120 samples of 150 cases from a known classifier; the 95% interval for macro-F1, κ and
    accuracy covers the population value (sklearn with population weights) in roughly 95% of them."""
    labels, prior = ["a", "b", "c"], np.array([0.5, 0.3, 0.2])
    reads = np.array([[0.8, 0.1, 0.05, 0.05], [0.15, 0.7, 0.1, 0.05], [0.1, 0.1, 0.7, 0.1]])  # a b c (none)
    cells = [(e, p) for e in range(3) for p in range(4)]
    weight = [prior[e] * reads[e, p] for e, p in cells]
    pop_exp = [labels[e] for e, _ in cells]
    pop_pred = [NONE_LABEL if p == 3 else labels[p] for _, p in cells]
    # f1_score / cohen_kappa_score on every (expected, read) cell weighted by its population probability
    truth = {"macro_f1": f1_score(pop_exp, pop_pred, labels=labels, average="macro", sample_weight=weight),
             "kappa": cohen_kappa_score(pop_exp, pop_pred, sample_weight=weight),
             "accuracy": accuracy_score(pop_exp, pop_pred, sample_weight=weight)}
    rng = np.random.default_rng(11)
    covered = {name: 0 for name in truth}
    for i in range(120):
        e = rng.choice(3, 150, p=prior)
        p = np.array([rng.choice(4, p=reads[k]) for k in e])
        m = classification_metrics([labels[k] for k in e], [None if k == 3 else labels[k] for k in p], labels,
                                   n_boot=400, seed=i)
        for name, value in truth.items():
            covered[name] += m.summary[f"{name}_ci_low"] <= value <= m.summary[f"{name}_ci_high"]
    for name, hits in covered.items():
        assert 0.86 <= hits / 120 <= 1.0, (name, hits)


def test_fewer_than_two_cases_or_no_resamples_give_na_intervals():
    one = classification_metrics(["a", "a"], ["a", "b"], ["a", "b"], cases=["c1", "c1"])
    assert one.summary["cases"] == 1 and np.isnan(one.summary["accuracy_ci_low"])
    none = classification_metrics(EXPECTED, PREDICTED, LABELS, n_boot=0)
    assert np.isnan(none.summary["macro_f1_ci_high"]) and none.per_label["f1_ci_low"].isna().all()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"expected": ["a", "zz"], "predicted": ["a", "a"]}, "'zz'"),
    ({"expected": ["a", "b"], "predicted": ["a", "q"]}, "or None for an answer naming no label"),
    ({"expected": ["a"], "predicted": ["a", "b"]}, "one of each per answer"),
    ({"expected": ["a"], "predicted": ["a"], "labels": ["a", "a"]}, "list each label once"),
    ({"expected": ["a"], "predicted": ["a"], "labels": "ab"}, "as a non-empty list"),
    ({"expected": ["a"], "predicted": ["a"], "n_boot": -1}, "n_boot=-1"),
    ({"expected": ["a"], "predicted": ["a"], "confidence": 95}, "confidence=95"),
    ({"expected": ["a"], "predicted": ["a"], "cases": ["x", "y"]}, "one case id per answer"),
])
def test_bad_input_is_a_stats_error_that_says_what_to_do(kwargs, message):
    args = {"labels": ["a", "b"], **kwargs}
    with pytest.raises(StatsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        classification_metrics(args.pop("expected"), args.pop("predicted"), args.pop("labels"), **args)


# ---- the paired comparison of macro-F1 ----------------------------------------------------------------------------
def test_paired_macro_f1_pinned_to_sklearn_on_joint_case_draws():
    expected, predicted_a, cases = _data(60, seed=5)
    # B answers as A does, except that it reads every other case right: it fixes about half of A's mistakes
    predicted_b = [e if i % 2 == 0 else a for i, (e, a) in enumerate(zip(expected, predicted_a, strict=True))]
    result = compare_macro_f1(expected, predicted_a, predicted_b, ["a", "b", "c"], cases=cases, n_boot=150, seed=2)
    sk = {arm: f1_score(expected, _sk(p), labels=["a", "b", "c"], average="macro", zero_division=np.nan)
          for arm, p in (("a", predicted_a), ("b", predicted_b))}
    assert (result.macro_f1_a, result.macro_f1_b) == pytest.approx((sk["a"], sk["b"]), abs=1e-12)
    assert result.diff == pytest.approx(sk["b"] - sk["a"], abs=1e-12)
    draws = _case_draws(2, 60, 150)  # cases sorted by id
    diffs = np.array([f1_score(expected, _sk(predicted_b), labels=["a", "b", "c"], average="macro",
                               zero_division=np.nan, sample_weight=w)
                      - f1_score(expected, _sk(predicted_a), labels=["a", "b", "c"], average="macro",
                                 zero_division=np.nan, sample_weight=w) for w in draws])
    assert [result.ci_low, result.ci_high] == pytest.approx(np.quantile(diffs, [0.025, 0.975]), abs=1e-12)
    tail = min((diffs <= 0).sum(), (diffs >= 0).sum())
    assert result.p_value == pytest.approx(min(1.0, 2 * (tail + 1) / 151))
    assert result.p_value < 0.05 and result.ci_low > 0, "B is better by construction"


def test_identical_arms_do_not_differ_and_one_case_gives_no_interval():
    expected, predicted, cases = _data(30)
    same = compare_macro_f1(expected, predicted, predicted, ["a", "b", "c"], cases=cases)
    assert (same.diff, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    one = compare_macro_f1(["a", "b"], ["a", "b"], ["a", "a"], ["a", "b"], cases=["c1", "c1"])
    assert (one.cases, one.ci_low, one.ci_high, one.p_value) == (1, -np.inf, np.inf, 1.0)


def test_pairing_narrows_the_interval_and_levels_share_one_set_of_resamples():
    expected, predicted_a, cases = _data(200, seed=8)
    # B agrees with A on most cases (correlated arms) and fixes some of A's mistakes
    predicted_b = [e if i % 4 == 0 else a for i, (e, a) in enumerate(zip(expected, predicted_a, strict=True))]
    paired = compare_macro_f1(expected, predicted_a, predicted_b, ["a", "b", "c"], cases=cases, seed=0)
    alone = [classification_metrics(expected, p, ["a", "b", "c"], cases=cases, seed=s)
             for p, s in ((predicted_a, 1), (predicted_b, 2))]
    unpaired_half = np.hypot(*[(m.summary["macro_f1_ci_high"] - m.summary["macro_f1_ci_low"]) / 2 for m in alone])
    assert (paired.ci_high - paired.ci_low) / 2 < 0.8 * unpaired_half
    wide, usual = _compare_levels(expected, predicted_a, predicted_b, ["a", "b", "c"], cases, (0.975, 0.95), 2000, 0)
    assert (usual.ci_low, usual.ci_high, usual.p_value) == (paired.ci_low, paired.ci_high, paired.p_value)
    assert wide.ci_low <= usual.ci_low and wide.ci_high >= usual.ci_high


# ---- Results → labels → metrics --------------------------------------------------------------------------------
SUPPORT = ["Billing Inquiries", "Claims Assistance", "Other"]
# What each answer reads as, written out by hand (the reference): case, spacing, hyphens and trailing
# punctuation do not matter; an answer naming two labels, none leading, or none at all, names no label.
ANSWERS = {"billing-inquiries.": "Billing Inquiries", "CLAIMS ASSISTANCE\r\n": "Claims Assistance",
           "I don't know": None, "Other: it is about a refund": "Other",
           "Billing Inquiries or Claims Assistance": None, "Ünïcode — no label here": None}
TEXTS = list(ANSWERS)
PROMPT = pl.Prompt(name="router", version="1", model="claude-3-5-sonnet-20241022", template="{{ input }}")


def support_suite(n=30):
    suite = pl.Suite("tickets", labels=SUPPORT)
    for i in range(n):
        # expected written as users write it: other case and spacing still name the label
        suite.add_case(f"ticket {i}", [" billing inquiries", "Claims Assistance", "other"][i % 3], id=f"t{i:02d}")
    return suite


def answer(variant_shift):
    def reply(request):
        i = int(request.messages[-1].content.split()[-1])
        if i == 7:
            raise ProviderError("upstream 500", error_type="server", retryable=False)
        return TEXTS[(i * 5 + variant_shift) % len(TEXTS)]
    return reply


def run_support(repeats=1):
    fake_a, fake_b = pl.FakeProvider(answer(0)), pl.FakeProvider(answer(1))
    a = pl.run(support_suite(), {"A": PROMPT}, fake_a, progress=False, cache=False, max_error_rate=1.0,
               repeats=repeats)
    b = pl.run(support_suite(), {"B": PROMPT.with_changes(system="Route.")}, fake_b, progress=False, cache=False,
               max_error_rate=1.0, repeats=repeats)
    return pl.Results.concat([a, b])


def _hand_labels(results, variant):
    rows = results.df[(results.df["variant"] == variant) & results.df["output"].notna()]
    expected = [SUPPORT[int(c[1:]) % 3] for c in rows["case_id"]]
    return expected, [ANSWERS[o] for o in rows["output"]], rows["case_id"].tolist()


def test_results_classification_matches_sklearn_on_hand_read_labels():
    results = run_support()
    table = results.classification(n_boot=300)
    assert isinstance(table, pl.evaluation.ClassificationTable) and table.labels == tuple(SUPPORT)
    for variant in ("A", "B"):
        row = table.df.set_index("variant").loc[variant]
        assert (row["n"], row["errors"], row["off_label"], row["answers"], row["cases"]) == (30, 1, 0, 29, 29)
        expected, predicted, cases = _hand_labels(results, variant)
        ref = _sk_all(expected, predicted, SUPPORT)
        assert (table.confusion(variant).to_numpy() == ref["confusion"]).all()
        assert row["no_label"] == sum(p is None for p in predicted)
        for name in ("macro_f1", "micro_f1", "kappa", "accuracy"):
            assert row[name] == pytest.approx(ref[name], abs=1e-12), name
        per = table.per_label[table.per_label["variant"] == variant]
        np.testing.assert_allclose(per["precision"].to_numpy(dtype=float), ref["precision"], equal_nan=True)
        np.testing.assert_allclose(per["f1"].to_numpy(dtype=float), ref["f1"], equal_nan=True)
        # the answers are read as the exact-match scorer read them: its verdicts give the same accuracy
        acc = results.accuracy().set_index("variant").loc[variant]
        assert row["accuracy"] == pytest.approx(acc["accuracy_scored"]) and acc["errors"] == row["errors"]
        # the same numbers as the pure function on the hand-read labels, intervals included
        pure = classification_metrics(expected, predicted, SUPPORT, cases=cases, n_boot=300)
        assert row["macro_f1_ci_low"] == pytest.approx(pure.summary["macro_f1_ci_low"], abs=1e-12)


def test_repeats_are_resampled_by_case_and_failed_calls_counted():
    table = run_support(repeats=2).classification(n_boot=200)
    row = table.df.set_index("variant").loc["A"]
    assert (row["n"], row["errors"], row["answers"], row["cases"]) == (60, 2, 58, 29)


def test_compare_gives_paired_macro_f1_with_holm_and_the_comparison_verdicts():
    results = run_support()
    table = results.classification(n_boot=500)
    out = table.compare("A")
    assert list(out.columns) == COMPARE_COLUMNS
    row = out.iloc[0]
    expected, pa, _ = _hand_labels(results, "A")
    _, pb, _ = _hand_labels(results, "B")
    assert (row["variant"], row["baseline"], row["n"], row["n_dropped"]) == ("B", "A", 29, 1)  # t07 failed
    assert row["diff"] == pytest.approx(
        f1_score(expected, _sk(pb), labels=SUPPORT, average="macro", zero_division=np.nan)
        - f1_score(expected, _sk(pa), labels=SUPPORT, average="macro", zero_division=np.nan), abs=1e-12)
    assert row["verdict"] in pl.stats.VERDICTS and row["p_adj"] == row["p_value"]  # one variant: Holm is p
    assert row["ci_level"] == 0.95 and (row["ci_low"], row["ci_high"]) == (row["ci_low_unadj"], row["ci_high_unadj"])
    with pytest.raises(UnknownNameError, match="the variants are"):
        table.compare("Z")


def test_a_run_concatenated_twice_pairs_each_answer_once():
    results = run_support()
    twice = pl.Results.concat([results, results])
    row = twice.classification(n_boot=200).compare("A").iloc[0]
    assert (row["n"], row["cases"], row["n_dropped"]) == (58, 29, 2)
    assert row["diff"] == pytest.approx(results.classification(n_boot=0).compare("A").iloc[0]["diff"])


def test_a_clearly_better_variant_is_better_and_a_copy_is_no_different():
    suite = pl.Suite("s", labels=["positive", "negative"])
    for i in range(80):
        suite.add_case(f"text {i}", "positive" if i % 2 else "negative", id=f"c{i:02d}")
    variants = {"A": PROMPT, "B": PROMPT.with_changes(system="right"), "C": PROMPT.with_changes(system="copy")}

    def reply(request):  # B reads every case right; A and C give the same, often wrong, answers
        i = int(request.messages[-1].content.split()[-1])
        if request.system == "right":
            return "positive" if i % 2 else "negative"
        return "positive" if i % 3 else "negative"
    results = pl.run(suite, variants, pl.FakeProvider(reply), progress=False, cache=False)
    out = results.classification(n_boot=1000).compare("A").set_index("variant")
    assert out.loc["B", "verdict"] == "better" and out.loc["C", "verdict"] == "no detectable difference"
    assert out.loc["B", "ci_level"] == pytest.approx(0.975)  # two variants: Bonferroni's simultaneous level
    assert out.loc["C", "diff"] == 0 and out.loc["C", "p_value"] == 1
    # Holm over the two p-values: statsmodels.stats.multitest.multipletests(p, method="holm")[1]
    from statsmodels.stats.multitest import multipletests

    assert out["p_adj"].tolist() == pytest.approx(multipletests(out["p_value"], method="holm")[1].tolist())


def test_results_without_labels_say_how_to_give_them_and_labels_can_be_passed():
    suite = pl.Suite("plain")
    for i in range(6):
        suite.add_case(f"text {i}", "yes" if i % 2 else "no", id=f"c{i}")
    results = pl.run(suite, PROMPT, pl.FakeProvider("yes"), progress=False, cache=False)
    with pytest.raises(ArgumentError, match=r"declared no `labels:`.*labels=\['a', 'b', 'c'\]"):
        results.classification()
    assert "macro-F1" not in results._repr_html_()
    table = results.classification(labels=["yes", "no"], n_boot=100)
    assert table.df.iloc[0]["accuracy"] == 0.5 and table.confusion().loc["no", "yes"] == 3


def test_concatenated_runs_with_different_label_sets_are_refused():
    a = pl.run(support_suite(3), PROMPT, pl.FakeProvider("Other"), progress=False, cache=False)
    other = pl.Suite("x", labels=["yes", "no"])
    other.add_case("q", "yes", id="q1")
    b = pl.run(other, PROMPT, pl.FakeProvider("yes"), progress=False, cache=False)
    mixed = pl.Results.concat([a, b])
    with pytest.raises(ArgumentError, match="different label sets"):
        mixed.classification()
    assert "macro-F1" not in mixed._repr_html_()  # the card still shows, without the section
    # one set passed for both runs: cases expecting something outside it are left out and counted
    row = mixed.classification(labels=["Other", "yes"], n_boot=0).df.iloc[0]
    assert (row["n"], row["answers"], row["off_label"], row["accuracy"]) == (4, 2, 2, 1.0)


def test_a_report_of_runs_with_different_label_sets_leaves_the_section_out(tmp_path):
    from promptlab.notebook._report import comparison_report

    a = pl.run(support_suite(3), PROMPT, pl.FakeProvider("Other"), progress=False, cache=False)
    other = pl.Suite("x", labels=["yes", "no"])
    other.add_case("q", "yes", id="q1")
    b = pl.run(other, PROMPT, pl.FakeProvider("yes"), progress=False, cache=False)
    page = comparison_report(tmp_path / "r.html", pl.Results.concat([a, b]), None, "mixed").read_text("utf-8")
    assert "Classification metrics" not in page and "Summary" in page


def test_labels_survive_save_and_load(tmp_path):
    results = run_support()
    loaded = pl.Results.load(results.save(tmp_path / "r.parquet"))
    pd.testing.assert_frame_equal(loaded.classification(n_boot=100).df, results.classification(n_boot=100).df)


def test_off_label_expected_values_are_left_out_and_counted():
    rows = [{"case_id": f"c{i}", "variant": "A", "model": "fake:m", "repeat": 0, "input": "x", "category": "happy_path",
             "output": out, "expected": exp, "passed": None, "cached": False}
            for i, (exp, out) in enumerate([("yes", "yes"), ("no", "no!"), (["yes", "y"], "yes"), ("yes", None)])]
    results = pl.Results(build_frame(rows, "r1"), {"suite": {"labels": ["yes", "no"]}})
    row = results.classification(n_boot=0).df.iloc[0]
    assert (row["n"], row["errors"], row["off_label"], row["answers"], row["accuracy"]) == (4, 1, 1, 2, 1.0)
    assert np.isnan(row["accuracy_ci_low"])


def test_an_answer_the_transform_could_not_read_names_no_label():
    """A transform error (the model answered; the run's output transform found no label in it) is an answer in
    the (none) column, not a failed call: leaving it out would hide the format failures from the metrics."""
    rows = [{"case_id": f"c{i}", "variant": "A", "model": "fake:m", "repeat": 0, "input": "x", "category": "happy_path",
             "output": out, "expected": exp, "error_type": err, "cached": False}
            for i, (exp, out, err) in enumerate([("yes", "yes", None), ("no", None, "transform_error"),
                                                 ("no", None, "timeout"), ("no", "no", None)])]
    table = pl.Results(build_frame(rows, "r1"), {"suite": {"labels": ["yes", "no"]}}).classification(n_boot=0)
    row = table.df.iloc[0]
    assert (row["n"], row["errors"], row["answers"], row["no_label"]) == (4, 1, 3, 1)
    # accuracy_score(["yes", "no", "no"], ["yes", "(none)", "no"]) -> 2/3
    assert row["accuracy"] == pytest.approx(accuracy_score(["yes", "no", "no"], ["yes", "(none)", "no"]))
    assert table.confusion().loc["no", "(none)"] == 1


def test_confusion_names_its_groups_when_asked_for_one_that_is_not_there():
    table = run_support().classification(n_boot=0)
    with pytest.raises(UnknownNameError, match="several groups match"):
        table.confusion()
    with pytest.raises(UnknownNameError, match="'A' @ 'fake:fake-model'"):
        table.confusion("nope")


# ---- card and report ----------------------------------------------------------------------------------------------
def test_results_card_shows_macro_f1_and_kappa_with_intervals():
    results = run_support()
    html = results._repr_html_()
    row = results.classification().df.iloc[0]
    assert "macro-F1 [95% CI]" in html and "κ [95% CI]" in html
    assert f"{row['macro_f1']:.3f} [{row['macro_f1_ci_low']:.3f}, {row['macro_f1_ci_high']:.3f}]" in html
    assert f"{row['kappa']:.3f} [" in html and "1 failed (left out)" in html


def test_table_card_shows_confusion_and_per_label_and_escapes_labels():
    suite = pl.Suite("s", labels=["<b>bold</b>", "plain"])
    for i in range(4):
        suite.add_case(f"t {i}", ["<b>bold</b>", "plain"][i % 2], id=f"c{i}")
    html = pl.run(suite, PROMPT, pl.FakeProvider("plain"), progress=False, cache=False).classification()._repr_html_()
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert "(none)" in html and "precision [95% CI]" in html and "NA [NA, NA]" in html  # bold never named


def test_comparison_report_has_the_confusion_matrices_and_the_macro_f1_comparison(tmp_path):
    from promptlab.notebook._report import comparison_report

    results = run_support()
    path = comparison_report(tmp_path / "r.html", results, pl.compare(results, baseline="A"), "demo")
    page = path.read_text(encoding="utf-8")
    assert "Classification metrics" in page and "Macro-F1 against &#x27;A&#x27;, paired by case" in page
    assert page.count("confusion matrix (rows expected, columns read)") == 2 and "(none)" in page


def test_the_faces_carry_the_new_names():
    assert pl.stats.compare_macro_f1 is compare_macro_f1
    assert "ClassificationTable" in pl.evaluation.__all__
