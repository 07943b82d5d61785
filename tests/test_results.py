"""Results summaries pinned to references (docs/statistics.md, statsmodels) and hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import promptlab as pl
from promptlab.evaluation._results import COLUMNS, EvalResult, build_frame
from promptlab.evaluation._runner import evaluate_prompt

PROMPT = pl.Prompt(name="p", version="1", model="claude-3-5-sonnet-20241022")


def frame(passed, variant="A", case_ids=None, repeats=None, **extra) -> pd.DataFrame:
    n = len(passed)
    rows = [{"case_id": (case_ids or [f"c{i}" for i in range(n)])[i], "variant": variant, "model": "fake:m",
             "category": extra.get("category", ["happy_path"] * n)[i], "repeat": (repeats or [0] * n)[i],
             "input": f"in {i}", "output": None if passed[i] is None else "out", "expected": "x",
             "passed": passed[i], "score": None if passed[i] is None else float(passed[i]),
             "latency_s": extra.get("latency", [0.1] * n)[i], "cost_usd": extra.get("cost", [0.001] * n)[i],
             "input_tokens": 10, "output_tokens": 2, "cached": False,
             "error_type": "server" if passed[i] is None else None} for i in range(n)]
    return build_frame(rows, "run1")


def test_schema_and_dtypes():
    df = frame([True, False, None])
    assert list(df.columns) == list(COLUMNS)
    assert str(df["passed"].dtype) == "boolean" and str(df["input_tokens"].dtype) == "Int64"
    assert pd.isna(df.loc[2, "passed"]) and pd.isna(df.loc[2, "output"])


def test_accuracy_counts_calls_with_no_verdict_as_failures():
    results = pl.Results(frame([True] * 9 + [False] + [None]))
    row = results.accuracy().iloc[0]
    assert (row["n"], row["scored"], row["errors"], row["passed"]) == (11, 10, 1, 9)
    assert row["accuracy"] == pytest.approx(9 / 11) and row["accuracy_scored"] == pytest.approx(0.9)
    # statsmodels.stats.proportion.proportion_confint(9, 11, method="wilson") -> (0.5230194380, 0.9486323103)
    assert row["ci_low"] == pytest.approx(0.5230194380, abs=1e-9)
    assert row["ci_high"] == pytest.approx(0.9486323103, abs=1e-9)


def test_one_definition_twenty_calls_eight_failed():
    """Issue 12: with 8 of 20 calls failing, `--min-accuracy 0.9` passed on 12 scored calls."""
    results = pl.Results(frame([True] * 12 + [None] * 8), {"run_id": "r"})
    row = results.accuracy().iloc[0]
    assert (row["n"], row["scored"], row["errors"], row["accuracy"]) == (20, 12, 8, 0.6)
    assert row["accuracy_scored"] == 1.0
    # proportion_confint(12, 20, method="wilson") -> (0.3865815008, 0.7811934676)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.3865815008, 0.7811934676), abs=1e-9)
    face = EvalResult(results)
    assert (face.total, face.correct, face.scored, face.errors, face.accuracy) == (20, 12, 12, 8, 0.6)
    assert face.by_category == {"happy_path": 0.6}
    assert "12 scored · 8 errors" in repr(face)
    assert results.by_category().iloc[0]["accuracy"] == 0.6
    assert "12 scored · 8 errors" in repr(results) and "12 scored · 8 errors" in results._repr_html_()
    assert results.summary().iloc[0]["accuracy"] == 0.6


def test_min_accuracy_gate_fails_when_calls_fail(capsys):
    from promptlab.cli import EXIT_GATE, _gate

    results = pl.Results(frame([True] * 12 + [None] * 8))
    assert _gate(results, 0.9) == EXIT_GATE
    assert "accuracy 0.600" in capsys.readouterr().err


def test_min_accuracy_gate_fails_when_no_call_has_a_verdict(capsys):
    """A graded-only scorer gives no verdict: accuracy is NA, and NA must not pass a gate (NaN < x is False)."""
    from promptlab.cli import EXIT_GATE, _gate

    graded = frame([True, False, True]).assign(passed=pd.NA, error_type=pd.NA)
    results = pl.Results(graded)
    assert pd.isna(results.accuracy().iloc[0]["accuracy"])
    assert _gate(results, 0.5) == EXIT_GATE
    assert "NA (no call has a verdict)" in capsys.readouterr().err


def test_evidence_summary_uses_the_same_definition():
    from promptlab.registry._evidence import summarise_eval
    from promptlab.registry._lifecycle import Thresholds

    df = frame([True, False, None, True, True, None], case_ids=["a", "a", "b", "b", "c", "c"],
               repeats=[0, 1] * 3)
    df["model"] = PROMPT.model
    summary = summarise_eval(df, PROMPT, Thresholds())
    row = pl.Results(df).accuracy().iloc[0]
    assert (summary.calls, summary.no_verdict, summary.accuracy) == (6, 2, 0.5) == (row["n"], row["errors"],
                                                                                      row["accuracy"])
    assert (summary.ci_low, summary.ci_high) == (row["ci_low"], row["ci_high"])


def test_evidence_format_compliance_reads_labels_as_the_scorer_does():
    """Multi-word labels: the registry's format check and the scorer agree on what names a label."""
    from promptlab.registry._evidence import summarise_eval
    from promptlab.registry._lifecycle import Thresholds

    prompt = PROMPT.with_changes(metadata={**PROMPT.metadata, "labels": ["Billing Inquiries", "Account Access"]})
    df = frame([True, True, True, True])
    df["model"] = prompt.model
    df["output"] = ["Billing Inquiries", "billing-inquiries.", "ACCOUNT ACCESS", "Refund please"]
    summary = summarise_eval(df, prompt, Thresholds(output_format="labels"))
    assert summary.format_compliance == 0.75


def test_graded_scores_without_verdicts_have_no_accuracy_not_zero():
    df = frame([True, False])
    df["passed"] = pd.array([pd.NA, pd.NA], dtype="boolean")  # a judge with no pass threshold: scores only
    row = pl.Results(df).accuracy().iloc[0]
    assert pd.isna(row["accuracy"]) and (row["n"], row["scored"], row["errors"]) == (2, 0, 0)


def test_zero_of_twenty():
    row = pl.Results(frame([False] * 20)).accuracy().iloc[0]
    # proportion_confint(0, 20, method="wilson") -> (0, 0.161125)
    assert row["ci_low"] == pytest.approx(0.0, abs=1e-9) and row["ci_high"] == pytest.approx(0.161125, abs=1e-6)


def test_repeats_take_the_se_over_cases():
    passed = [True, True, True, False, False, False, False, True]
    cases = ["a", "a", "b", "b", "c", "c", "d", "d"]
    row = pl.Results(frame(passed, case_ids=cases, repeats=[0, 1] * 4)).accuracy().iloc[0]
    per_case = np.array([1.0, 0.5, 0.0, 0.5])  # hand: mean 0.5, sd(ddof=1)=sqrt(1/6), se = sd/2
    assert row["cases"] == 4 and row["accuracy"] == pytest.approx(0.5)
    assert row["se_cases"] == pytest.approx(per_case.std(ddof=1) / 2)
    assert row["ci_low"] == pytest.approx(0.5 - 1.959963985 * per_case.std(ddof=1) / 2)


@pytest.mark.parametrize("repeats", [1, 2, 5])
def test_all_agreeing_cases_keep_a_real_interval_whatever_the_repeats(repeats):
    """Issue 12: 6 all-wrong cases gave [0, 0] with repeats=2 and [0, 0.39] with repeats=1."""
    cases = [f"c{i}" for i in range(6) for _ in range(repeats)]
    wrong = pl.Results(frame([False] * len(cases), case_ids=cases, repeats=list(range(repeats)) * 6)).accuracy()
    right = pl.Results(frame([True] * len(cases), case_ids=cases, repeats=list(range(repeats)) * 6)).accuracy()
    # proportion_confint(0, 6, method="wilson") -> (0, 0.3903342879); (6, 6) -> (0.6096657121, 1)
    assert (wrong.iloc[0]["ci_low"], wrong.iloc[0]["ci_high"]) == pytest.approx((0.0, 0.3903342879), abs=1e-9)
    assert (right.iloc[0]["ci_low"], right.iloc[0]["ci_high"]) == pytest.approx((0.6096657121, 1.0), abs=1e-9)
    assert wrong.iloc[0]["cases"] == 6 and wrong.iloc[0]["n"] == 6 * repeats


def test_failed_repeats_count_as_failures_over_cases():
    passed = [True, None, True, True, False, None]
    row = pl.Results(frame(passed, case_ids=["a", "a", "b", "b", "c", "c"], repeats=[0, 1] * 3)).accuracy().iloc[0]
    per_case = np.array([0.5, 1.0, 0.0])  # a call with no verdict is a failure inside its case too
    assert row["accuracy"] == pytest.approx(0.5) and row["se_cases"] == pytest.approx(per_case.std(ddof=1) / np.sqrt(3))
    unnamed = frame(passed, case_ids=["a", "a", "b", "b", "c", "c"], repeats=[0, 1] * 3)
    unnamed["case_id"] = pd.array(["a", "a", None, None, "c", "c"], dtype="string")  # malformed rows still summarise
    assert pl.Results(unnamed).accuracy().iloc[0]["se_cases"] == pytest.approx(row["se_cases"])


def test_by_category_and_failures_hardest_first():
    cats = ["happy_path", "adversarial", "edge_case", "happy_path"]
    results = pl.Results(frame([False, False, True, True], category=cats))
    by_cat = results.by_category().set_index("category")
    assert by_cat.loc["adversarial", "accuracy"] == 0 and by_cat.loc["edge_case", "accuracy"] == 1
    failures = results.failures()
    assert list(failures["category"]) == ["adversarial", "happy_path"]
    assert {"input", "expected", "actual", "category", "reason"} <= set(failures.columns)


def test_latency_p95_named_quantile_with_interval():
    values = list(np.arange(1, 101, dtype=float))
    results = pl.Results(frame([True] * 100, latency=values))
    row = results.latency().iloc[0]
    # docs/statistics.md: p95 of 1..100, inverted_cdf = 95; order-statistic 95% CI [90, 100]
    assert row["p95_s"] == 95 and (row["p95_ci_low"], row["p95_ci_high"]) == (90, 100)
    assert row["p50_s"] == 50


def test_latency_leaves_cached_answers_out_like_the_comparison_guardrail():
    """Issue 12: latency() took cached rows at a past call's latency while compare()'s guardrail said NA."""
    from promptlab.stats._comparison import compare

    a = frame([True] * 40, latency=list(np.linspace(0.1, 4.0, 40)))
    b = frame([True] * 40, variant="B", latency=list(np.linspace(1.0, 9.0, 40)))
    df = pd.concat([a, b], ignore_index=True)
    df.loc[df.index[:30], "cached"] = True  # 30 of A's answers came from the cache
    df.loc[df["variant"] == "B", "cached"] = True  # every one of B's
    results = pl.Results(df)
    latency = results.latency().set_index("variant")
    assert (latency.loc["A", "n"], latency.loc["A", "cached_excluded"]) == (10, 30)
    assert (latency.loc["B", "n"], latency.loc["B", "cached_excluded"]) == (0, 40)
    live = np.linspace(0.1, 4.0, 40)[30:]
    assert latency.loc["A", "p95_s"] == np.quantile(live, 0.95, method="inverted_cdf")
    guard = compare(results).df.iloc[0]
    assert guard.baseline_p95_s == latency.loc["A", "p95_s"]
    assert pd.isna(guard.variant_p95_s) and pd.isna(latency.loc["B", "p95_s"])
    assert "70 cached rows excluded" in results._repr_html_()


def test_unknown_cost_is_na_not_zero():
    results = pl.Results(frame([True, True], cost=[0.002, None]))
    cost = results.cost().iloc[0]
    assert pd.isna(cost["cost_usd"]) and cost["input_tokens"] == 20
    known = pl.Results(frame([True, True], cost=[0.002, 0.004])).cost().iloc[0]
    assert known["cost_usd"] == pytest.approx(0.006) and known["cost_per_1k_calls_usd"] == pytest.approx(3.0)


def test_unknown_token_counts_make_an_unknown_total_not_zero():
    df = frame([True, True, True])
    df["input_tokens"] = pd.array([10, None, 7], dtype="Int64")  # the provider reported no usage for one call
    df["output_tokens"] = pd.array([None, None, None], dtype="Int64")
    row = pl.Results(df).cost().iloc[0]
    assert pd.isna(row["input_tokens"]) and pd.isna(row["output_tokens"])
    assert pl.Results(frame([True, True])).cost().iloc[0]["input_tokens"] == 20


def test_format_compliance():
    df = frame([True, True, True])
    df["output"] = pd.array(['{"a": 1}', "not json", '{"b": 2}'], dtype="string")
    row = pl.Results(df).format_compliance().iloc[0]
    # proportion_confint(2, 3, method="wilson") -> (0.2076596, 0.9385081)
    assert row["compliance"] == pytest.approx(2 / 3) and row["ci_low"] == pytest.approx(0.2076596, abs=1e-6)


def test_save_and_load_are_identical(tmp_path):
    df = frame([True, False, None])
    df.at[0, "input"] = {"subject": "s", "body": "b"}
    results = pl.Results(df, {"run_id": "run1", "seed": 3, "cache": {"hits": 1, "misses": 2}})
    again = pl.Results.load(results.save(tmp_path / "r.parquet"))
    pd.testing.assert_frame_equal(again.df, results.df)
    assert again.meta == results.meta


def test_concat_keeps_each_runs_metadata():
    a = pl.Results(frame([True]), {"run_id": "a"})
    b = pl.Results(frame([False], variant="B"), {"run_id": "b"})
    both = pl.Results.concat([a, b])
    assert len(both) == 2 and [m["run_id"] for m in both.meta["runs"]] == ["a", "b"]


def test_card_renders_with_and_without_errors():
    clean = pl.Results(frame([True, False]), {"run_id": "r", "cache": {"hits": 1, "misses": 1}})
    html = clean._repr_html_()
    assert "cache 1 hits · 1 misses" in html
    assert "accuracy [95% CI]" in html and "worst failures" in html and "errors —" not in html
    broken = pl.Results(frame([True, None]), {"run_id": "r"})
    assert "errors — server: 1" in broken._repr_html_()
    df = frame([False])
    df.at[0, "input"] = "<img src=x onerror=alert(1)>"
    assert "<img" not in pl.Results(df)._repr_html_()
    assert repr(clean).startswith("Results(2 rows; accuracy A@fake:m=50.0%")


def test_eval_result_face():
    suite = pl.Suite("s")
    suite.add_case("good", "positive")
    suite.add_edge_case("bad", "negative")
    result = evaluate_prompt(PROMPT, suite, pl.FakeProvider("positive"), progress=False, cache=False)
    assert isinstance(result, EvalResult)
    assert (result.total, result.correct, result.accuracy) == (2, 1, 0.5)
    assert result.by_category == {"happy_path": 1.0, "edge_case": 0.0}
    assert result.failures[0]["expected"] == "negative" and result.failures[0]["actual"] == "positive"


def test_summary_table():
    summary = pl.Results(frame([True, False], latency=[0.1, 0.3])).summary()
    assert {"accuracy", "ci_low", "p50_s", "p95_s", "cost_usd"} <= set(summary.columns)
