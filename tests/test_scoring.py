from __future__ import annotations

import pytest

import promptlab as pl
from promptlab.evaluation._scoring import ascore_one, normalize, score_one

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


# ---- labels that are phrases (issue 12, item 1) -------------------------------------------------------------
INTENTS = ("Billing Inquiries", "Claims Assistance", "Policy Changes", "New Policy Quotes", "Cancellation Requests",
           "Technical Support", "Account Access", "Payment Issues", "Coverage Questions", "General Feedback")


def intent_case(expected: str) -> pl.Case:
    return pl.Case(id="t", input="ticket", expected=expected)


@pytest.mark.parametrize("output, expected, reason", [
    ("Billing Inquiries", "Billing Inquiries", "read label 'Billing Inquiries'"),
    ("billing inquiries.", "Billing Inquiries", "read label 'Billing Inquiries'"),
    ("Billing-Inquiries", "Billing Inquiries", "read label"),
    ("BILLING_INQUIRIES", "Billing Inquiries", "read label"),
    ("BillingInquiries", "Billing Inquiries", "read label"),
    ("**Billing Inquiries**", "Billing Inquiries", "read label"),
    ("Billing Inquiries: the customer asks why they were charged twice.", "Billing Inquiries", "read label"),
    ("Category: Claims Assistance", "Claims Assistance", "read label 'Claims Assistance'"),
    ("The intent is Technical Support.", "Technical Support", "read label 'Technical Support'"),
    ("Account/Access", "Account Access", "read label 'Account Access'"),
    ("Payment Issues\n\nThe card was declined at checkout.", "Payment Issues", "read label"),
    ("New policy quotes", "New Policy Quotes", "read label 'New Policy Quotes'"),
    ("Answer: coverage questions?", "Coverage Questions", "read label"),
    ("General feedback - the customer praises the agent.", "General Feedback", "read label"),
    ("'Cancellation Requests'", "Cancellation Requests", "read label"),
    # a leading label whose explanation names another: the leading one is the answer, and the reason says so
    ("Cancellation Requests: they also mention billing inquiries, but the main ask is to cancel.",
     "Cancellation Requests", "it leads the answer; 'Billing Inquiries' read as its explanation"),
    # the expected value may be written in any spelling of the label
    ("Policy Changes", "policy-changes", "read label 'Policy Changes'"),
])
def test_multi_word_labels_match_in_messy_answers(output, expected, reason):
    score = pl.ExactMatch(INTENTS)(intent_case(expected), output)
    assert score.passed is True, score.reason
    assert reason in score.reason


@pytest.mark.parametrize("output, expected, reason", [
    ("Policy Changes", "New Policy Quotes", "expected 'New Policy Quotes', got 'Policy Changes'"),
    ("Billing Inquiries or Payment Issues", "Billing Inquiries",
     "answer names 2 different labels: 'Billing Inquiries', 'Payment Issues'"),
    ("Billing Inquiries, Payment Issues", "Payment Issues", "'Billing Inquiries', 'Payment Issues'"),
    ("Billing Inquiries. Payment Issues.", "Billing Inquiries", "names 2 different labels"),
    ("It's either Technical Support or Account Access.", "Account Access",
     "'Technical Support', 'Account Access'"),
    ("I think this is about coverage", "Coverage Questions", "no label in answer"),
    ("Refund please", "Payment Issues", "no label in answer 'Refund please'"),
])
def test_multi_word_labels_fail_with_a_reason(output, expected, reason):
    score = pl.ExactMatch(INTENTS)(intent_case(expected), output)
    assert score.passed is False and score.value == 0.0
    assert reason in score.reason, score.reason


def test_the_longest_label_wins_at_a_position_on_word_boundaries():
    labels = ("Claims", "Claims Assistance", "Assistance")
    scorer = pl.ExactMatch(labels)
    assert scorer(intent_case("Claims Assistance"), "Claims Assistance.").reason == "read label 'Claims Assistance'"
    assert scorer(intent_case("Claims Assistance"), "claims-assistance").passed
    wrong = scorer(intent_case("Claims Assistance"), "Claims")
    assert not wrong.passed and "got 'Claims'" in wrong.reason
    # inside another word is no mention ("Reclaims" is not "Claims")
    assert "no label" in scorer(intent_case("Claims"), "Reclaims pending").reason


def test_an_expected_value_outside_the_labels_fails_with_a_reason():
    score = pl.ExactMatch(INTENTS)(intent_case("Refunds"), "Billing Inquiries")
    assert not score.passed and "expected 'Refunds' is not one of the labels" in score.reason


def test_labels_that_read_the_same_are_refused():
    with pytest.raises(ValueError, match="labels 'Billing Inquiries' and 'billing-inquiries' read the same"):
        pl.ExactMatch(("Billing Inquiries", "billing-inquiries"))
    with pytest.raises(ValueError, match="has no letters or digits"):
        pl.ExactMatch(("ok", "???"))


def test_single_word_labels_still_read_as_before():
    labels = ("positive", "negative", "neutral", "mixed")
    assert pl.ExactMatch(labels)(CASE, "Positive. The text praises it").reason == "read label 'positive'"
    mixed = pl.ExactMatch(labels)(pl.Case(id="m", input="x", expected="mixed"),
                                  "Mixed: positive about the screen, negative about the battery")
    assert mixed.passed and "'positive', 'negative' read as its explanation" in mixed.reason
    assert pl.ExactMatch(labels).extract("NEGATIVE!") == "negative"


def test_every_builtin_explains_a_pass():
    case = pl.Case(id="c", input="x", expected="refund")
    assert pl.ExactMatch()(case, "Refund.").reason == "answer equals the expected 'refund'"
    assert pl.Contains()(case, "a refund request").reason == "'refund' found in the answer"
    assert pl.AnyOf()(case, "refund now").reason == "'refund' found in the answer"
    assert pl.Regex(r"ref\w+")(case, "a refund").reason == "/ref\\w+/ matched 'refund'"
    assert pl.JsonValid()(case, "{}").reason == "valid JSON"
    assert "within tolerance" in pl.Numeric()(pl.Case(id="n", input="", expected=2), "2").reason


def test_exact_match_without_labels_ignores_separators():
    case = pl.Case(id="c", input="x", expected="technical_issue")
    assert pl.ExactMatch()(case, "Technical issue").passed
    assert pl.ExactMatch()(pl.Case(id="e", input="x", expected="email"), "E-mail").passed


def test_a_case_without_expected_is_a_scoring_error_for_scorers_that_need_it():
    case = pl.Case(id="open", input="x")
    score, error = score_one(pl.ExactMatch(), case, "positive")
    assert score.value is None and "case 'open' has no `expected` value" in error
    assert score_one(pl.JsonValid(), case, "[1]")[0].passed
    assert pl.JsonValid().needs_expected is False and pl.Regex("x").needs_expected is False
    assert pl.ExactMatch().needs_expected and pl.Regex().needs_expected


def test_builtin_names_say_whether_they_need_expected():
    from promptlab.authoring._labels import builtin_needs_expected

    assert builtin_needs_expected("json") is False
    assert all(builtin_needs_expected(name) for name in ("exact", "contains", "any_of", "regex", "numeric"))
    with pytest.raises(ValueError, match="Did you mean 'json'"):
        builtin_needs_expected("jsn")


def test_yaml_and_jsonl_suites_with_the_same_labels_score_the_same(tmp_path):
    from promptlab.evaluation._scoring import default_scorer

    suite = pl.Suite("intents", labels=INTENTS)
    suite.add_case("Why was I charged twice?", "Billing Inquiries")
    suite.add_case("My car was hit, what now?", "Claims Assistance")
    answers = {"happy_path-001": "billing inquiries.", "happy_path-002": "Claims/Assistance: file a claim"}
    verdicts = []
    for suffix in (".yaml", ".jsonl"):
        loaded = pl.load_suite(suite.save(tmp_path / f"intents{suffix}"))
        scorer = default_scorer(loaded.labels)
        verdicts.append([scorer(case, answers[case.id]).passed for case in loaded])
    assert verdicts == [[True, True], [True, True]]


def test_the_suite_formats_scorer_names_are_exactly_the_built_in_scorers():
    """A suite file may name a built-in scorer; the format (authoring) and the scorers (evaluation) agree."""
    from promptlab.authoring._labels import BUILTIN_SCORER_NAMES
    from promptlab.evaluation._scoring import BUILTIN_SCORERS

    assert set(BUILTIN_SCORER_NAMES) == set(BUILTIN_SCORERS)
    for name, needs in BUILTIN_SCORER_NAMES.items():
        assert getattr(BUILTIN_SCORERS[name](), "needs_expected", True) is needs, name
