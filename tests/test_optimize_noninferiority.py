"""`noninferiority`: paired, one-sided, decided on the (1 − 2α) interval's lower bound against −margin.
Every interval is pinned to a reference computed outside promptlab (the call is in the comment)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from statsmodels.stats.proportion import proportion_confint

import promptlab as pl
from promptlab.errors import StatsError
from promptlab.evaluation._results import build_frame
from promptlab.optimize import compress, noninferiority


def _table_rows(a: int, b: int, c: int, d: int, model: str = "fake:m") -> list[dict]:
    """Results rows for the paired table [[a, b], [c, d]] (a both pass, b only A, c only B, d both fail)."""
    outcomes = [(1, 1)] * a + [(1, 0)] * b + [(0, 1)] * c + [(0, 0)] * d
    rows = []
    for i, (x, y) in enumerate(outcomes):
        for variant, value, tokens, usd in (("A", x, 100, 0.0010), ("B", y, 60, 0.0006)):
            rows.append({"case_id": f"c{i:03d}", "category": "happy_path", "variant": variant, "model": model,
                         "repeat": 0, "passed": bool(value), "output": "x", "input_tokens": tokens,
                         "cost_usd": usd})
    return rows


def _results(rows: list[dict]) -> pl.Results:
    return pl.Results(build_frame(rows, "run1"))


def _newcombe_reference(a: int, b: int, c: int, d: int, alpha: float) -> tuple[float, float]:
    """Newcombe (1998) method 10 built from statsmodels' Wilson limits (an implementation independent of
    promptlab.stats._paired): diff ∓ sqrt(δ² + ε² − 2 φ δ ε), φ continuity-corrected as in the paper."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = proportion_confint(a + b, n, alpha=alpha, method="wilson")
    l2, u2 = proportion_confint(a + c, n, alpha=alpha, method="wilson")
    margins, cross = (a + b) * (c + d) * (a + c) * (b + d), a * d - b * c
    phi = (cross - n / 2) / math.sqrt(margins) if cross > n / 2 else min(cross, 0) / math.sqrt(margins)
    low = p2 - p1 - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1))
    high = p2 - p1 + math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2))
    return low, high


@pytest.mark.parametrize(("table", "margin", "low", "high", "verdict"), [
    # _newcombe_reference(180, 4, 2, 14, alpha=0.10) → [-0.0348875604, 0.0136103583]
    ((180, 4, 2, 14), 0.05, -0.0348875604, 0.0136103583, "non-inferior"),
    ((180, 4, 2, 14), 0.02, -0.0348875604, 0.0136103583, "inconclusive"),
    # _newcombe_reference(180, 12, 2, 6, alpha=0.10) → [-0.0852741126, -0.0190994791]
    ((180, 12, 2, 6), 0.01, -0.0852741126, -0.0190994791, "inferior"),
    ((180, 12, 2, 6), 0.02, -0.0852741126, -0.0190994791, "inconclusive"),
    # _newcombe_reference(40, 3, 2, 5, alpha=0.10) → [-0.1070428975, 0.0653394463]
    ((40, 3, 2, 5), 0.02, -0.1070428975, 0.0653394463, "inconclusive"),
])
def test_binary_decision_on_the_newcombe_90_percent_interval(table, margin, low, high, verdict):
    result = noninferiority(_results(_table_rows(*table)), margin=margin)
    row = result.df.iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), abs=1e-9)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(_newcombe_reference(*table, alpha=0.10), abs=1e-12)
    a, b, c, d = table
    assert row["diff"] == pytest.approx((c - b) / (a + b + c + d))
    assert (row["b"], row["c"], row["n"], row["confidence"]) == (b, c, a + b + c + d, pytest.approx(0.9))
    assert row["verdict"] == verdict and row["noninferior"] == (verdict == "non-inferior")
    assert row["margin"] == margin and row["method"] == "Newcombe paired hybrid-score 90% interval"


def test_alpha_sets_the_interval():
    result = noninferiority(_results(_table_rows(180, 4, 2, 14)), margin=0.05, alpha=0.025)
    # _newcombe_reference(180, 4, 2, 14, alpha=0.05): the 95% interval for one-sided α = 0.025
    assert result.df["ci_low"].iloc[0] == pytest.approx(_newcombe_reference(180, 4, 2, 14, 0.05)[0], abs=1e-12)
    assert result.df["confidence"].iloc[0] == pytest.approx(0.95)


def test_repeats_use_the_paired_t_interval_over_cases():
    rng = np.random.default_rng(7)
    rows = []
    for i in range(30):
        for repeat in range(3):
            for variant, rate in (("A", 0.8), ("B", 0.75)):
                rows.append({"case_id": f"c{i}", "category": "x", "variant": variant, "model": "fake:m",
                             "repeat": repeat, "passed": bool(rng.random() < rate), "output": "x"})
    frame = build_frame(rows, "r")
    result = noninferiority(pl.Results(frame), margin=0.1)
    per_case = frame.assign(v=frame["passed"].astype(float)).pivot_table(index="case_id", columns="variant",
                                                                        values="v", aggfunc="mean")
    ref = st.ttest_rel(per_case["B"], per_case["A"]).confidence_interval(0.90)  # the reference
    row = result.df.iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert (row["n"], row["cases"]) == (90, 30)
    assert row["method"] == "paired t over per-case means; 90% t interval"


def test_guardrails_report_tokens_and_cost_saved():
    row = noninferiority(_results(_table_rows(40, 3, 2, 5))).df.iloc[0]
    assert (row["baseline_input_tokens"], row["variant_input_tokens"]) == (100, 60)
    assert row["input_tokens_saved_pct"] == pytest.approx(40.0)
    assert row["cost_saved_pct"] == pytest.approx(40.0)


def test_failed_calls_are_dropped_pairs():
    rows = _table_rows(20, 0, 0, 0)
    rows[1]["passed"], rows[1]["output"] = None, None  # B on case 0 failed: no verdict
    row = noninferiority(_results(rows), margin=0.2).df.iloc[0]
    assert (row["n"], row["n_dropped"]) == (19, 1)


def test_arms_on_different_models_are_pooled_by_case():
    rows = [r for r in _table_rows(30, 1, 1, 0) if r["variant"] == "A"]
    rows += [{**r, "model": "fake:other"} for r in _table_rows(30, 1, 1, 0) if r["variant"] == "B"]
    result = noninferiority(_results(rows), margin=0.1)
    assert result.df["model"].tolist() == ["fake:m + fake:other"] and result.df["n"].iloc[0] == 32


def test_output_states_the_margin_everywhere():
    result = noninferiority(_results(_table_rows(180, 4, 2, 14)), margin=0.05)
    assert result.noninferior
    assert "margin 5.0 points" in repr(result) and "non-inferior (lower bound -0.035)" in repr(result)
    assert "margin 5.0 points, one-sided α = 0.05" in result.summary_text()
    assert result.df["note"].iloc[0] == ("'B' is non-inferior to 'A' (diff -1.0 points): the 90% lower bound "
                                         "-3.5 points > −5.0 points (margin), one-sided α = 0.05")
    html = result._repr_html_()
    assert "margin 5.0 points" in html and "above −5.0 points" in html


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"variant": "C"}, r"variant 'C' is not a variant in these results; the variants are \['A', 'B'\]"),
    ({"margin": 0}, r"margin=0 must be > 0"),
    ({"margin": 2}, r"margin=2 must be > 0 \(and < 1 for pass rates\)"),
    ({"alpha": 0.5}, r"alpha=0.5 is the one-sided level"),
    ({"metric": "latency"}, r"metric='latency' is not 'passed' or 'score'"),
])
def test_bad_arguments_say_what_and_how_to_fix(kwargs, message):
    with pytest.raises(StatsError, match=message):
        noninferiority(_results(_table_rows(5, 0, 0, 0)), **kwargs)


def test_not_results_is_refused():
    with pytest.raises(StatsError, match="needs a promptlab Results"):
        noninferiority([1, 2, 3])


def test_end_to_end_compressed_variant_on_a_fake_model():
    prompt = pl.Prompt(name="s", version="1.0.0", model="fake:m",
                       system="Please note that you classify the text. It is very important to answer in one word.")
    suite = pl.Suite("mini")
    for i in range(40):
        suite.add_case(f"text {i}", "positive" if i % 2 else "negative")
    fake = pl.FakeProvider(lambda request: "positive" if int(request.messages[-1].content.split()[1]) % 2
                           else "negative")
    compressed = compress(prompt)
    results = pl.run(suite, compressed.variants, fake, progress=False, cache=False)
    result = noninferiority(results, margin=0.1)
    row = result.df.iloc[0]
    assert row["diff"] == 0 and row["verdict"] == "non-inferior"
    assert row["input_tokens_saved_pct"] > 0  # the fake provider's word counts
    assert isinstance(result.df, pd.DataFrame)


def test_graded_scores_use_the_paired_t_interval():
    a = [0.9, 0.8, 0.7, 1.0, 0.6, 0.9, 0.8, 0.75, 0.95, 0.85]
    b = [0.85, 0.8, 0.72, 0.9, 0.62, 0.88, 0.79, 0.7, 0.97, 0.8]
    rows = [{"case_id": f"c{i}", "category": "x", "variant": v, "model": "fake:m", "repeat": 0, "score": s,
             "output": "x"} for i, pair in enumerate(zip(a, b, strict=True)) for v, s in zip("AB", pair, strict=True)]
    result = noninferiority(_results(rows), margin=0.05, metric="score")
    ref = st.ttest_rel(b, a).confidence_interval(0.90)  # scipy reference: paired t, 90% interval
    row = result.df.iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert row["verdict"] == "non-inferior" and "margin 0.05" in repr(result)
