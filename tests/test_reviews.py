"""The review file: strict reading, atomic writing of verdicts, and human-corrected accuracy."""

from __future__ import annotations

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

import promptlab as pl
from promptlab.errors import ArgumentError, SuiteFileError
from promptlab.evaluation import REVIEW_COLUMNS, load_reviews
from promptlab.evaluation._reviews import apply_reviews, file_hash, record_verdict, review_path

PROMPT = pl.Prompt(name="p", version="1", model="claude-3-5-sonnet-20241022")
SUITE_TEXT = """name: s
labels: [positive, negative]
cases:
  - {id: a, input: love it, expected: positive}
  - {id: b, input: not bad, expected: positive, category: edge_case, tags: [negation]}
  - {id: c, input: awful, expected: negative, category: adversarial}
  - {id: d, input: "great, just great", expected: negative, tags: [sarcasm]}
"""


def answer(request: pl.providers.Request) -> str:
    text = request.messages[-1].content
    if request.system == "other" and "not bad" in text:
        return "negative"
    return "negative" if "awful" in text else "positive"


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "suites" / "s.yaml"
    path.parent.mkdir()
    path.write_text(SUITE_TEXT, encoding="utf-8")
    return path


def run(suite_file) -> pl.Results:
    variants = {"A": PROMPT, "B": PROMPT.with_changes(system="other")}
    return pl.run(pl.load_suite(suite_file), variants, pl.FakeProvider(answer), progress=False, cache=False)


def test_review_path_beside_the_suite_or_under_the_runs_dir(tmp_path, monkeypatch, suite_file):
    assert review_path(suite_file) == suite_file.parent / "s.review.yaml"
    assert review_path(str(suite_file.parent / "s.review.yaml")) == suite_file.parent / "s.review.yaml"
    monkeypatch.setenv("PROMPTLAB_RUNS_DIR", str(tmp_path / "runs"))
    assert review_path(pl.Suite("my suite/v2")) == tmp_path / "runs" / "reviews" / "my_suite_v2.review.yaml"
    assert review_path(pl.load_suite(suite_file)) == suite_file.parent / "s.review.yaml"  # the suite knows its file
    results = run(suite_file)  # the run records its suite file (relative to the project root when inside it)
    assert review_path(results) == suite_file.parent / "s.review.yaml"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    results.meta["suite"]["path"] = "suites/s.yaml"
    monkeypatch.chdir(suite_file.parent)  # a notebook in a subfolder: the path is the project root's
    assert review_path(results) == tmp_path / "suites" / "s.review.yaml"
    results.meta["suite"]["path"] = None  # a suite built in code: the runs dir, by the suite's name
    assert review_path(results) == tmp_path / "runs" / "reviews" / "s.review.yaml"
    with pytest.raises(ArgumentError, match="which suite"):
        review_path(object())


def test_record_verdict_round_trip_replaces_and_removes(suite_file, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_USER", "ann")
    path = review_path(suite_file)
    assert load_reviews(suite_file).empty and list(load_reviews(suite_file).columns) == list(REVIEW_COLUMNS)
    record_verdict(path, "d", "fail", variant="A", run_id="r1", comment="sarcasm — «great» is not praise",
                   suite_file=suite_file)
    record_verdict(path, "b", "pass", variant="B", comment="first try")
    record_verdict(path, "b", "fail", variant="B", comment="second thought", score=2)  # replaces the first
    frame = load_reviews(suite_file)
    assert list(frame["case_id"]) == ["d", "b"] and list(frame["human"]) == ["fail", "fail"]
    assert frame.loc[1, "comment"] == "second thought" and frame.loc[1, "score"] == 2.0
    assert frame.loc[0, "comment"] == "sarcasm — «great» is not praise" and frame.loc[0, "reviewer"] == "ann"
    assert frame.loc[0, "run_id"] == "r1" and pd.isna(frame.loc[1, "run_id"]) and pd.isna(frame.loc[0, "score"])
    assert str(frame["at"].dtype) == "datetime64[ns, UTC]" and frame["at"].notna().all()
    text = path.read_text(encoding="utf-8")
    assert f"suite_hash: {file_hash(suite_file)}" in text and "suite: " in text
    record_verdict(path, "b", None, variant="B")  # None removes
    assert list(load_reviews(path)["case_id"]) == ["d"]
    assert not list(path.parent.glob("*.tmp"))  # the atomic write left no temporary file


def test_a_hand_written_review_file_with_bom_crlf_and_numbers_reads(tmp_path):
    path = tmp_path / "x.review.yaml"
    text = ("suite: suites/x.yaml\r\nverdicts:\r\n  - {case_id: 7, human: pass}\r\n"
            "  - case_id: neg-003\r\n    variant: A\r\n    human: fail\r\n    comment: \"ünïcode, quoted\"\r\n"
            "    at: 2026-12-02T10:00:00Z\r\n")
    path.write_bytes("\ufeff".encode() + text.encode("utf-8"))
    frame = load_reviews(path)
    assert list(frame["case_id"]) == ["7", "neg-003"] and list(frame["human"]) == ["pass", "fail"]
    assert frame.loc[1, "at"] == pd.Timestamp("2026-12-02T10:00:00Z") and pd.isna(frame.loc[0, "at"])
    assert frame.loc[1, "comment"] == "ünïcode, quoted" and pd.isna(frame.loc[0, "variant"])


@pytest.mark.parametrize(("body", "message"), [
    ("verdicts:\n  - {case_id: a, human: maybe}\n", r":2: verdicts\.0\.human: .*pass.*fail"),
    ("verdicts:\n  - {case_id: a, human: pass, reviwer: ann}\n", r"reviwer.*reviewer"),
    ("verdicts:\n  - {case_id: a, variant: A, human: pass}\n  - {case_id: a, variant: A, human: fail}\n",
     r"verdicts 0 and 1 .*both judge case 'a'"),
    ("- just a list\n", "must be a mapping"),
])
def test_a_bad_review_file_is_refused_with_its_line(tmp_path, body, message):
    path = tmp_path / "bad.review.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(SuiteFileError, match=message):
        load_reviews(path)


def test_a_missing_review_file_named_outright_is_an_error(tmp_path):
    with pytest.raises(ArgumentError, match="does not exist"):
        load_reviews(tmp_path / "nope.review.yaml")
    with pytest.raises(ArgumentError, match="'maybe'"):
        record_verdict(tmp_path / "x.review.yaml", "a", "maybe")


def test_apply_reviews_prefers_the_most_specific_verdict():
    df = pd.DataFrame({"case_id": ["a", "a", "b"], "variant": ["A", "B", "A"], "run_id": ["r", "r", "r"],
                       "passed": pd.array([True, True, pd.NA], dtype="boolean")})
    reviews = pd.DataFrame({"case_id": ["a", "a", "b"], "variant": [None, "B", "A"], "run_id": [None, "r", "other"],
                            "human": ["fail", "pass", "pass"]})
    out = apply_reviews(df, reviews)
    assert list(out["passed"].astype(object)) == [False, True, pd.NA]  # b's verdict is for another run
    assert list(out["human"].astype(object)) == ["fail", "pass", pd.NA]
    assert list(out["overridden"]) == [True, False, False]


def test_human_accuracy_against_a_hand_count(suite_file, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_USER", "ann")
    results = run(suite_file)
    # the scorer: A passes a, b, c (3 of 4: d's sarcasm fails); B passes a, c (2 of 4)
    assert list(results.accuracy()["passed"]) == [3, 2]
    path = review_path(suite_file)
    record_verdict(path, "d", "pass", variant="A", run_id=results.meta["run_id"], comment="label is wrong")
    record_verdict(path, "b", "pass", comment="'not bad' is positive, whoever answered")  # every variant
    record_verdict(path, "a", "pass", variant="B", run_id="an-old-run")  # another run: no effect
    table = results.human_accuracy(suite_file).set_index("variant")
    # by hand: A = a, b, c pass + d overridden to pass = 4/4 (reviewed b, d; overridden d only)
    #          B = a, c pass + b overridden to pass = 3/4 (reviewed b; overridden b)
    assert table.loc["A", "passed"] == 4 and table.loc["B", "passed"] == 3
    assert table.loc["A", "reviewed"] == 2 and table.loc["A", "overridden"] == 1
    assert table.loc["B", "reviewed"] == 1 and table.loc["B", "overridden"] == 1
    assert table.loc["A", "accuracy_scorer"] == 0.75 and table.loc["B", "accuracy_scorer"] == 0.5
    low, high = proportion_confint(3, 4, alpha=0.05, method="wilson")  # statsmodels' Wilson interval
    assert table.loc["B", "ci_low"] == pytest.approx(low) and table.loc["B", "ci_high"] == pytest.approx(high)
    assert results.human_accuracy()["passed"].tolist() == [4, 3]  # the run recorded its suite file


def test_the_review_dir_follows_the_run_stores_rule(tmp_path, monkeypatch):
    from promptlab.evaluation._runstore import runs_dir

    for value in (str(tmp_path / "elsewhere"), None):
        if value is None:
            monkeypatch.delenv("PROMPTLAB_RUNS_DIR")
        else:
            monkeypatch.setenv("PROMPTLAB_RUNS_DIR", value)
        assert review_path(pl.Suite("x")) == runs_dir() / "reviews" / "x.review.yaml"
