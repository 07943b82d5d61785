"""Scorer specs (issue 14, item 2): the one grammar of scorers in files — names, {type, value, negate}, python
functions, a judge, lists — checked with lines in suite files and built into scorers."""

from __future__ import annotations

import asyncio
import json

import pytest

import promptlab as pl
from promptlab.authoring._labels import scorer_spec_problems, spec_needs_expected
from promptlab.errors import ArgumentError, SuiteFileError, UnknownNameError
from promptlab.evaluation import build_scorer
from promptlab.evaluation._scorer_specs import AllOf, Not, PythonScorer
from promptlab.evaluation._scoring import ascore_one, score_one


def case(expected=None, **fields):
    return pl.Case(id="c", input="x", expected=expected, **fields)


def verdict(spec, output, expected=None, **kwargs):
    return build_scorer(spec, **kwargs)(case(expected), output)


# ---- the new built-ins -------------------------------------------------------------------------------------------
def test_icontains_ignores_case_only_and_contains_ignores_punctuation_too():
    assert verdict("icontains", "Your REFUND is on its way", "refund").passed
    assert not verdict("icontains", "Your re-fund is on its way", "refund").passed
    assert verdict("contains", "Your Refund! is on its way", "refund!").passed


def test_starts_with_is_case_sensitive_after_leading_whitespace():
    assert verdict("starts_with", "  Label: billing", "Label:").passed
    score = verdict("starts_with", "label: billing", "Label:")
    assert not score.passed and "does not start with 'Label:'" in score.reason


def test_contains_json_finds_json_in_prose_and_checks_a_schema():
    assert verdict("contains_json", 'Sure! {"label": "billing"} hope that helps').passed
    assert not verdict("contains_json", "no json here").passed
    schema = {"type": "object", "required": ["label"]}
    assert verdict({"type": "contains_json", "value": schema}, 'ok: {"label": 1}').passed
    bad = verdict({"type": "contains_json", "value": schema}, 'ok: {"other": 1}')
    assert not bad.passed and "'label' is a required property" in bad.reason
    assert verdict({"type": "json", "value": schema}, '{"label": "x"}').passed
    assert not verdict({"type": "json", "value": schema}, 'text {"label": "x"}').passed  # json: the whole answer


# ---- value, negate, lists ----------------------------------------------------------------------------------------
def test_a_value_replaces_expected():
    assert verdict({"type": "contains", "value": "refund"}, "a refund", expected="nothing like it").passed
    assert verdict({"type": "regex", "value": r"^\d{3}$"}, "123").passed
    assert verdict({"type": "numeric", "value": "3.5"}, "about 3.5 units").passed
    assert verdict({"type": "any_of", "value": ["yes", "yep"]}, "Yep!").passed
    assert build_scorer({"type": "contains", "value": "x"}).needs_expected is False


def test_negate_turns_the_verdict_and_the_score_over():
    score = verdict({"type": "contains", "value": "sorry", "negate": True}, "We are sorry")
    assert score.passed is False and score.value == 0.0 and score.reason.startswith("negated:")
    assert verdict({"type": "icontains", "value": "sorry", "negate": True}, "All good").passed


def test_a_list_must_all_pass_scores_the_mean_and_names_the_failing_ones():
    spec = ["icontains", {"type": "regex", "value": r"\d+"}, {"type": "starts_with", "value": "Total"}]
    scorer = build_scorer(spec)
    assert isinstance(scorer, AllOf)
    passing = scorer(case("total"), "Total: 42")
    assert passing.passed and passing.value == 1.0 and passing.reason == "all 3 passed"
    failing = scorer(case("total"), "total is 42")
    assert failing.passed is False and failing.value == pytest.approx(2 / 3)
    assert failing.reason.startswith("failed: starts_with 'Total' (the answer does not start with 'Total'")
    assert "icontains" not in failing.reason  # only the failing ones are named


def test_exact_reads_labels_when_given_them():
    labels = ("Billing Inquiries", "Claims Assistance")
    answer = "Billing Inquiries: you were charged twice"
    assert verdict("exact", answer, "Billing Inquiries", labels=labels).passed
    assert not verdict("exact", answer, "Billing Inquiries").passed


# ---- python ------------------------------------------------------------------------------------------------------
CHECKS = '''
def polite(output, case):
    return "please" in output.lower()

def length_score(output, case):
    return min(1.0, len(output) / 10)

def graded(output, case):
    return {"pass": output == case.expected, "score": 0.25, "reason": "graded by hand"}

def bad(output, case):
    return "yes"

def boom(output, case):
    raise RuntimeError("scorer bug")
'''


@pytest.fixture
def checks(tmp_path):
    folder = tmp_path / "evals"
    folder.mkdir()
    (folder / "checks.py").write_text(CHECKS)
    return folder


def test_python_scorers_take_output_then_case(checks):
    polite = build_scorer({"type": "python", "value": "checks:polite"}, base_dir=checks)
    assert isinstance(polite, PythonScorer) and polite(case(), "Please wait").passed
    assert polite(case(), "wait").passed is False
    number = build_scorer({"type": "python", "value": "checks:length_score", "threshold": 0.8}, base_dir=checks)
    assert number(case(), "12345").value == 0.5 and number(case(), "12345").passed is False
    assert number(case(), "1234567890").passed
    graded = build_scorer({"type": "python", "value": "checks:graded"}, base_dir=checks)(case("a"), "a")
    assert (graded.value, graded.passed, graded.reason) == (0.25, True, "graded by hand")


def test_a_python_scorer_that_raises_or_returns_junk_is_a_recorded_error(checks):
    for name, message in (("bad", "returned str 'yes'"), ("boom", "RuntimeError: scorer bug")):
        scorer = build_scorer({"type": "python", "value": f"checks:{name}"}, base_dir=checks)
        score, error = score_one(scorer, case(), "x")
        assert score.value is None and message in error


def test_python_references_that_cannot_load_say_why(checks):
    with pytest.raises(ArgumentError, match=r"'checks' has no 'polit' .*Did you mean 'polite'\?"):
        build_scorer({"type": "python", "value": "checks:polit"}, base_dir=checks)
    with pytest.raises(ArgumentError, match="cannot import module 'nochecks'.*ModuleNotFoundError"):
        build_scorer({"type": "python", "value": "nochecks:f"}, base_dir=checks)
    (checks / "broken.py").write_text("import this_does_not_exist_either\n")
    with pytest.raises(ArgumentError, match="cannot import module 'broken'"):
        build_scorer({"type": "python", "value": "broken:f"}, base_dir=checks)


def test_an_edited_python_module_is_imported_afresh(checks):
    first = build_scorer({"type": "python", "value": "checks:polite"}, base_dir=checks)
    (checks / "checks.py").write_text(CHECKS.replace('"please"', '"kindly"') + "\n# edited\n")
    again = build_scorer({"type": "python", "value": "checks:polite"}, base_dir=checks)
    assert first(case(), "please").passed and not again(case(), "please").passed and again(case(), "kindly").passed


# ---- judge -------------------------------------------------------------------------------------------------------
def test_a_judge_spec_scores_against_its_rubric(monkeypatch):
    from promptlab.evaluation import _judge

    seen = []

    def fake_judge(request):
        seen.append(request.messages[-1].content)
        return json.dumps({"rubric": {"score": 4, "reason": "clear"}})

    monkeypatch.setattr(_judge, "make_provider", lambda model_id: pl.FakeProvider(fake_judge))
    spec = {"type": "judge", "value": "Answers politely", "model": "openai:gpt-4o-mini", "threshold": 0.8}
    scorer = build_scorer(spec)
    score = asyncio.run(scorer.ascore(case(), "Hello there"))
    assert "- rubric: Answers politely" in seen[0] and "Hello there" in seen[0]
    assert score.value == 0.75 and score.passed is False  # 4 on 1..5 is 0.75 < 0.8
    lenient = build_scorer({**spec, "threshold": 0.5, "negate": True}, )
    assert isinstance(lenient, Not)
    score, error = asyncio.run(ascore_one(lenient, case(), "Hello there"))
    assert error is None and score.passed is False and score.value == 0.25


# ---- the grammar: every problem, in words ------------------------------------------------------------------------
@pytest.mark.parametrize("spec, fragment", [
    ("contians", "no built-in scorer is named 'contians'. Did you mean 'contains'?"),
    ("python", "scorer 'python' needs a value: write {type: python, value:"),
    ({"type": "contains", "valeu": "x"}, "unknown key 'valeu' in a scorer. Did you mean 'value'?"),
    ({"value": "x"}, "a scorer mapping needs `type:`"),
    ({"type": "regex", "value": "(unclosed"}, "is not a valid regular expression"),
    ({"type": "json", "value": {"type": "objekt"}}, "is not a valid JSON Schema"),
    ({"type": "numeric", "value": "many"}, "`value` of a numeric scorer must be a number"),
    ({"type": "python", "value": "checks.polite"}, "must be 'module:function'"),
    ({"type": "judge", "value": "Be kind"}, "a judge needs `model:`"),
    ({"type": "contains", "value": "x", "negate": "yes"}, "`negate` must be true or false"),
    ({"type": "contains", "value": "x", "threshold": 0.5}, "`threshold` applies to python and judge scorers"),
    ({"type": "python", "value": "m:f", "threshold": 2}, "`threshold` must be a number within [0, 1]"),
    ([], "an empty list of scorers scores nothing"),
    (["exact", ["contains"]], "item 1: a list inside a list of scorers"),
    (5, "got int 5. A scorer is a built-in name"),
])
def test_every_problem_of_a_spec_is_named(spec, fragment):
    problems = scorer_spec_problems(spec)
    assert any(fragment in problem for problem in problems), problems
    with pytest.raises(ArgumentError):
        build_scorer(spec)


def test_an_unknown_name_is_an_unknown_name_error():
    with pytest.raises(UnknownNameError, match="Did you mean 'icontains'"):
        build_scorer("icontain")


def test_which_specs_need_expected():
    assert spec_needs_expected("contains") and not spec_needs_expected("json")
    assert not spec_needs_expected({"type": "contains", "value": "x"})
    assert spec_needs_expected(["json", "exact"]) and not spec_needs_expected([{"type": "python", "value": "m:f"}])


# ---- in suite files: checked with lines, scored per case ---------------------------------------------------------
SUITE = """name: specs
cases:
  - id: a
    input: hi
    scorer: {type: icontains, value: hello}
  - id: b
    input: hi
    expected: HELLO
    scorer: [icontains, {type: contains, value: sorry, negate: true}]
  - id: c
    input: hi
    scorer: {type: python, value: "checks:polite"}
"""


def test_a_suite_file_takes_specs_and_a_run_scores_each_case_by_its_own(tmp_path, checks, monkeypatch):
    path = tmp_path / "specs.yaml"
    path.write_text(SUITE)
    suite = pl.load_suite(path)
    assert suite["a"].expected is None and suite["b"].scorer[1] == {"type": "contains", "value": "sorry",
                                                                      "negate": True}
    monkeypatch.chdir(checks)  # case python references load from the working directory in a plain run
    answers = {"hi": "Hello, please hold. Sorry!"}
    results = pl.run(suite, pl.Prompt(name="p", version="1", model="fake:x"), pl.FakeProvider(answers),
                     progress=False, cache=False)
    verdicts = dict(zip(results.df["case_id"], results.df["passed"], strict=True))
    assert verdicts == {"a": True, "b": False, "c": True}
    reason = results.df.set_index("case_id").loc["b", "reason"]
    assert reason.startswith("failed: not contains 'sorry' (negated: 'sorry' found in the answer)")


def test_bad_specs_in_a_suite_file_are_listed_with_their_lines(tmp_path):
    text = ("name: bad\ncases:\n  - id: a\n    input: hi\n    expected: x\n    scorer: {type: contains, valeu: x}\n"
            "  - id: b\n    input: hi\n    expected: x\n    scorer: contians\n"
            "  - id: c\n    input: hi\n    expected: x\n    scorer: 7\n")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SuiteFileError) as info:
        pl.load_suite(path)
    message = str(info.value)
    assert "bad.yaml:6: case 'a': scorer: unknown key 'valeu' in a scorer. Did you mean 'value'?" in message
    assert "bad.yaml:10: case 'b': scorer: no built-in scorer is named 'contians'. Did you mean 'contains'?" in message
    assert "bad.yaml:14: case 'c': scorer: a scorer is a built-in name" in message and "got 7" in message


def test_a_case_spec_without_value_still_needs_expected(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ncases:\n  - id: a\n    input: hi\n    scorer: [json, starts_with]\n")
    with pytest.raises(SuiteFileError, match="case 'a' has no `expected`"):
        pl.load_suite(path)
