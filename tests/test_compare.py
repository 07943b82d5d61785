"""compare(): paired comparisons on small hand-built results frames with hand-computed expectations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from promptlab.errors import StatsError
from promptlab.evaluation._results import Results
from promptlab.stats._comparison import COLUMNS, VERDICTS, Comparison, compare
from promptlab.stats._multiplicity import benjamini_hochberg, holm
from promptlab.stats._paired import mcnemar, paired_bootstrap, paired_proportion_interval, paired_ttest
from promptlab.stats._quantiles import QUANTILE_METHOD

S_A = [1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0]
S_B = [1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1]


def rows_for(variant: str, outcomes: list, *, model: str = "m", repeat: int = 0, cost: float = 0.001,
             latency: float = 1.0, categories: tuple[str, ...] = ("easy", "hard"), start: int = 0) -> list[dict]:
    """One results row per outcome (True / False / None = no verdict); case ids c0, c1, …"""
    return [{"case_id": f"c{start + i}", "variant": variant, "model": model, "repeat": repeat,
             "category": categories[i % len(categories)], "passed": outcome,
             "score": np.nan if outcome is None else float(outcome), "cost_usd": cost,
             "latency_s": latency + i / 1000, "error_type": "timeout" if outcome is None else None}
            for i, outcome in enumerate(outcomes)]


def frame(*groups: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([row for group in groups for row in group])
    df["passed"] = df["passed"].astype("boolean")
    df["error_type"] = df["error_type"].astype("string")
    return df


def table_arms(a: int, b: int, c: int, d: int) -> tuple[list[bool], list[bool]]:
    """The paired table [[a, b], [c, d]] as two outcome lists (a both pass, b A only, c B only, d both fail)."""
    arm_a = [True] * a + [True] * b + [False] * c + [False] * d
    arm_b = [True] * a + [False] * b + [True] * c + [False] * d
    return arm_a, arm_b


M2 = table_arms(80, 3, 12, 5)


def test_m2_table_as_rows_gives_the_reference_mcnemar():
    # statsmodels mcnemar([[80, 3], [12, 5]], exact=True).pvalue = 0.03515625; mid-p 0.0212707520
    cmp = compare(frame(rows_for("A", M2[0]), rows_for("B", M2[1])))
    row = cmp.df.iloc[0]
    assert list(cmp.df.columns) == COLUMNS
    assert (row.variant, row.baseline, row.model, row.metric, row.n, row.b, row.c) == ("B", "A", "m", "passed",
                                                                                       100, 3, 12)
    assert row.p_exact == pytest.approx(0.03515625, abs=1e-12)
    assert row.p_value == pytest.approx(0.0212707520, abs=1e-10)
    assert row.p_adj == row.p_value  # one variant: Holm changes nothing
    assert (row.baseline_mean, row.variant_mean, row["diff"]) == pytest.approx((0.83, 0.92, 0.09))
    ref = paired_proportion_interval(80, 3, 12, 5)
    assert (row.ci_low, row.ci_high) == pytest.approx((ref.low, ref.high))
    assert row.correlation == pytest.approx(np.corrcoef(M2[0], M2[1])[0, 1])
    assert row.verdict == "better" and row.n_dropped == 0 and row.note == ""
    assert row.method.startswith("McNemar mid-p")


def test_results_object_is_accepted():
    df = frame(rows_for("A", M2[0]), rows_for("B", M2[1])).assign(cached=False)
    pd.testing.assert_frame_equal(compare(Results(df)).df, compare(df).df)


def test_cached_answers_do_not_count_for_latency():
    df = frame(rows_for("A", M2[0]), rows_for("B", M2[1], latency=5.0)).assign(cached=False)
    df.loc[df["variant"] == "B", "cached"] = True
    row = compare(df).df.iloc[0]
    assert math.isnan(row.variant_p95_s) and row.variant_cost_usd == pytest.approx(0.001)


def test_power_note_reads_like_the_issue():
    # 60 cases, b = 3, c = 6: ω² = (9 − 9/60)/59 = 0.15, (1.959964 + 0.841621)·sqrt(0.15/60) = 0.1401
    a, b = table_arms(40, 3, 6, 11)
    row = compare(frame(rows_for("A", a), rows_for("B", b))).df.iloc[0]
    assert row.power_note == "with n = 60 the smallest difference detectable at 80% power is 14 points"
    assert row.mde == pytest.approx(0.1401, abs=1e-4)


def test_holm_across_variants():
    c_arms, d_arms = table_arms(70, 10, 11, 9), table_arms(80, 2, 16, 2)
    df = frame(rows_for("A", M2[0]), rows_for("B", M2[1]), rows_for("C", c_arms[1]), rows_for("D", d_arms[1]))
    # every variant is paired with the same baseline outcomes M2[0]; recompute the discordant pairs from them
    result = compare(df).df.set_index("variant")
    expected = holm(result["p_value"].to_numpy())
    assert result["p_adj"].to_numpy() == pytest.approx(expected)
    assert set(result["verdict"]) <= set(VERDICTS)
    for name, arm in (("C", c_arms[1]), ("D", d_arms[1])):
        b = sum(x and not y for x, y in zip(M2[0], arm, strict=True))
        c = sum(y and not x for x, y in zip(M2[0], arm, strict=True))
        assert (result.loc[name, "b"], result.loc[name, "c"]) == (b, c)
        assert result.loc[name, "p_value"] == pytest.approx(mcnemar(b, c).p_mid)


def test_missing_verdicts_are_dropped_pairwise_and_counted():
    arm_b = list(M2[1])
    arm_b[0], arm_b[1] = None, None
    arm_a = list(M2[0])
    arm_a[2] = None
    row = compare(frame(rows_for("A", arm_a), rows_for("B", arm_b))).df.iloc[0]
    assert (row.n, row.n_dropped) == (97, 3)
    assert "3 pairs dropped" in row.note
    assert row.baseline_error_rate == pytest.approx(0.01) and row.variant_error_rate == pytest.approx(0.02)


def test_baseline_not_present_names_the_variants():
    with pytest.raises(StatsError, match=r"baseline 'control' is not a variant.*\['A', 'B'\]"):
        compare(frame(rows_for("A", M2[0]), rows_for("B", M2[1])), baseline="control")


def test_one_variant_gives_an_empty_comparison_with_a_message():
    cmp = compare(frame(rows_for("A", M2[0])))
    assert len(cmp) == 0 and list(cmp.df.columns) == COLUMNS
    assert "only one variant" in cmp.messages[0]
    assert "\n" not in repr(cmp) and "empty" in repr(cmp)
    assert "only one variant" in cmp._repr_html_()


def test_all_pass_in_both_arms_answers():
    row = compare(frame(rows_for("A", [True] * 30), rows_for("B", [True] * 30))).df.iloc[0]
    assert (row["diff"], row.p_value, row.p_exact, row.b, row.c) == (0.0, 1.0, 1.0, 0, 0)
    assert row.verdict == "no detectable difference"
    assert "no discordant pairs" in row.note and "baseline passed every case" in row.note
    assert "failure rate ≤ 9.5%" in row.note  # 1 − 0.05**(1/30) = 0.0950
    assert row.ci_low < 0 < row.ci_high and math.isfinite(row.mde)
    assert math.isnan(row.correlation)  # undefined for constant arms, and said so in the docs


def test_all_fail_against_all_pass():
    row = compare(frame(rows_for("A", [False] * 12), rows_for("B", [True] * 12))).df.iloc[0]
    assert (row.b, row.c, row["diff"]) == (0, 12, 1.0)
    assert row.p_exact == pytest.approx(2 * 0.5 ** 12) and row.verdict == "better"
    assert "baseline failed every case" in row.note and "variant passed every case" in row.note


def test_no_complete_pairs_answers():
    row = compare(frame(rows_for("A", [True] * 5), rows_for("B", [None] * 5))).df.iloc[0]
    assert (row.n, row.n_dropped, row.p_value, row.p_adj, row.verdict) == (0, 5, 1.0, 1.0,
                                                                            "no detectable difference")
    assert "no complete pairs" in row.note and math.isnan(row["diff"])


def test_graded_scores_use_paired_t_and_the_seeded_bootstrap():
    # scipy.stats.ttest_rel(S_B, S_A) → p 0.0420862867
    df = frame(rows_for("A", [bool(x) for x in S_A]), rows_for("B", [bool(x) for x in S_B]))
    cmp = compare(df, metric="score", seed=7)
    row = cmp.df.iloc[0]
    assert row.p_value == pytest.approx(0.0420862867, abs=1e-10)
    boot = paired_bootstrap(S_A, S_B, seed=7)
    assert (row.ci_low, row.ci_high) == (boot.ci_low, boot.ci_high)
    assert (row.b, row.c) == (0, 4) and row.p_exact == pytest.approx(2 * 0.5 ** 4)
    assert "bootstrap" in row.method and row.power_note.endswith(f"{row.mde:.3g}")
    assert compare(df, metric="score", seed=7).df.equals(cmp.df)


def test_repeats_are_averaged_per_case_first():
    # case-level pass rates over 2 repeats; the test runs over the 20 cases, not the 40 pairs
    a0, a1 = S_A, S_A[::-1]
    b0, b1 = S_B, S_B
    df = frame(rows_for("A", [bool(x) for x in a0]), rows_for("A", [bool(x) for x in a1], repeat=1),
               rows_for("B", [bool(x) for x in b0]), rows_for("B", [bool(x) for x in b1], repeat=1))
    row = compare(df).df.iloc[0]
    case_a, case_b = (np.add(a0, a1) / 2), (np.add(b0, b1) / 2)
    ref = paired_ttest(case_a, case_b)
    assert (row.n, row.cases) == (40, 20)
    assert row.p_value == pytest.approx(ref.p_value) and (row.ci_low, row.ci_high) == pytest.approx(
        (ref.ci_low, ref.ci_high))
    assert "per-case means of 2 repeats" in row.method
    assert row.power_note.startswith("with n = 20 cases")


def test_by_category_adjusts_with_benjamini_hochberg():
    cmp = compare(frame(rows_for("A", M2[0]), rows_for("B", M2[1])))
    cats = cmp.by_category()
    assert isinstance(cats, Comparison) and cats.level == "category"
    assert list(cats.df.columns[:4]) == ["variant", "baseline", "model", "category"]
    assert sorted(cats.df["category"]) == ["easy", "hard"] and cats.df["n"].sum() == 100
    assert cats.df["p_adj"].to_numpy() == pytest.approx(benjamini_hochberg(cats.df["p_value"].to_numpy()))
    easy = [i for i in range(100) if i % 2 == 0]
    b = sum(M2[0][i] and not M2[1][i] for i in easy)
    c = sum(M2[1][i] and not M2[0][i] for i in easy)
    assert tuple(cats.df.set_index("category").loc["easy", ["b", "c"]]) == (b, c)


def test_models_are_compared_separately():
    df = frame(rows_for("A", M2[0], model="m1"), rows_for("B", M2[1], model="m1"),
               rows_for("A", M2[1], model="m2"), rows_for("B", M2[0], model="m2"))
    result = compare(df).df.set_index("model")
    assert (result.loc["m1", "b"], result.loc["m1", "c"]) == (3, 12)
    assert (result.loc["m2", "b"], result.loc["m2", "c"]) == (12, 3)
    assert result.loc["m1", "verdict"] == "better" and result.loc["m2", "verdict"] == "worse"
    assert result["p_adj"].tolist() == pytest.approx(result["p_value"].tolist())  # one variant per model


def test_variant_on_another_model_is_paired_across_models():
    cmp = compare(frame(rows_for("A", M2[0], model="claude"), rows_for("B", M2[1], model="gpt")))
    assert len(cmp) == 1 and cmp.df.iloc[0].n == 100 and cmp.df.iloc[0].c == 12
    assert "shares no model" in cmp.messages[0]


def test_guardrails_sit_beside_the_accuracy():
    df = frame(rows_for("A", M2[0], cost=0.001, latency=1.0), rows_for("B", M2[1], cost=0.003, latency=2.0))
    row = compare(df).df.iloc[0]
    assert row.cost_diff_usd == pytest.approx(0.002)
    latencies = 1.0 + np.arange(100) / 1000
    assert row.baseline_p95_s == pytest.approx(np.quantile(latencies, 0.95, method=QUANTILE_METHOD))
    assert row.p95_diff_s == pytest.approx(1.0)


def test_unpriced_cost_stays_unknown():
    df = frame(rows_for("A", M2[0], cost=np.nan), rows_for("B", M2[1]))
    row = compare(df).df.iloc[0]
    assert math.isnan(row.baseline_cost_usd) and math.isnan(row.cost_diff_usd)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"metric": "accuracy"}, "metric='accuracy'"),
    ({"alpha": 1.5}, "alpha=1.5"),
])
def test_bad_arguments_say_what_and_how(kwargs, match):
    with pytest.raises(StatsError, match=match):
        compare(frame(rows_for("A", M2[0]), rows_for("B", M2[1])), **kwargs)


def test_bad_inputs_are_stats_errors():
    with pytest.raises(StatsError, match="needs a promptlab Results"):
        compare([1, 2, 3])
    with pytest.raises(StatsError, match=r"lacks columns \['repeat'\]"):
        compare(frame(rows_for("A", M2[0])).drop(columns="repeat"))


def test_display_is_one_line_text_and_escaped_html():
    df = frame(rows_for("A", M2[0]), rows_for("<b>x</b>", M2[1]))
    cmp = compare(df)
    text = repr(cmp)
    assert "\n" not in text and "better" in text and "+9.0 points" in text
    html = cmp._repr_html_()
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "pl-good" in html and "Holm" in html
    assert "smallest difference detectable" in cmp.summary_text()
    assert cmp.verdicts == {"<b>x</b>": "better"}
    assert "Benjamini" in cmp.by_category()._repr_html_()


# ---- intervals on the verdict's footing (issue 12) --------------------------------------------------------
def test_intervals_are_simultaneous_across_the_variants_compared():
    c_arms, d_arms = table_arms(70, 10, 11, 9), table_arms(80, 2, 16, 2)
    df = frame(rows_for("A", M2[0]), rows_for("B", M2[1]), rows_for("C", c_arms[1]), rows_for("D", d_arms[1]))
    result = compare(df).df.set_index("variant")
    level = 1 - 0.05 / 3  # Bonferroni over the 3 variants compared with A: the footing of Holm's p_adj
    assert (result["ci_level"] == level).all()
    for name, arm in (("B", M2[1]), ("C", c_arms[1]), ("D", d_arms[1])):
        cells = [sum(x == u and y == v for x, y in zip(M2[0], arm, strict=True))
                 for u, v in ((True, True), (True, False), (False, True), (False, False))]
        adjusted, plain = paired_proportion_interval(*cells, level), paired_proportion_interval(*cells)
        assert (result.loc[name, "ci_low"], result.loc[name, "ci_high"]) == (adjusted.low, adjusted.high)
        assert (result.loc[name, "ci_low_unadj"], result.loc[name, "ci_high_unadj"]) == (plain.low, plain.high)
    html = compare(df)._repr_html_()
    assert "diff [95% simultaneous CI]" in html and "(each at 98.3%)" in html and "Bonferroni" in html


def test_the_reported_case_never_shows_a_difference_beside_no_detectable_difference():
    """Issue 12: v2 at +33 points, CI [+0.8, +56.7] (zero outside) beside "no detectable difference"."""
    base = [False] * 6 + [True] * 6
    v2 = [True] * 4 + [False] * 2 + [True] * 6   # 4 cases only v2 passed: +33 points on 12 cases
    terse = [True] * 1 + [False] * 5 + [True] * 6
    cmp = compare(frame(rows_for("baseline", base), rows_for("v2", v2), rows_for("terse", terse)), "baseline")
    row = cmp.df.set_index("variant").loc["v2"]
    assert row["diff"] == pytest.approx(4 / 12) and row.p_adj == pytest.approx(0.125)  # Holm: 2 × mid-p 0.0625
    assert row.verdict == "no detectable difference" and row.ci_low < 0 < row.ci_high
    # the interval shown is simultaneous over the 2 variants (each at 97.5%); the unadjusted 95% one, which
    # excludes 0 (it was the report's [+0.3, +58.2]), stays in the frame under its own name
    simultaneous = paired_proportion_interval(6, 0, 4, 2, 0.975)
    unadjusted = paired_proportion_interval(6, 0, 4, 2)
    assert (row.ci_low, row.ci_high, row.ci_level) == (simultaneous.low, simultaneous.high, 0.975)
    assert (row.ci_low_unadj, row.ci_high_unadj) == (unadjusted.low, unadjusted.high) and unadjusted.low > 0
    _assert_agree(cmp.df, 0.05, cmp.level)
    assert "simultaneous" in cmp.summary_text() and "(97.5% CI)" in cmp.summary_text()


def _assert_agree(df: pd.DataFrame, alpha: float, level: str) -> None:
    _assert_verdicts_agree(df, alpha)
    _assert_levels(df, alpha, level)


def _assert_verdicts_agree(df: pd.DataFrame, alpha: float) -> None:
    """No row shows a verdict its own interval (or its adjusted p) contradicts."""
    for row in df.itertuples():
        if row.verdict == "better":
            assert row.ci_low > 0 and row.p_adj < alpha and row.diff > 0, row
        elif row.verdict == "worse":
            assert row.ci_high < 0 and row.p_adj < alpha and row.diff < 0, row
        elif row.verdict == "no detectable difference":
            assert row.p_adj >= alpha and not (row.ci_low > 0 or row.ci_high < 0), row
        else:
            assert row.verdict == "borderline" and "borderline" in row.note, row


def _assert_levels(df: pd.DataFrame, alpha: float, level: str) -> None:
    """The displayed interval is at the family's level and never narrower than the unadjusted one."""
    family = ["variant", "model"] if level == "category" else ["model"]
    k = (df["n"] > 0).groupby([df[c] for c in family]).transform("sum").clip(lower=1)
    for row, family_size in zip(df.itertuples(), k, strict=True):
        if level == "variant" and row.n:
            assert row.ci_level == pytest.approx(1 - alpha / family_size)
        if row.n:
            assert row.ci_low <= row.ci_low_unadj + 1e-12 and row.ci_high_unadj <= row.ci_high + 1e-12


def _random_results(rng: np.random.Generator) -> tuple[pd.DataFrame, str]:
    cases, variants, repeats = int(rng.integers(4, 40)), int(rng.integers(2, 5)), int(rng.choice([1, 1, 2]))
    metric = str(rng.choice(["passed", "passed", "passed", "score"]))
    truth = rng.random(cases)
    groups = []
    for v in range(variants):
        shift = rng.normal(0, 0.25)
        for r in range(repeats):
            p = np.clip(truth + shift + rng.normal(0, 0.1, cases), 0, 1)
            outcomes = [bool(x) for x in rng.random(cases) < p]
            outcomes = [None if rng.random() < 0.05 else o for o in outcomes]
            groups.append(rows_for("ABCD"[v], outcomes, repeat=r))
    df = frame(*groups)
    if metric == "score":
        df["score"] = np.where(df["passed"].isna(), np.nan, rng.random(len(df)) * 0.3 + df["score"].fillna(0) * 0.7)
    return df, metric


def test_verdicts_and_displayed_intervals_never_contradict_on_random_data():
    rng = np.random.default_rng(12)
    seen, shown = set(), []
    for _ in range(60):
        df, metric = _random_results(rng)
        alpha = float(rng.choice([0.05, 0.1]))
        cmp = compare(df, metric=metric, alpha=alpha, seed=1)
        for table, level in ((cmp.df, "variant"), (cmp.by_category().df, "category")):
            _assert_verdicts_agree(table, alpha)
            shown.append((table, alpha, level))
        seen |= set(cmp.df["verdict"])
    assert {"better", "worse", "no detectable difference"} <= seen
    for table, alpha, level in shown:
        _assert_levels(table, alpha, level)


def test_category_intervals_use_the_false_coverage_level_of_benjamini_hochberg():
    cats = compare(frame(rows_for("A", M2[0]), rows_for("B", M2[1]))).by_category().df
    found = int((cats["p_adj"] < 0.05).sum())
    assert (cats["ci_level"] == 1 - max(found, 1) * 0.05 / 2).all()


@pytest.mark.parametrize(("metric", "repeats"), [("score", 1), ("score", 2), ("passed", 1), ("passed", 2)])
def test_shuffled_rows_give_identical_statistics(metric, repeats):
    """Issue 12: the paired bootstrap interval moved when the results' rows were shuffled."""
    rng = np.random.default_rng(3)
    groups = [rows_for(v, [bool(x) for x in rng.random(40) < p], repeat=r)
              for v, p in (("A", 0.5), ("B", 0.7), ("C", 0.55)) for r in range(repeats)]
    df = frame(*groups)
    df["score"] = rng.random(len(df))
    def canonical(table: pd.DataFrame) -> pd.DataFrame:  # rows follow the order variants first appear in
        return table.sort_values([c for c in ("variant", "category") if c in table]).reset_index(drop=True)

    first = compare(df, metric=metric, seed=2)
    for seed in range(3):
        shuffled = compare(df.sample(frac=1, random_state=seed), metric=metric, seed=2)
        pd.testing.assert_frame_equal(canonical(shuffled.df), canonical(first.df))
        pd.testing.assert_frame_equal(canonical(shuffled.by_category().df), canonical(first.by_category().df))
