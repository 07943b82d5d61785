"""`promptlab eval`'s CI outputs: --json (validated against the shipped JSON Schema), --junit (validated against
the Jenkins/pytest junit-10.xsd), the Markdown appended to $GITHUB_STEP_SUMMARY, and the gates behind the exit
code: --min-accuracy, --baseline FILE (paired by case with a saved run), and a run stopped by failed calls.

Answers are scripted with FakeProvider (passed to `cmd_eval` as the provider serving the prompts' openai: ids),
so every count below is known in advance; the statistics are pinned to statsmodels and scipy."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import xmlschema
from scipy import stats as st
from statsmodels.stats.proportion import proportion_confint

from promptlab.cli import build_parser, cmd_eval, main
from promptlab.cli._output import SCHEMA_PATH
from promptlab.errors import ProviderError
from promptlab.providers import FakeProvider

CASES = 40
XSD = Path(__file__).parent / "fixtures" / "junit" / "junit-10.xsd"
SUITE = "name: cli_output\nlabels: [positive, negative]\ncases:\n" + "".join(
    f"  - id: c{i:02d}\n    input: review {i}\n    expected: {'positive' if i % 2 == 0 else 'negative'}\n"
    + ("    category: edge_case\n" if i % 4 == 0 else "") for i in range(CASES))
PROMPT = ("name: {name}\nversion: 1.0.0\nmodel: openai:m-1\nmax_tokens: 5\nsystem: {system}\n"
          "template: \"{{{{ input }}}}\"\n")
UGLY = "neg\x00ative\x1b[31m <script>alert(1)</script> ]]> ☃ \"quoted\" & done"


def number(request) -> int:
    return int(request.messages[-1].content.split()[-1])


def label(i: int, right: bool = True) -> str:
    return ("positive" if i % 2 == 0 else "negative") if right else ("negative" if i % 2 == 0 else "positive")


def script(wrong=(), failed=(), ugly=(), wrong_b=()):
    """Answers by case number: right unless listed; B (its system text says so) is wrong on ``wrong_b`` too."""
    def answer(request):
        i = number(request)
        if i in failed:
            return ProviderError(f"server exploded on case {i}", error_type="server")
        if i in ugly:
            return UGLY
        return label(i, i not in wrong and not (request.system == "Classify B." and i in wrong_b))
    return answer


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "a.yaml").write_text(PROMPT.format(name="a", system="Classify."))
    (tmp_path / "b.yaml").write_text(PROMPT.format(name="b", system="Classify B."))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return tmp_path


def evaluate(answer, *flags: str, prompts=("A=a.yaml",)) -> int:
    argv = ["eval", "--suite", "suite.yaml", "--quiet", "--no-cache", *flags]
    for prompt in prompts:
        argv += ["--prompt", prompt]
    return cmd_eval(build_parser().parse_args(argv), providers={"openai": FakeProvider(answer)})


def validate(path: Path) -> dict:
    document = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(document)
    return document


def mid_p(b: int, c: int) -> float:
    """McNemar's mid-p: the exact two-sided binomial p minus the probability of the observed count."""
    k, n = min(b, c), b + c
    return st.binomtest(k, n, 0.5).pvalue - st.binom.pmf(k, n, 0.5)  # scipy.stats.binomtest / binom.pmf


# ---- --json ------------------------------------------------------------------------------------------------------
def test_json_holds_every_number_with_failed_calls_counted_and_unknown_cost_null(project):
    answer = script(failed={0, 1}, wrong_b=set(range(2, 12)))
    code = evaluate(answer, "--json", "out.json", "--min-accuracy", "0.9", prompts=("A=a.yaml", "B=b.yaml"))
    assert code == 1  # B's 75% is under --min-accuracy 0.9
    doc = validate(project / "out.json")
    assert (doc["schema_version"], doc["exit_code"], doc["passed"]) == (1, 1, False)
    rows = {row["variant"]: row for row in doc["summary"]["rows"]}
    for variant, passed in (("A", 38), ("B", 28)):
        row = rows[variant]
        assert (row["n"], row["scored"], row["errors"], row["passed"]) == (40, 38, 2, passed)
        assert row["accuracy"] == passed / 40 and row["accuracy_scored"] == passed / 38
        # proportion_confint(passed, 40, alpha=0.05, method="wilson")
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(proportion_confint(passed, 40, 0.05, "wilson"))
        assert row["error_types"] == {"server": 2}
        assert row["cost_usd"] is None and row["cost_per_1k_calls_usd"] is None  # unpriced: unknown, not 0
        assert row["answered"] == 38 and row["se_cases"] is None
    edge = {row["variant"]: row for row in doc["summary"]["by_category"] if row["category"] == "edge_case"}
    # cases 0, 4, ... 36 are edge cases: A misses c00 (no answer), B also misses c04 and c08 (wrong)
    assert (edge["A"]["n"], edge["A"]["passed"], edge["A"]["errors"]) == (10, 9, 1)
    assert (edge["B"]["n"], edge["B"]["passed"], edge["B"]["errors"]) == (10, 7, 1)
    # proportion_confint(7, 10, alpha=0.05, method="wilson")
    assert (edge["B"]["ci_low"], edge["B"]["ci_high"]) == pytest.approx(proportion_confint(7, 10, 0.05, "wilson"))
    assert doc["totals"] == {"calls": 80, "scored": 76, "passed": 66, "failed": 10, "errors": 4,
                             "error_types": {"server": 4}, "cached": 0, "cost_usd": None}

    (b_row,) = doc["comparison"]["rows"]
    assert (b_row["variant"], b_row["baseline"], b_row["verdict"]) == ("B", "A", "worse")
    assert (b_row["n"], b_row["n_dropped"], b_row["b"], b_row["c"]) == (38, 2, 10, 0)  # cases 0, 1: no verdict
    assert b_row["diff"] == pytest.approx(-10 / 38)
    assert b_row["p_exact"] == pytest.approx(st.binomtest(0, 10, 0.5).pvalue)  # scipy.stats.binomtest(0, 10)
    assert b_row["p_value"] == pytest.approx(mid_p(10, 0)) and b_row["p_adj"] == pytest.approx(mid_p(10, 0))
    assert doc["comparison"]["baseline"] == "A" and doc["baseline"] is None

    (gate,) = doc["gates"]
    assert (gate["name"], gate["passed"], gate["threshold"]) == ("min_accuracy", False, 0.9)
    assert len(gate["failures"]) == 1 and gate["failures"][0].startswith("B on openai:m-1: accuracy 0.700")
    (run,) = doc["runs"]
    assert {key: run["suite"][key] for key in ("name", "labels", "sha256_of", "cases")} == {
        "name": "cli_output", "labels": ["positive", "negative"], "sha256_of": "file", "cases": 40}
    assert run["cache"]["enabled"] is False and run["repeats"] == 1


def test_the_schema_refuses_what_it_should(project):
    assert evaluate(script(), "--json", "out.json") == 0
    doc = validate(project / "out.json")
    assert doc["comparison"] is None and doc["gates"] == [] and doc["exit_code"] == 0
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    broken = []
    for path, value in ((("summary", "rows", 0, "accuracy"), "95%"), (("schema_version",), 2),
                        (("totals", "errors"), -1), (("summary", "rows", 0, "surprise"), 1)):
        bad = copy.deepcopy(doc)
        target = bad
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        broken.append(not validator.is_valid(bad))
    bad = copy.deepcopy(doc)
    del bad["runs"][0]["run_id"]
    broken.append(not validator.is_valid(bad))
    assert broken == [True] * 5


# ---- --junit -----------------------------------------------------------------------------------------------------
def test_junit_validates_against_the_xsd_with_failures_and_errors_apart(project):
    answer = script(failed={0, 1, 2}, wrong={5}, ugly={7})
    assert evaluate(answer, "--junit", "reports/junit.xml", prompts=("A=a.yaml", "B=b.yaml")) == 0
    path = project / "reports" / "junit.xml"
    xmlschema.XMLSchema(XSD).validate(path)  # raises XMLSchemaValidationError when the file breaks the schema
    root = ET.parse(path).getroot()
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("errors")) == ("testsuites", "80", "4", "6")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["A @ openai:m-1", "B @ openai:m-1"]
    for suite in suites:
        assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("40", "2", "3")
        cases = {case.get("name"): case for case in suite.findall("testcase")}
        assert len(cases) == CASES
        error = cases["c01"].find("error")
        assert error.get("type") == "server" and error.get("message") == "server exploded on case 1"
        assert cases["c01"].get("time") is None  # no answer, no latency: left out, not 0
        failure = cases["c05"].find("failure")
        assert failure is not None and failure.get("message")  # the scorer's reason
        assert "expected: negative" in failure.text and "actual: positive" in failure.text
        ugly = cases["c07"].find("failure").text
        assert "<script>alert(1)</script> ]]> ☃" in ugly and "\x00" not in ugly and "\ufffd" in ugly
        assert list(cases["c04"]) == []  # passed: nothing inside
        props = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert props["accuracy"] == str(35 / 40) and props["errors"] == "3"


def test_the_xsd_rejects_a_broken_report(project):
    """The validation can fail: a testsuite without its required `tests` count is refused."""
    assert evaluate(script(failed={0}), "--junit", "junit.xml") == 0
    tree = ET.parse(project / "junit.xml")
    del tree.getroot().find("testsuite").attrib["tests"]
    tree.write(project / "broken.xml", encoding="UTF-8", xml_declaration=True)
    schema = xmlschema.XMLSchema(XSD)
    assert schema.is_valid(project / "junit.xml") and not schema.is_valid(project / "broken.xml")


def test_junit_names_repeats(project):
    assert evaluate(script(), "--junit", "junit.xml", "--repeats", "2", "--sample", "3") == 0
    xmlschema.XMLSchema(XSD).validate(project / "junit.xml")
    names = [case.get("name") for case in ET.parse(project / "junit.xml").getroot().iter("testcase")]
    assert len(names) == 6 == len(set(names)) and all(" [repeat " in name for name in names)


# ---- $GITHUB_STEP_SUMMARY ----------------------------------------------------------------------------------------
def test_markdown_is_appended_to_the_github_step_summary(project, monkeypatch):
    summary = project / "step_summary.md"
    summary.write_text("## an earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    answer = script(failed={0, 1}, wrong_b=set(range(2, 12)))
    assert evaluate(answer, "--min-accuracy", "0.9", prompts=("A=a.yaml", "B|x=b.yaml")) == 1
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("## an earlier step\n### promptlab — cli_output")
    assert "**❌ a gate failed** (exit 1)" in text and "- ❌ min_accuracy: B\\|x on openai:m-1" in text
    low, high = proportion_confint(38, 40, 0.05, "wilson")  # statsmodels, Wilson
    assert f"| A | openai:m-1 | 95.0% | {100 * low:.1f}% – {100 * high:.1f}% | 38 | 40 | 2 | " in text
    assert "| NA |" in text  # the unpriced cost is NA, not 0
    assert "**4 calls had no usable answer** (server: 4)" in text
    assert f"| B\\|x | A | openai:m-1 | **worse** | {100 * -10 / 38:+.1f} pts |" in text


# ---- --baseline --------------------------------------------------------------------------------------------------
def test_baseline_gate_exits_1_on_a_seeded_regression_and_0_on_a_tie(project):
    assert evaluate(script(), "--save", "base.parquet") == 0

    assert evaluate(script(wrong=set(range(15))), "--baseline", "base.parquet", "--json", "worse.json") == 1
    doc = validate(project / "worse.json")
    (row,) = doc["baseline"]["comparison"]["rows"]
    assert (row["variant"], row["baseline"], row["verdict"]) == ("A", "A (saved)", "worse")
    assert (row["n"], row["b"], row["c"], row["diff"]) == (40, 15, 0, pytest.approx(-15 / 40))
    assert row["p_exact"] == pytest.approx(st.binomtest(0, 15, 0.5).pvalue)  # scipy.stats.binomtest(0, 15)
    assert row["p_value"] == pytest.approx(mid_p(15, 0))
    (gate,) = doc["gates"]
    assert (gate["name"], gate["passed"]) == ("baseline_regression", False)
    assert "is worse than A (saved) in 'base.parquet'" in gate["failures"][0]
    assert doc["baseline"]["file"] == "base.parquet" and len(doc["baseline"]["run_ids"]) == 1

    assert evaluate(script(), "--baseline", "base.parquet", "--json", "tie.json") == 0
    (row,) = validate(project / "tie.json")["baseline"]["comparison"]["rows"]
    assert (row["verdict"], row["b"], row["c"], row["diff"], row["p_value"]) == ("no detectable difference", 0, 0,
                                                                                 0.0, 1.0)

    # two answers worse is noise at n = 40, not a regression: mid-p(2, 0) = 0.25 (scipy, above)
    assert evaluate(script(wrong={3, 8}), "--baseline", "base.parquet", "--json", "noise.json") == 0
    (row,) = validate(project / "noise.json")["baseline"]["comparison"]["rows"]
    assert row["verdict"] == "no detectable difference" and row["p_value"] == pytest.approx(mid_p(2, 0))


def test_a_baseline_of_several_variants_is_matched_by_name(project):
    two = ("A=a.yaml", "B=b.yaml")
    assert evaluate(script(), "--save", "base.parquet", prompts=two) == 0
    assert evaluate(script(wrong_b=set(range(20))), "--baseline", "base.parquet", "--json", "out.json",
                    prompts=two) == 1
    comparison = validate(project / "out.json")["baseline"]["comparison"]
    verdicts = {(r["variant"], r["baseline"]): r["verdict"] for r in comparison["rows"]}
    assert verdicts == {("A", "A (saved)"): "no detectable difference", ("B", "B (saved)"): "worse"}
    assert comparison["alpha"] == 0.025 and "Bonferroni" in comparison["messages"][0]


def test_a_baseline_sharing_no_case_fails_the_gate(project):
    """No pair means no evidence either way: the gate says so instead of passing silently."""
    assert evaluate(script(), "--save", "base.parquet") == 0
    (project / "other.yaml").write_text(SUITE.replace("id: c", "id: other-"))
    argv = ["eval", "--suite", "other.yaml", "--prompt", "a.yaml", "--quiet", "--no-cache", "--baseline",
            "base.parquet", "--json", "none.json"]
    assert cmd_eval(build_parser().parse_args(argv), providers={"openai": FakeProvider(script())}) == 1
    (gate,) = validate(project / "none.json")["gates"]
    assert "no case pairs with A (saved)" in gate["failures"][0]


@pytest.mark.parametrize("content", [None, b"case_id,variant\nc1,A\n"])
def test_an_unreadable_baseline_is_a_usage_error(project, capsys, content, monkeypatch):
    if content is not None:
        (project / "base.parquet").write_bytes(content)
    monkeypatch.setattr("promptlab.cli._eval._run_flags", lambda args, providers: _saved_results(project))
    assert main(["eval", "--suite", "suite.yaml", "--prompt", "a.yaml", "--baseline", "base.parquet"]) == 2
    err = capsys.readouterr().err
    assert "--baseline 'base.parquet'" in err
    assert ("does not exist" if content is None else "is not a results file written by") in err


def _saved_results(project: Path):
    import promptlab as pl

    suite = pl.load_suite(project / "suite.yaml")
    prompt = pl.load_prompt(project / "a.yaml")
    results = pl.run(suite, {"A": prompt}, FakeProvider(script()), progress=False, cache=False)
    return results, suite.name


# ---- a run stopped by failed calls ---------------------------------------------------------------------------------
def test_a_run_past_its_error_limit_still_writes_every_output_and_exits_1(project, monkeypatch):
    summary = project / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    down = script(failed=set(range(CASES)))
    assert evaluate(down, "--json", "out.json", "--junit", "junit.xml") == 1
    doc = validate(project / "out.json")
    (row,) = doc["summary"]["rows"]
    assert (row["n"], row["scored"], row["errors"], row["accuracy"]) == (40, 0, 40, 0.0)
    assert row["accuracy_scored"] is None and row["p50_s"] is None  # unknown, never 0
    # the run stops once 20 calls are done and over half failed; calls it never made are rows too (not_run)
    assert sum(row["error_types"].values()) == 40 and row["error_types"]["server"] >= 20
    assert set(row["error_types"]) <= {"server", "not_run"}
    (gate,) = doc["gates"]
    assert gate["name"] == "max_error_rate" and not gate["passed"] and "40 of 40 calls failed" in gate["failures"][0]
    xmlschema.XMLSchema(XSD).validate(project / "junit.xml")
    root = ET.parse(project / "junit.xml").getroot()
    assert (root.get("errors"), root.get("failures")) == ("40", "0")
    types = [e.get("type") for e in root.iter("error")]
    assert {kind: types.count(kind) for kind in set(types)} == row["error_types"]
    assert "❌ max_error_rate" in summary.read_text(encoding="utf-8")


def test_junit_shows_a_transform_error_with_the_answer_before_it(project):
    import promptlab as pl
    from promptlab.cli._output import junit_xml

    def said(request):
        i = number(request)
        return "no idea" if i < 3 else f"Label: {label(i)}"

    suite = pl.load_suite(project / "suite.yaml")
    results = pl.run(suite, {"A": pl.load_prompt(project / "a.yaml")}, FakeProvider(said), progress=False,
                     cache=False, transform=pl.evaluation.Transform.regex(r"Label: (\w+)"))
    (project / "t.xml").write_text(junit_xml(results, "transform"), encoding="utf-8")
    xmlschema.XMLSchema(XSD).validate(project / "t.xml")
    errors = list(ET.parse(project / "t.xml").getroot().iter("error"))
    assert [e.get("type") for e in errors] == ["transform_error"] * 3
    assert "answer before the transform: no idea" in errors[0].text and "actual: NA" in errors[0].text


def test_json_markdown_and_summary_carry_classification_metrics_pinned_to_scikit_learn(project, monkeypatch,
                                                                                        capsys):
    from sklearn.metrics import cohen_kappa_score, f1_score

    summary = project / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    wrong, wrong_b, failed = {1, 2, 3}, set(range(4, 20)), {30}
    assert evaluate(script(wrong=wrong, failed=failed, wrong_b=wrong_b), "--json", "out.json",
                    prompts=("A=a.yaml", "B=b.yaml")) == 0
    found = validate(project / "out.json")["classification"]
    assert found["labels"] == ["positive", "negative"]
    rows = {row["variant"]: row for row in found["rows"]}
    answered = [i for i in range(CASES) if i not in failed]  # a failed call has no label to read
    truth = [label(i) for i in answered]
    for variant, bad in (("A", wrong), ("B", wrong | wrong_b)):
        read = [label(i, i not in bad) for i in answered]
        # sklearn.metrics.f1_score(truth, read, average="macro"); cohen_kappa_score(truth, read)
        assert rows[variant]["macro_f1"] == pytest.approx(f1_score(truth, read, average="macro"))
        assert rows[variant]["kappa"] == pytest.approx(cohen_kappa_score(truth, read))
        assert rows[variant]["errors"] == 1
        assert rows[variant]["macro_f1_ci_low"] <= rows[variant]["macro_f1"] <= rows[variant]["macro_f1_ci_high"]
    (pair,) = found["comparison"]
    assert (pair["variant"], pair["baseline"]) == ("B", "A")
    assert pair["diff"] == pytest.approx(rows["B"]["macro_f1"] - rows["A"]["macro_f1"])
    assert pair["verdict"] == "worse"  # 16 more wrong answers of 39: B's macro-F1 is clearly lower
    assert "#### Classification" in summary.read_text() and "macro-F1, paired by case" in summary.read_text()
    assert "classification over labels positive, negative" in capsys.readouterr().out


def test_json_classification_is_null_without_a_label_set(project):
    (project / "suite.yaml").write_text(SUITE.replace("labels: [positive, negative]\n", ""))
    assert evaluate(script(), "--json", "out.json") == 0
    assert validate(project / "out.json")["classification"] is None


def test_json_carries_format_compliance_when_the_prompt_declares_its_output(project):
    from statsmodels.stats.proportion import proportion_confint

    (project / "c.yaml").write_text(PROMPT.format(name="c", system="Classify.")
                                    + "output:\n  labels: [positive, negative]\n  retries: 0\n")
    assert evaluate(script(ugly={3, 5}, failed={7}), "--json", "out.json", prompts=("C=c.yaml",)) == 0
    (row,) = validate(project / "out.json")["format"]
    # 39 answers (one call failed), 37 of them one of the labels; proportion_confint(37, 39, method="wilson")
    low, high = proportion_confint(37, 39, method="wilson")
    assert (row["n"], row["failed_calls"]) == (39, 1)
    assert row["compliance"] == pytest.approx(37 / 39)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert evaluate(script(), "--json", "free.json") == 0
    assert validate(project / "free.json")["format"] is None  # free text: no verdict, so no number
