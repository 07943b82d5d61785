"""pl.view: the review table, its filters and sort, the drill-down, verdicts written and read back, and the static
fallback — all without a browser (tests/test_browser.py drives a real one)."""

from __future__ import annotations

import pandas as pd
import pytest

import promptlab as pl
from promptlab.errors import ArgumentError, UnknownNameError
from promptlab.evaluation import load_reviews
from promptlab.notebook._viewer import case_html, filter_rows, review_table, sort_rows, static_html

PROMPT = pl.Prompt(name="p", version="1", model="claude-3-5-sonnet-20241022")
SUITE_TEXT = """name: s
labels: [positive, negative]
cases:
  - {id: a, input: love it, expected: positive}
  - {id: b, input: not bad, expected: positive, category: edge_case, tags: [negation]}
  - {id: c, input: "<script>x</script> awful", expected: negative, category: adversarial, tags: [injection]}
  - {id: d, input: "great, just great", expected: negative, tags: [sarcasm, negation]}
"""


def answer(request: pl.providers.Request) -> str:
    text = request.messages[-1].content
    if request.system == "other" and "not bad" in text:
        return "negative"
    if "great, just" in text and request.system == "other":
        raise pl.ProviderError("server said no", error_type="server", status=500)
    return "negative" if "awful" in text else "positive"


@pytest.fixture
def suite_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_USER", "ann")
    path = tmp_path / "suites" / "s.yaml"
    path.parent.mkdir()
    path.write_text(SUITE_TEXT, encoding="utf-8")
    return path


def run(suite_file) -> pl.Results:
    variants = {"A": PROMPT, "B": PROMPT.with_changes(system="other")}
    return pl.run(pl.load_suite(suite_file), variants, pl.FakeProvider(answer), progress=False, cache=False,
                  retries=0)


def test_review_table_flags_failures_disagreements_and_tags(suite_file):
    results = run(suite_file)
    table = review_table(results.df, {"b": ("negation",), "d": ("sarcasm", "negation")}).set_index("case_id")
    # A: a, b, c pass, d fails (says positive); B: a, c pass, b fails (says negative), d's call fails
    assert table.loc["b", "output:A"] == "positive" and table.loc["b", "output:B"] == "negative"
    assert list(table["failed"]) == [False, True, False, True]
    assert list(table["disagree"]) == [False, True, False, True]
    assert table.loc["d", "errored:B"] and pd.isna(table.loc["d", "output:B"])
    assert tuple(table.loc["d", "tags"]) == ("sarcasm", "negation") and tuple(table.loc["a", "tags"]) == ()
    assert not table["reviewed"].any()


def test_filters_and_sort_select_the_rows_a_hand_count_says(suite_file):
    table = review_table(run(suite_file).df, {"b": ("negation",), "d": ("sarcasm", "negation")})

    def ids(rows: pd.DataFrame) -> list[str]:
        return list(rows["case_id"])

    assert ids(filter_rows(table)) == ["a", "b", "c", "d"]
    assert ids(filter_rows(table, failures=True)) == ["b", "d"]
    assert ids(filter_rows(table, category="adversarial")) == ["c"]
    assert ids(filter_rows(table, category="(all)", tag="negation")) == ["b", "d"]
    assert ids(filter_rows(table, tag="negation", category="happy_path")) == ["d"]
    assert ids(filter_rows(table, text="  SCRIPT ")) == ["c"]  # input, any case
    assert ids(filter_rows(table, text="negative")) == ["b", "c", "d"]  # b's answer B, c and d's expected
    assert ids(filter_rows(table, failures=True, text="nothing like this")) == []
    assert ids(sort_rows(table, "category")) == ["c", "b", "a", "d"]
    assert ids(sort_rows(table, "failures first")) == ["b", "d", "a", "c"]
    assert ids(sort_rows(table, "score B")) == ["b", "a", "c", "d"]  # lowest first, the failed call (NaN) last
    with pytest.raises(UnknownNameError, match="score A"):
        sort_rows(table, "scroe A")


def test_drill_down_shows_every_variant_side_by_side_escaped(suite_file):
    results = run(suite_file)
    results.df["reason"] = results.df["reason"].astype(object)
    results.df.loc[results.df["case_id"] == "c", "score_relevance"] = 4.0  # a judge's criterion column
    table = review_table(results.df, {"c": ("injection",)}).set_index("case_id", drop=False)
    html = case_html(table.loc["c"].to_dict())
    assert "&lt;script&gt;x&lt;/script&gt; awful" in html and "<script>x" not in html
    assert "relevance 4" in html and "injection" in html and "<th>A</th><th>B</th>" in html
    failing = case_html(table.loc["d"].to_dict())
    assert "server said no" in failing and "error" in failing and "&lt;no answer&gt;" in failing


def test_verdicts_round_trip_through_the_review_file(suite_file):
    results = run(suite_file)
    viewer = pl.view(results, suite=suite_file)
    assert viewer.review_file == suite_file.parent / "s.review.yaml" and not viewer.review_file.exists()
    viewer.controls["tag"].value = "sarcasm"
    assert [label for label, _index in viewer.case.options] == ["d · fake:fake-model · #0"]
    viewer.form["variant"].value = "A"
    viewer.form["verdict"].value = "pass"
    viewer.form["comment"].value = "sarcasm: «great» is not praise"
    viewer.form["save"].click()
    frame = load_reviews(suite_file)
    assert frame[["case_id", "variant", "run_id", "human", "reviewer"]].values.tolist() == \
        [["d", "A", results.meta["run_id"], "pass", "ann"]]
    assert frame.loc[0, "comment"] == "sarcasm: «great» is not praise"
    assert "saved" in viewer.status.value and "[human: pass]" in viewer.detail.value
    # human-corrected: A passes 3 of 4 by the scorer, 4 of 4 with d overridden; the viewer says so
    accuracy = viewer.accuracy.set_index("variant")
    assert accuracy.loc["A", "passed"] == 4 and accuracy.loc["A", "overridden"] == 1
    assert "human-corrected" in viewer.summary.value and "100.0%" in viewer.summary.value
    viewer.controls["unreviewed"].value = True
    assert list(viewer.filtered()["case_id"]) == []  # the sarcasm tag's one case is reviewed now
    viewer.controls["tag"].value = "(all)"
    assert list(viewer.filtered()["case_id"]) == ["a", "b", "c"]
    again = pl.view(results, suite=suite_file)  # a new viewer reads the verdict back
    assert again.table.set_index("case_id").loc["d", "human:A"] == "pass"
    viewer.record("d", None, variant="A")  # clearing removes it
    assert load_reviews(suite_file).empty and viewer.accuracy is None


def test_every_variant_verdict_and_a_review_file_given_outright(suite_file, tmp_path):
    results = run(suite_file)
    viewer = pl.view(results, review_file=tmp_path / "mine.review.yaml")
    viewer.record("b", "pass", comment="'not bad' is positive")
    frame = load_reviews(tmp_path / "mine.review.yaml")
    assert frame.loc[0, "case_id"] == "b" and pd.isna(frame.loc[0, "variant"])
    assert frame.loc[0, "run_id"] == results.meta["run_id"]  # both variants came from this one run
    assert viewer.table.set_index("case_id").loc["b", ["human:A", "human:B"]].tolist() == ["pass", "pass"]
    # no suite given: the tags come from the suite file the run recorded
    assert viewer.tags == {"a": (), "b": ("negation",), "c": ("injection",), "d": ("sarcasm", "negation")}
    assert list(viewer.controls["tag"].options) == ["(all)", "injection", "negation", "sarcasm"]
    with pytest.raises(UnknownNameError, match="'zz'"):
        viewer.record("zz", "pass")
    with pytest.raises(UnknownNameError, match="variant 'C'"):
        viewer.record("b", "pass", variant="C")


def test_without_a_suite_the_review_file_lives_under_the_runs_dir(suite_file, tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_RUNS_DIR", str(tmp_path / "runs"))
    assert pl.view(run(suite_file)).review_file == suite_file.parent / "s.review.yaml"  # the run recorded its file
    in_code = pl.Suite("s")  # a suite built in code has no file: its review file is under the runs dir
    in_code.add_case("love it", "positive", id="a")
    results = pl.run(in_code, PROMPT, pl.FakeProvider("positive"), progress=False, cache=False)
    viewer = pl.view(results)
    assert viewer.review_file == tmp_path / "runs" / "reviews" / "s.review.yaml" and viewer.tags == {}
    assert list(viewer.controls["tag"].options) == ["(all)"]  # no suite file, no tags
    viewer.record("a", "fail")
    assert "suite: s\n" in viewer.review_file.read_text(encoding="utf-8")  # named by the suite's name
    bare = pl.view(run(suite_file).df)  # a bare frame names no suite: reading works, saving not
    assert bare.review_file is None and bare.form["save"].disabled and "pass suite=" in bare.summary.value
    with pytest.raises(ArgumentError, match="no review file"):
        bare.record("a", "pass")


def test_static_fallback_and_the_mimebundle(suite_file):
    viewer = pl.view(run(suite_file), suite=suite_file)
    html = viewer._repr_html_()
    assert "4 rows · 2 with a failure · 2 where the variants disagree · 0 reviewed" in html
    assert html.count("<tr data-case=") == 4 and "&lt;script&gt;" in html and "<script>x" not in html
    bundle = viewer._repr_mimebundle_()
    assert bundle["text/html"] == html and "application/vnd.jupyter.widget-view+json" in bundle
    assert static_html(viewer.table, limit=2).count("<tr data-case=") == 2
    with pytest.raises(ArgumentError, match="Results"):
        pl.view([1, 2])


def test_concatenated_runs_keep_a_row_per_run_and_verdicts_per_run(suite_file, tmp_path):
    first, second = run(suite_file), run(suite_file)
    both = pl.Results.concat([first, second])
    viewer = pl.view(both, suite=suite_file)
    assert len(viewer.table) == 8 and viewer.table["run_id"].nunique() == 2
    assert f"run {second.meta['run_id']}" in viewer.case.options[4][0]
    viewer.case.value = viewer.case.options[4][1]  # the second run's case a
    viewer.form["variant"].value, viewer.form["verdict"].value = "B", "fail"
    viewer.form["save"].click()
    frame = load_reviews(suite_file)
    assert frame[["case_id", "variant", "run_id", "human"]].values.tolist() == [["a", "B", second.meta["run_id"],
                                                                                 "fail"]]
    human = viewer.table.set_index(["run_id", "case_id"])["human:B"]
    assert human[(second.meta["run_id"], "a")] == "fail"
    assert pd.isna(human[(first.meta["run_id"], "a")])
    # accuracy of B over both runs: the scorer passes a and c in each (4 of 8); the verdict takes one away
    assert viewer.accuracy.set_index("variant").loc["B", "passed"] == 3


def test_a_frame_without_run_ids_still_reviews(suite_file, tmp_path):
    df = run(suite_file).df.assign(run_id=pd.NA)
    viewer = pl.view(df, review_file=tmp_path / "r.review.yaml")
    assert len(viewer.table) == 4
    viewer.case.value = viewer.case.options[0][1]
    viewer.form["verdict"].value = "fail"
    viewer.form["save"].click()
    frame = load_reviews(tmp_path / "r.review.yaml")
    assert frame.loc[0, "case_id"] == "a" and pd.isna(frame.loc[0, "run_id"]) and pd.isna(frame.loc[0, "variant"])
    assert viewer.accuracy["passed"].tolist() == [2, 1]  # A: b, c (a overridden); B: c


def test_a_judged_run_shows_the_judges_scores_and_rationale_and_takes_a_human_score(tmp_path):
    import json

    verdict = {"accuracy": {"score": 5, "reason": "names the flaw"}, "tone": {"score": 2, "reason": "curt <b>"}}
    scorer = pl.judge(["accuracy", "tone"], pl.FakeProvider(json.dumps(verdict), model_name="judge"),
                      pass_threshold=4.0, cache=False)
    suite = pl.Suite("security")
    suite.add_case("query = 'SELECT ' + x", "SQL injection", id="sqli", tags=["sql"])
    results = pl.run(suite, PROMPT, pl.FakeProvider("SQL injection."), scorer=scorer, progress=False, cache=False)
    viewer = pl.view(results, suite=suite, review_file=tmp_path / "j.review.yaml")
    detail = viewer.detail.value
    # the judge: (5 + 2) / 2 = 3.5 on its 1-5 scale, under the 4.0 bar, so the scorer says fail
    assert "accuracy 5 · tone 2 · overall 3.5" in detail and "<span class='pl-bad'>✗</span>" in detail
    assert "tone 2: curt &lt;b&gt;" in detail and "curt <b>" not in detail
    assert list(viewer.controls["tag"].options) == ["(all)", "sql"]
    viewer.form["verdict"].value, viewer.form["score"].value = "pass", "four"
    viewer.form["save"].click()
    assert "not a number" in viewer.status.value and not (tmp_path / "j.review.yaml").exists()
    viewer.form["score"].value = " 4 "
    viewer.form["save"].click()
    assert load_reviews(tmp_path / "j.review.yaml")[["human", "score"]].values.tolist() == [["pass", 4.0]]


def test_view_opens_a_recorded_run_by_its_id(suite_file):
    results = run(suite_file)
    viewer = pl.view(results.meta["run_id"][:8])  # the run store gives the rows and the suite file back
    assert len(viewer.table) == 4 and viewer.review_file == suite_file.parent / "s.review.yaml"
    assert set(viewer.table["run_id"]) == {results.meta["run_id"]} and viewer.tags["d"] == ("sarcasm", "negation")
    viewer.record("d", "pass", variant="A")
    assert load_reviews(suite_file)["run_id"].tolist() == [results.meta["run_id"]]
    with pytest.raises(pl.errors.UsageError):
        pl.view("no-such-run")


def test_a_changed_suite_file_flags_the_verdicts_as_stale(suite_file):
    viewer = pl.view(run(suite_file), suite=suite_file)
    viewer.record("a", "pass")
    assert not viewer.stale and "changed since" not in viewer.summary.value
    suite_file.write_text(SUITE_TEXT.replace("love it", "love it!"), encoding="utf-8")
    viewer.reload()
    viewer.refresh()
    assert viewer.stale and "the suite file changed since these verdicts were recorded" in viewer.summary.value
