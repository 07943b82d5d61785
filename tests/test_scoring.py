from __future__ import annotations

import pytest

import promptlab as pl
from promptlab.scoring import ascore_one, normalize, score_one

CASE = pl.Case(id="c", input="x", expected="positive")


def test_normalize():
    assert normalize("  Positive!! \n") == "positive"
    assert normalize("NOT   bad.") == "not bad"


@pytest.mark.parametrize("output, passed", [
    ("positive", True), (" Positive. ", True), ("negative", False), ("positive and negative", False)])
def test_exact_match_without_labels(output, passed):
    assert pl.ExactMatch()(CASE, output).passed is passed


@pytest.mark.parametrize("output, passed, reason", [
    ("Positive. The text praises it", True, ""),
    ("I think: negative", False, "expected 'positive', got 'negative'"),
    ("no idea", False, "no label in answer"),
])
def test_exact_match_reads_the_first_label(output, passed, reason):
    score = pl.ExactMatch(("positive", "negative", "neutral", "mixed"))(CASE, output)
    assert score.passed is passed and reason in score.reason


def test_contains_any_of_regex():
    case = pl.Case(id="c", input="x", expected=["refund", "money back"])
    assert pl.AnyOf()(case, "I want my money back!").passed
    assert not pl.AnyOf()(case, "cancel please").passed
    assert pl.Contains()(CASE, "Sentiment: POSITIVE").passed
    assert pl.Regex(r"^\d{3}-\d{4}$")(CASE, "555-1234").passed
    assert not pl.Regex(r"^\d{3}$")(CASE, "55").passed


def test_json_and_schema_are_format_compliance():
    schema = {"type": "object", "properties": {"intent": {"type": "string"}}, "required": ["intent"]}
    assert pl.JsonValid()(CASE, '```json\n{"intent": "refund"}\n```').passed
    bad = pl.JsonValid()(CASE, "{intent: refund}")
    assert not bad.passed and "not valid JSON" in bad.reason
    assert pl.JsonSchema(schema)(CASE, '{"intent": "refund"}').passed
    wrong = pl.JsonSchema(schema)(CASE, '{"intent": 3}')
    assert not wrong.passed and "schema violation at ['intent']" in wrong.reason
    assert pl.JsonValid(compare_expected=True)(pl.Case(id="j", input="", expected={"a": 1}), '{"a": 1}').passed


def test_numeric_tolerance():
    case = pl.Case(id="n", input="", expected=3.14)
    assert pl.Numeric(abs_tol=0.01)(case, "The answer is 3.141").passed
    assert not pl.Numeric(abs_tol=0.001)(case, "about 3.2").passed
    assert "no number" in pl.Numeric()(case, "pi").reason


def test_callables_may_return_bools_numbers_or_scores():
    assert score_one(lambda c, o: True, CASE, "x")[0] == pl.Score(1.0, True)
    assert score_one(lambda c, o: 0.25, CASE, "x")[0] == pl.Score(0.25, None)
    assert score_one(lambda c, o: pl.Score(0.5, False, "half"), CASE, "x")[0].reason == "half"


def test_a_raising_scorer_is_a_recorded_error():
    score, error = score_one(lambda c, o: 1 / 0, CASE, "x")
    assert score.value is None and error.startswith("ZeroDivisionError")
    score, error = score_one(lambda c, o: "yes", CASE, "x")
    assert "must return Score, bool or a number" in error


def test_a_case_may_name_its_own_scorer():
    case = pl.Case(id="c", input="x", expected="refund", scorer="contains")
    assert score_one(pl.ExactMatch(), case, "this is a refund request")[0].passed
    bad = pl.Case(id="c", input="x", expected="refund", scorer="telepathy")
    assert "names scorer 'telepathy'" in score_one(pl.ExactMatch(), bad, "x")[1]


def test_async_path_falls_back_to_sync_scorers():
    import asyncio

    score, error = asyncio.run(ascore_one(pl.ExactMatch(), CASE, "positive"))
    assert score.passed and error is None
