"""LLM-as-judge: structured verdicts, robust parsing, failure rows, caching, rejudge."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import promptlab as pl
from promptlab.evaluation._judge import (
    SECURITY_REVIEW_CRITERIA,
    Criterion,
    judge,
    noise_decomposition,
    parse_verdict,
    rejudge,
)
from promptlab.providers._anthropic import AnthropicProvider
from promptlab.providers._openai import OpenAIProvider
from promptlab.testing import FakeLLMServer

TASK = pl.Prompt(name="review", version="1", model="claude-3-5-sonnet-20241022",
                 system="Review this code for security issues.")
VERDICT = {"accuracy": {"score": 5, "reason": "correct"}, "completeness": {"score": 3, "reason": "misses XSS"},
           "actionability": {"score": 4, "reason": "fixes given"}, "severity": {"score": 4, "reason": "ok"}}


def code_suite() -> pl.Suite:
    suite = pl.Suite("security")
    suite.add_case("query = 'SELECT * FROM users WHERE id=' + user_id", "SQL injection; use parameters", id="sqli")
    suite.add_case("os.system('ping ' + host)", "command injection; use subprocess with a list", id="cmd")
    return suite


def answers(request: pl.providers.Request) -> str:
    return "Found SQL injection. Use parameterised queries." if "SELECT" in request.messages[-1].content else "ok"


def test_parse_verdict_reads_json_inside_text_and_plain_lines():
    text = 'Sure! Here it is: {"accuracy": {"score": 4, "reason": "fine"}} hope that helps'
    assert parse_verdict(text, ["accuracy"]) == {"accuracy": {"score": 4, "reason": "fine"}}
    lines = "Accuracy: 4 - mostly right\ncompleteness = 2/5, misses one\nnoise"
    parsed = parse_verdict(lines, ["accuracy", "completeness"])
    assert parsed["accuracy"]["score"] == 4 and parsed["completeness"]["score"] == 2
    assert parse_verdict("no verdict here", ["accuracy"]) == {}


def test_judge_scores_per_criterion_with_the_security_rubric():
    fake_judge = pl.FakeProvider(json.dumps(VERDICT), model_name="judge")
    scorer = judge(SECURITY_REVIEW_CRITERIA, fake_judge, pass_threshold=4.0)
    results = pl.run(code_suite(), TASK, pl.FakeProvider(answers), scorer=scorer, progress=False, cache=False)
    row = results.df.iloc[0]
    assert row["score_accuracy"] == 5 and row["score_completeness"] == 3
    assert row["score_overall_raw"] == pytest.approx(4.0)  # mean of 5, 3, 4, 4
    assert row["score"] == pytest.approx((4.0 - 1) / 4)  # rescaled to [0, 1]
    assert bool(row["passed"]) is True and "completeness 3: misses XSS" in row["reason"]
    request = fake_judge.calls[0]
    assert "TASK:" in request.messages[-1].content and "REFERENCE" in request.messages[-1].content


def test_weighted_criteria():
    fake_judge = pl.FakeProvider('{"a": {"score": 5, "reason": ""}, "b": {"score": 1, "reason": ""}}')
    scorer = judge([Criterion("a", "A", 3.0), ("b", "B", 1.0)], fake_judge)
    score = scorer(code_suite().cases[0], "answer")
    assert score.details["overall_raw"] == pytest.approx(4.0) and score.passed is None


def test_unparseable_output_is_retried_then_a_judge_failure_row():
    replies = iter(["I think it is good", "still not json", '{"accuracy": {"score": 9}}'])
    fake_judge = pl.FakeProvider(lambda request: next(replies))
    scorer = judge(["accuracy"], fake_judge, retries=2, cache=False)
    results = pl.run(code_suite().filter(lambda c: c.id == "sqli"), TASK, pl.FakeProvider(answers),
                     scorer=scorer, progress=False, cache=False, max_error_rate=1.0)
    row = results.df.iloc[0]
    assert len(fake_judge.calls) == 3
    assert row["error_type"] == "judge_failure" and pd.isna(row["score"]) and pd.isna(row["passed"])
    assert "no score in [1, 5]" in row["error"] and row["output"].startswith("Found SQL")


def test_judge_calls_are_cached(tmp_path):
    cache = pl.ResponseCache(tmp_path / "judge.sqlite")
    fake_judge = pl.FakeProvider(json.dumps(VERDICT))
    scorer = judge(SECURITY_REVIEW_CRITERIA, fake_judge, cache=cache)
    for _ in range(2):
        pl.run(code_suite(), TASK, pl.FakeProvider(answers), scorer=scorer, progress=False, cache=False)
    assert len(fake_judge.calls) == 2  # the second run's judge calls were cache hits


@pytest.mark.parametrize("vendor", ["anthropic", "openai"])
def test_structured_output_through_the_real_sdks(vendor):
    with FakeLLMServer(answers=lambda body: VERDICT if ("tools" in body or "response_format" in body) else None) \
            as server:
        if vendor == "anthropic":
            provider = AnthropicProvider(base_url=server.anthropic_base_url, api_key="k")
        else:
            provider = OpenAIProvider(base_url=server.openai_base_url, api_key="k")
        scorer = judge(SECURITY_REVIEW_CRITERIA, provider, cache=False)
        score = scorer(code_suite().cases[0], "Found SQL injection.")
        body = server.bodies()[-1]
    assert score.details["accuracy"] == 5 and score.error_type is None
    assert ("tool_choice" in body) if vendor == "anthropic" else (body["response_format"]["type"] == "json_schema")


def test_judge_failure_through_the_fake_server():
    bad = {"accuracy": {"score": 0, "reason": "off the scale"}}
    with FakeLLMServer(answers=lambda body: bad) as server:
        provider = OpenAIProvider(base_url=server.openai_base_url, api_key="k")
        scorer = judge(["accuracy"], provider, retries=1, cache=False)
        score = scorer(code_suite().cases[0], "answer")
        assert server.request_count == 2
    assert score.error_type == "judge_failure" and score.value is None


def test_judge_server_errors_become_judge_failures():
    with FakeLLMServer(fault_schedule=["bad_request", "bad_request"]) as server:
        provider = OpenAIProvider(base_url=server.openai_base_url, api_key="k")
        score = judge(["accuracy"], provider, retries=1, cache=False)(code_suite().cases[0], "answer")
    assert score.error_type == "judge_failure" and "bad_request" in score.reason


def test_cached_verdicts_never_answer_for_another_judge_endpoint(tmp_path):
    import socket

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    cache = pl.ResponseCache(tmp_path / "judge.sqlite")
    case = code_suite().cases[0]
    with FakeLLMServer(answers=lambda body: VERDICT) as server:
        live = OpenAIProvider(base_url=server.openai_base_url, api_key="k")
        assert judge(["accuracy"], live, retries=0, cache=cache)(case, "answer").details["accuracy"] == 5
    dead = OpenAIProvider(base_url=f"http://127.0.0.1:{closed}/v1", api_key="k")
    score = judge(["accuracy"], dead, retries=0, cache=cache)(case, "answer")
    assert score.error_type == "judge_failure" and "connection" in score.reason
    assert len(cache) == 1  # the first endpoint's verdict stays, for that endpoint only


def test_rejudge_separates_judge_noise_from_answer_noise():
    rng = np.random.default_rng(0)

    def noisy_judge(request: pl.providers.Request) -> str:
        return json.dumps({"accuracy": {"score": int(rng.integers(2, 5)), "reason": "r"}})

    scorer = judge(["accuracy"], pl.FakeProvider(noisy_judge), cache=False)
    suite = pl.Suite("many")
    for i in range(20):
        suite.add_case(f"snippet {i}", "a fix", id=f"s{i}")
    results = pl.run(suite, TASK, pl.FakeProvider("the same answer"), scorer=scorer, repeats=3, progress=False,
                     cache=False)
    again = rejudge(results, scorer, k=4)
    assert len(again) == 20 * 3 * 4 and set(again["judge_repeat"]) == {1, 2, 3, 4}
    noise = noise_decomposition(again)
    assert noise.loc[0, "k"] == 4 and noise.loc[0, "judge_sd"] > 0
    # the answers are identical across repeats, so answer noise is (near) zero next to the judge's
    assert noise.loc[0, "answer_sd"] < 0.5 * noise.loc[0, "judge_sd"]


def test_noise_decomposition_by_hand():
    # two cases, two answers each, k=2 judge scores per answer
    frame = pd.DataFrame({
        "variant": "A", "model": "m", "case_id": ["x"] * 4 + ["y"] * 4,
        "repeat": [0, 0, 1, 1] * 2, "judge_repeat": [1, 2] * 4,
        "score": [0.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.0, 0.0]})
    out = noise_decomposition(frame).iloc[0]
    judge_var = np.mean([0.5, 0.0, 0.0, 0.0])  # var of (0,1), (1,1), (.5,.5), (0,0) with ddof=1
    means = {"x": [0.5, 1.0], "y": [0.5, 0.0]}
    answer_var = np.mean([np.var(v, ddof=1) for v in means.values()]) - judge_var / 2
    case_var = np.var([0.75, 0.25], ddof=1)
    assert out["judge_sd"] == pytest.approx(np.sqrt(judge_var))
    assert out["answer_sd"] == pytest.approx(np.sqrt(answer_var))
    assert out["case_sd"] == pytest.approx(np.sqrt(case_var))


def test_judge_arguments_are_checked():
    with pytest.raises(ValueError, match="model"):
        judge(["accuracy"])
    with pytest.raises(ValueError, match="scale"):
        judge(["accuracy"], pl.FakeProvider(), scale=(5, 1))
    with pytest.raises(ValueError, match="at least one criterion"):
        judge([], pl.FakeProvider())


def test_a_judge_is_built_without_a_key_and_asks_for_it_only_when_it_judges(monkeypatch):
    from promptlab.errors import MissingAPIKeyError

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    rubric = pl.judge(["accuracy"], model="anthropic:claude-3-5-sonnet-20241022", cache=False)  # loading an eval file
    assert rubric.model_id == "anthropic:claude-3-5-sonnet-20241022" and "provider" not in vars(rubric)
    case = pl.Case(id="c", input="What is 2 + 2?", expected="4")
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        rubric(case, "4")
