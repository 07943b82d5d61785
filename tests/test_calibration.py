"""Judge calibration: agreement with human labels pinned to scikit-learn and Krippendorff's published examples,
the bias probes on scripted judges, the judge card, and the gates refusing judge scores without a calibrated card."""

from __future__ import annotations

import json

import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix
from test_registry import SENTIMENT, eval_results, make_repo

import promptlab as pl
from promptlab.errors import ArgumentError, GateRefused
from promptlab.evaluation._calibration import (
    agreement,
    bootstrap_alpha,
    calibrate,
    card_failures,
    human_labels,
    judges_dir,
    krippendorff_alpha,
    load_judge_card,
)
from promptlab.evaluation._judge import judge
from promptlab.evaluation._judge_probes import length_bias, position_swap
from promptlab.registry._registry import Registry

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the reliability data of 4 observers × 12 units
# with missing values; the paper states alpha = 0.743 (nominal), 0.815 (ordinal), 0.849 (interval).
RELIABILITY = np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
                        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
                        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
                        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN]])
# The same paper's first example: two observers, ten units, binary values; it states alpha = 0.095.
OBSERVER_A = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
OBSERVER_B = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]


@pytest.fixture(autouse=True)
def judges_folder(tmp_path, monkeypatch):
    folder = tmp_path / "judges"
    monkeypatch.setenv("PROMPTLAB_JUDGES_DIR", str(folder))
    return folder


def judged_frame(verdicts, *, cases=None, variant="A", scores=None, key="k@fake:judge") -> pd.DataFrame:
    cases = cases or [f"c{i}" for i in range(len(verdicts))]
    return pd.DataFrame({"case_id": cases, "variant": variant, "output": "answer",
                         "passed": pd.array([None if v is None else bool(v) for v in verdicts], "boolean"),
                         "score_overall_raw": scores if scores is not None else NAN, "score_judge": key})


def labels_frame(verdicts, cases=None) -> pd.DataFrame:
    cases = cases or [f"c{i}" for i in range(len(verdicts))]
    return pd.DataFrame({"case_id": cases, "human": ["pass" if v else "fail" for v in verdicts]})


# ---- Krippendorff's alpha, pinned to the published worked examples -----------------------------------------------
@pytest.mark.parametrize(("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_alpha_matches_krippendorffs_reliability_data_example(level, published):
    assert krippendorff_alpha(RELIABILITY, level) == pytest.approx(published, abs=5e-4)


def test_agreement_on_the_binary_example_matches_the_paper_and_scikit_learn():
    found = agreement(judged_frame(OBSERVER_B), labels_frame(OBSERVER_A), n_boot=200)
    assert found.alpha == pytest.approx(0.095, abs=5e-4)  # the paper's stated alpha
    assert found.kappa == pytest.approx(cohen_kappa_score(OBSERVER_A, OBSERVER_B))  # sklearn.metrics
    assert found.raw_agreement == pytest.approx(accuracy_score(OBSERVER_A, OBSERVER_B))
    expected = confusion_matrix(OBSERVER_A, OBSERVER_B, labels=[1, 0])  # rows human, columns judge: pass, fail
    assert found.confusion[["pass", "fail"]].to_numpy().tolist() == expected.tolist()
    assert found.n == 10 and found.cases == 10 and found.judge_failures == 0
    assert found.kappa_ci_low <= found.kappa <= found.kappa_ci_high
    assert found.alpha_ci_low <= found.alpha <= found.alpha_ci_high


def test_the_alpha_interval_is_a_seeded_bootstrap_over_cases():
    human = np.array(OBSERVER_A * 2, dtype=float)
    judged = np.array(OBSERVER_B + OBSERVER_A, dtype=float)
    cases = np.array([f"c{i % 10}" for i in range(20)])  # each case answered twice: its answers move together
    coders = np.vstack([human, judged])
    low, high = bootstrap_alpha(coders, cases, "nominal", n_boot=300, seed=7, confidence=0.9)
    ids = np.unique(cases)
    rng = np.random.default_rng(7)
    draws = []
    for draw in rng.integers(0, ids.size, size=(300, ids.size)):
        cols = np.concatenate([np.flatnonzero(cases == ids[d]) for d in draw])
        data = coders[:, cols]
        if np.unique(data).size > 1:
            draws.append(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    assert (low, high) == pytest.approx((np.percentile(draws, 5), np.percentile(draws, 95)))
    assert bootstrap_alpha(coders, cases, "nominal", n_boot=300, seed=7, confidence=0.9) == (low, high)
    assert all(np.isnan(bootstrap_alpha(coders[:, :1], cases[:1], "nominal", n_boot=50, seed=0, confidence=0.9)))


def test_a_judge_failure_is_a_disagreement_for_kappa_and_missing_for_alpha():
    said = [1, 1, None, 0, 0, 1, 0, None]
    human = [1, 1, 1, 0, 0, 0, 0, 1]
    found = agreement(judged_frame(said), labels_frame(human), n_boot=0)
    coded = ["(none)" if s is None else ("pass" if s else "fail") for s in said]
    truth = ["pass" if h else "fail" for h in human]
    assert found.kappa == pytest.approx(cohen_kappa_score(truth, coded))
    assert found.judge_failures == 2 and found.confusion.loc["pass", "(none)"] == 2
    data = np.array([human, [NAN if s is None else s for s in said]], dtype=float)
    assert found.alpha == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    assert np.isnan(found.kappa_ci_low) and np.isnan(found.alpha_ci_low)  # n_boot=0: no interval


def test_scores_get_an_ordinal_alpha():
    judge_scores = [5.0, 4.0, 2.0, 1.0, 3.0, 4.0]
    human_scores = [5, 3, 2, 1, 4, 4]
    judged = judged_frame([s >= 3 for s in judge_scores], scores=judge_scores)
    labels = labels_frame([s >= 3 for s in human_scores]).assign(score=human_scores)
    found = agreement(judged, labels, n_boot=100)
    grid = np.array([human_scores, judge_scores], dtype=float)
    assert found.alpha_scores == pytest.approx(krippendorff.alpha(reliability_data=grid,
                                                                  level_of_measurement="ordinal"))


# ---- the labels --------------------------------------------------------------------------------------------------
def test_labels_per_variant_newest_first_and_for_every_variant():
    judged = pd.concat([judged_frame([1, 0], variant="A"), judged_frame([1, 1], variant="B")], ignore_index=True)
    labels = pd.DataFrame({"case_id": ["c0", "c1", "c1", "c0"], "variant": ["A", "A", "A", None],
                           "human": ["fail", "pass", "fail", "pass"]})
    # c1/A: the newer label (fail) wins; c0/A has its own label (fail), c0/B takes the case's label (pass)
    found = agreement(judged, labels, n_boot=0)
    assert found.n == 3  # c1/B has no label
    # human fail, judge pass: c0/A; human fail, judge fail: c1/A; human pass, judge pass: c0/B
    assert found.confusion.loc["fail", "pass"] == 1 and found.confusion.loc["fail", "fail"] == 1
    assert found.confusion.loc["pass", "pass"] == 1


def test_bad_labels_say_what_is_wrong():
    judged = judged_frame([1, 0])
    with pytest.raises(ArgumentError, match=r"no column \['case_id'\]; its columns are \['case', 'human'\]"):
        agreement(judged, pd.DataFrame({"case": ["c0"], "human": ["pass"]}))
    with pytest.raises(ArgumentError, match="must be pass or fail.*'maybe'"):
        agreement(judged, pd.DataFrame({"case_id": ["c0"], "human": ["maybe"]}))
    with pytest.raises(ArgumentError, match="no judged answer has a human label"):
        agreement(judged, pd.DataFrame({"case_id": ["zz"], "human": ["pass"]}))
    with pytest.raises(ArgumentError, match="no pass_threshold"):
        human_labels(pd.DataFrame({"case_id": ["c0"], "score": [4]}))
    several = pd.concat([judged_frame([1], key="a@m"), judged_frame([0], key="b@m")])
    with pytest.raises(ArgumentError, match="several judges"):
        agreement(several, labels_frame([1]))


def test_labels_from_an_ugly_csv(tmp_path):
    path = tmp_path / "labels.csv"
    text = '\ufeffcase_id,human,comment\r\n"c0", Pass ,"multi\r\nline"\r\n,,\r\nc1,FAIL,\r\nc2,true,ünïcode\r\n'
    path.write_bytes(text.encode("utf-8"))
    labels = pd.read_csv(path, encoding="utf-8-sig")
    read = human_labels(labels)
    assert read["case_id"].tolist() == ["c0", "c1", "c2"] and read["human"].tolist() == [True, False, True]
    numbers = human_labels(pd.DataFrame({"case_id": ["a", "b", "c"], "human": [1.0, 0.0, np.nan]}))
    assert numbers["human"].tolist()[:2] == [True, False] and numbers["human"].isna().tolist() == [False, False, True]
    scored = human_labels(pd.DataFrame({"case_id": ["c0", "c1"], "score": ["4", ""]}), pass_threshold=3.5)
    assert scored["human"].tolist()[0] is True and scored["human"].isna().tolist() == [False, True]


# ---- the judge's identity ----------------------------------------------------------------------------------------
def test_the_judge_key_follows_its_rubric_and_model_and_is_on_every_row():
    fake = pl.FakeProvider('{"accuracy": {"score": 4, "reason": "ok"}}', model_name="j")
    one = judge(["accuracy"], fake, pass_threshold=3.0)
    assert judge(["accuracy"], fake, pass_threshold=3.0).key == one.key
    assert judge(["accuracy"], fake, pass_threshold=4.0).key != one.key
    assert judge([("accuracy", "other words")], fake, pass_threshold=3.0).key != one.key
    assert one.key.endswith("@fake:j") and len(one.key.split("@")[0]) == 16
    suite = pl.Suite("s")
    suite.add_case("q", "a", id="c0")
    results = pl.run(suite, pl.Prompt(name="p", version="1", model="fake:m", system="s"), pl.FakeProvider("a"),
                     scorer=one, progress=False, cache=False)
    assert results.df["score_judge"].tolist() == [one.key]


# ---- probes ------------------------------------------------------------------------------------------------------
def pair_results(n: int = 6) -> pd.DataFrame:
    rows = []
    for i in range(n):
        rows += [{"case_id": f"c{i}", "variant": "A", "input": f"task {i}", "output": f"good answer {i}",
                  "expected": None},
                 {"case_id": f"c{i}", "variant": "B", "input": f"task {i}", "output": f"poor answer {i}",
                  "expected": None}]
    return pd.DataFrame(rows)


def _text(request) -> str:
    return request.messages[-1].content


def test_position_swap_catches_a_judge_that_always_picks_the_first_slot():
    slot_judge = judge(["quality"], pl.FakeProvider("1"), pass_threshold=3.0, cache=False)
    probe = position_swap(pair_results(), slot_judge)
    assert probe.counts == {"pairs": 6, "read": 6, "consistent": 0, "first_share": 1.0}
    ci = stats.binomtest(0, 6).proportion_ci(method="wilson")  # scipy's Wilson interval
    assert (probe.statistic, probe.ci_low, probe.ci_high) == pytest.approx((0.0, ci.low, ci.high))


def test_position_swap_passes_a_judge_that_reads_the_content():
    def reads(request):
        text = _text(request)
        return "1" if text.index("good answer") < text.index("poor answer") else "2"

    probe = position_swap(pair_results(), judge(["quality"], pl.FakeProvider(reads), pass_threshold=3.0,
                                                cache=False))
    assert probe.counts["consistent"] == 6 and probe.statistic == 1.0 and probe.counts["first_share"] == 0.5
    mute = position_swap(pair_results(), judge(["quality"], pl.FakeProvider("no idea"), cache=False))
    assert mute.counts["read"] == 0 and np.isnan(mute.statistic)


def test_the_length_probe_measures_how_padding_moves_the_score():
    def by_length(request):
        long = len(_text(request)) > 600
        return json.dumps({"quality": {"score": 5 if long else 2, "reason": "length"}})

    results = pair_results()
    probe = length_bias(results, judge(["quality"], pl.FakeProvider(by_length), pass_threshold=3.0, cache=False))
    assert probe.statistic == pytest.approx(3.0) and probe.counts["flipped_to_pass"] == 12
    fair = length_bias(results, judge(["quality"], pl.FakeProvider('{"quality": {"score": 4, "reason": ""}}'),
                                      pass_threshold=3.0, cache=False))
    assert fair.statistic == 0.0 and fair.counts["flipped_to_pass"] == 0


def test_the_length_interval_is_a_t_interval_over_cases():
    def noisy(request):
        text = _text(request)
        bump = 1 if ("This answer has been" in text and any(f"answer {i}" in text for i in (0, 2, 4))) else 0
        return json.dumps({"quality": {"score": 3 + bump, "reason": ""}})

    probe = length_bias(pair_results(), judge(["quality"], pl.FakeProvider(noisy), cache=False))
    per_case = probe.rows.groupby("case_id")["change"].mean().to_numpy()
    ci = stats.ttest_1samp(per_case, 0.0).confidence_interval(0.95)  # scipy
    assert (probe.ci_low, probe.ci_high) == pytest.approx((ci.low, ci.high))
    assert probe.statistic == pytest.approx(per_case.mean())


# ---- the card and the gate ---------------------------------------------------------------------------------------
def labelled_run(humans: list[str]):
    """A run judged pass on even cases and fail on odd ones, and human labels for its eight cases."""
    def verdict(request):
        even = any(f"question {i}" in _text(request) for i in (0, 2, 4, 6))
        return json.dumps({"quality": {"score": 5 if even else 1, "reason": "scripted"}})

    the_judge = judge(["quality"], pl.FakeProvider(verdict, model_name="j"), pass_threshold=3.0, cache=False)
    suite = pl.Suite("s")
    for i in range(8):
        suite.add_case(f"question {i}", "answer", id=f"c{i}")
    results = pl.run(suite, pl.Prompt(name="p", version="1", model="fake:m", system="s"), pl.FakeProvider("answer"),
                     scorer=the_judge, progress=False, cache=False)
    return results, pd.DataFrame({"case_id": [f"c{i}" for i in range(8)], "human": humans}), the_judge


AGREE = ["pass", "fail"] * 4
DISAGREE = ["pass"] * 6 + ["fail"] * 2


def test_calibrate_saves_a_card_keyed_by_the_judge(judges_folder):
    results, labels, the_judge = labelled_run(DISAGREE)
    card = calibrate(results, labels, the_judge, n_boot=100)
    path = judges_folder / f"{the_judge.rubric_hash[:16]}__fake_j.json"
    assert judges_dir() == judges_folder and path.is_file()
    saved = json.loads(path.read_text())
    assert saved["key"] == the_judge.key and saved["confusion"]["pass"] == {"pass": 3, "fail": 3, "(none)": 0}
    assert set(saved["probes"]) == {"position_swap", "length"}
    loaded = load_judge_card(the_judge)
    judge_said = ["pass", "fail"] * 4
    assert loaded.kappa == pytest.approx(cohen_kappa_score(labels["human"], judge_said))  # sklearn
    assert card.kappa == loaded.kappa and loaded.agreement["n"] == 8
    assert "below min_judge_agreement 0.6" in card_failures([the_judge.key], 0.6)[0]
    assert "has no judge card" in card_failures(["0000@fake:other"], 0.6)[0]
    calibrate(results, labels.assign(human=AGREE), the_judge, probes=False, n_boot=50)
    assert card_failures([the_judge.key], 0.6) == []


def test_gates_refuse_evidence_from_a_judge_without_a_card_or_below_the_agreement(tmp_path):
    repo = make_repo(tmp_path)
    reg = Registry(repo)
    ref = f"{SENTIMENT}@1.0.0"
    reg.register(ref, actor="ann")
    evidence = eval_results(reg.get(ref), pl.load_suite(repo / "suites/sentiment.yaml"))
    plain = reg.gate(ref, "test", evidence=evidence)
    assert plain.passed, plain.failures  # no judge: nothing changes
    results, labels, the_judge = labelled_run(DISAGREE)
    evidence.df["score_judge"] = the_judge.key  # the same eval, its scores now from the judge
    refused = reg.gate(ref, "test", evidence=evidence)
    assert not refused.passed and "has no judge card" in refused.failures[0]
    assert len(refused.needed) == 1 and "pl.evaluation.calibrate(results, labels, judge)" in refused.needed[0]
    calibrate(results, labels, the_judge, probes=False, n_boot=50)
    with pytest.raises(GateRefused, match="below min_judge_agreement 0.6"):
        reg.promote(ref, "test", evidence=evidence, actor="ann")
    assert reg.checklist(ref, evidence=evidence)["accuracy"].status == "fail"
    calibrate(results, labels.assign(human=AGREE), the_judge, probes=False, n_boot=50)
    assert reg.gate(ref, "test", evidence=evidence).passed
    stored = reg.promote(ref, "test", evidence=evidence, actor="ann")
    assert reg.evidence(ref)[-1].eval.judges == (the_judge.key,), stored


def test_score_answers_judges_a_labelled_set_for_calibration():
    def verdict(request):
        return json.dumps({"quality": {"score": 5 if "parameterised" in _text(request) else 1, "reason": "r"}})

    the_judge = judge(["quality"], pl.FakeProvider(verdict, model_name="j"), pass_threshold=3.0, cache=False)
    labelled = pd.DataFrame({"case_id": ["a", "a", "b", "b"], "variant": ["ref", "bad", "ref", "bad"],
                             "input": ["q1", "q1", "q2", "q2"], "expected": ["use parameterised queries", None,
                                                                              None, None],
                             "output": ["use parameterised queries", "fine", "parameterised", None],
                             "human": ["pass", "fail", "pass", "fail"]})
    judged = pl.evaluation.score_answers(labelled, the_judge)
    assert judged["passed"].tolist() == [True, False, True, False]
    assert judged["score_judge"].eq(the_judge.key).all() and judged["score_overall_raw"].tolist() == [5, 1, 5, 1]
    found = agreement(judged, labelled, judge=the_judge, n_boot=0)
    assert found.kappa == pytest.approx(cohen_kappa_score(labelled["human"], ["pass", "fail"] * 2))  # 1.0
    with pytest.raises(ArgumentError, match=r"no column \['output'\]"):
        pl.evaluation.score_answers(labelled.drop(columns="output"), the_judge)


def test_labels_from_the_review_file_beside_the_suite(tmp_path):
    from promptlab.evaluation._reviews import record_verdict, review_path

    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text("name: s\ncases:\n" + "".join(f"  - {{id: c{i}, input: question {i}, expected: answer}}\n"
                                                      for i in range(8)), encoding="utf-8")
    results, labels, the_judge = labelled_run(AGREE)
    suite = pl.load_suite(suite_file)
    results = pl.run(suite, pl.Prompt(name="p", version="1", model="fake:m", system="s"), pl.FakeProvider("answer"),
                     scorer=the_judge, progress=False, cache=False)
    path = review_path(suite_file)
    for case_id, human in zip(labels["case_id"], labels["human"], strict=True):
        record_verdict(path, case_id, human, variant="A", reviewer="ann", suite_file=suite_file)
    from_file = agreement(results, suite_file, judge=the_judge, n_boot=0)
    assert from_file.n == 8 and from_file.kappa == pytest.approx(cohen_kappa_score(AGREE, ["pass", "fail"] * 4))
    assert agreement(results, judge=the_judge, n_boot=0).n == 8  # None: the review file of the run's suite
    assert calibrate(results, suite_file, the_judge, probes=False, n_boot=0).labels == "review file"
