"""Results summaries pinned to references (STATISTICS.md, statsmodels) and hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import promptlab as pl
from promptlab.results import COLUMNS, EvalResult, build_frame
from promptlab.runner import evaluate_prompt

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


def test_accuracy_uses_wilson_and_ignores_failed_calls():
    results = pl.Results(frame([True] * 9 + [False] + [None]))
    row = results.accuracy().iloc[0]
    # statsmodels.stats.proportion.proportion_confint(9, 10, method="wilson") -> (0.595850, 0.982124)
    assert (row["n"], row["passed"], row["errors"]) == (10, 9, 1)
    assert row["accuracy"] == pytest.approx(0.9)
    assert row["ci_low"] == pytest.approx(0.595850, abs=1e-6) and row["ci_high"] == pytest.approx(0.982124, abs=1e-6)


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
    # STATISTICS.md: p95 of 1..100, inverted_cdf = 95; order-statistic 95% CI [90, 100]
    assert row["p95_s"] == 95 and (row["p95_ci_low"], row["p95_ci_high"]) == (90, 100)
    assert row["p50_s"] == 50


def test_unknown_cost_is_na_not_zero():
    results = pl.Results(frame([True, True], cost=[0.002, None]))
    cost = results.cost().iloc[0]
    assert pd.isna(cost["cost_usd"]) and cost["input_tokens"] == 20
    known = pl.Results(frame([True, True], cost=[0.002, 0.004])).cost().iloc[0]
    assert known["cost_usd"] == pytest.approx(0.006) and known["cost_per_1k_calls_usd"] == pytest.approx(3.0)


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
    clean = pl.Results(frame([True, False]), {"run_id": "r"})
    html = clean._repr_html_()
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
