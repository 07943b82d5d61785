"""The production checklist: every item evaluated from evidence and configuration, with a reason per item."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_registry import SENTIMENT, eval_results, make_repo, walk_to

import promptlab as pl
from promptlab.errors import AlertConfigError, RegistryError
from promptlab.production._alertrules import RuleSpec
from promptlab.registry._checklist import (
    Checklist,
    Facts,
    Fallback,
    build_checklist,
    load_fallbacks,
    load_monitoring,
)
from promptlab.registry._evidence import EvalSummary
from promptlab.registry._lifecycle import HistoryEvent, Thresholds
from promptlab.registry._registry import Registry

ROOT = Path(__file__).resolve().parent.parent
ITEMS = ["suite", "accuracy", "format", "latency", "cost", "pinned", "monitoring", "fallback", "changelog", "review"]


@pytest.fixture
def prompt() -> pl.Prompt:
    return pl.load_prompt(ROOT / "prompts/classification/sentiment_v2.yaml")


def _eval(**changes) -> EvalSummary:
    base = EvalSummary(cases=74, calls=74, categories={"happy_path": 30, "edge_case": 26, "adversarial": 18},
                       accuracy=0.93, ci_low=0.85, ci_high=0.97, no_verdict=0, output_format="labels",
                       format_compliance=1.0, p95_latency_s=0.8, cost_per_call_usd=0.0004,
                       models=("anthropic:claude-3-5-sonnet-20241022",), on_pinned_model=True)
    return dataclasses.replace(base, **changes)


def _event(action: str, **fields) -> HistoryEvent:
    return HistoryEvent(seq=1, at="2024-12-03T10:00:00+00:00", actor="ann", action=action, prompt=SENTIMENT,
                        version="1.1.0", **fields)


def _facts(prompt: pl.Prompt, **changes) -> Facts:
    base = Facts(prompt=prompt, thresholds=Thresholds(output_format="labels"), eval=_eval(),
                 registered=_event("register"), intact=True,
                 review=_event("move", to_state="review", reviewer="bob"),
                 rules=(RuleSpec(name="success", metric="success_rate", min=0.95),),
                 fallback=Fallback(default_output="neutral"))
    return dataclasses.replace(base, **changes)


def test_everything_in_order_passes_with_a_reason_per_item(prompt):
    checklist = build_checklist(_facts(prompt))
    assert [item.key for item in checklist] == ITEMS
    assert checklist.passed and checklist.failures == () and len(checklist) == 10
    assert all(item.reason for item in checklist)
    assert checklist["accuracy"].reason == "93.0% [95% CI 85.0%, 97.0%] on 74 calls (threshold 85%; 0 without verdict)"
    assert checklist["suite"].reason == "74 cases (happy_path 30, edge_case 26, adversarial 18)"
    assert checklist["latency"].reason == "p95 0.800 s (SLA 5 s)"
    assert checklist["review"].reason.startswith("approved by bob")
    assert repr(checklist) == "Checklist(sentiment_classifier@1.1.0: 10/10 pass — all pass)"


@pytest.mark.parametrize(("changes", "key", "reason"), [
    ({"eval": _eval(cases=40)}, "suite", "40 cases"),
    ({"eval": _eval(categories={"happy_path": 60})}, "suite", "missing ['edge_case', 'adversarial']"),
    ({"eval": _eval(accuracy=0.8)}, "accuracy", "80.0%"),
    ({"eval": _eval(on_pinned_model=False, models=("local:gemma-3-270m",))}, "accuracy", "not the pinned"),
    ({"eval": _eval(format_compliance=0.97)}, "format", "labels format compliance 97.0% is below 99%"),
    ({"eval": _eval(p95_latency_s=7.5)}, "latency", "p95 7.500 s (SLA 5 s)"),
    ({"eval": _eval(p95_latency_s=None)}, "latency", "p95 is unknown"),
    ({"eval": _eval(cost_per_call_usd=0.02)}, "cost", "$0.02000 per call (budget $0.01)"),
    ({"eval": _eval(cost_per_call_usd=None)}, "cost", "cost per call unknown"),
    ({"rules": ()}, "monitoring", "no alert rule applies"),
    ({"fallback": None}, "fallback", "no fallback for this prompt"),
    ({"fallback": Fallback(models=("gpt-4o",))}, "fallback", "floating: ['gpt-4o']"),
    ({"registered": None}, "changelog", "is not registered"),
    ({"intact": False}, "changelog", "changed after registration"),
    ({"review": None}, "review", "no review approval recorded"),
    ({"review": _event("move", to_state="review", reviewer="promptlab team")}, "review", "(an author)"),
])
def test_each_item_fails_for_its_own_reason(prompt, changes, key, reason):
    checklist = build_checklist(_facts(prompt, **changes))
    assert [item.key for item in checklist.failures] == [key]
    assert reason in checklist[key].reason and checklist[key].needed
    assert f"failing: {key}" in repr(checklist)


def test_a_floating_model_fails_the_pinning_item(prompt):
    floating = prompt.with_changes(model="claude-3-5-sonnet-latest")
    item = build_checklist(_facts(floating))["pinned"]
    assert item.status == "fail" and "latest" in item.reason and "dated snapshot" in item.needed
    assert build_checklist(_facts(prompt.with_changes(model="gpt-4o")))["pinned"].status == "fail"
    assert build_checklist(_facts(prompt.with_changes(model="gpt-4o-2024-08-06")))["pinned"].status == "pass"


def test_without_an_eval_every_evidence_item_fails_and_says_what_to_attach(prompt):
    checklist = build_checklist(_facts(prompt, eval=None))
    failing = [item.key for item in checklist.failures]
    assert failing == ["suite", "accuracy", "format", "latency", "cost"]
    assert all("attach an eval" in item.needed for item in checklist.failures)


def test_free_text_output_makes_format_not_applicable(prompt):
    checklist = build_checklist(_facts(prompt, thresholds=Thresholds(output_format="text")))
    assert checklist["format"].status == "n/a" and checklist["format"].ok and checklist.passed
    with pytest.raises(KeyError, match="no checklist item 'speed'"):
        checklist["speed"]


def test_checklist_displays_as_a_table_and_as_text(prompt):
    evil = prompt.with_changes(model="<script>alert(1)</script>")
    checklist = build_checklist(_facts(evil))
    html = checklist._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "✗ fail" in html and "Production checklist" in html
    text = checklist.text()
    assert text.splitlines()[0] == "production checklist for sentiment_classifier@1.1.0:"
    assert "[FAIL] Model version pinned" in text and "needed:" in text
    frame = checklist.to_frame()
    assert list(frame.columns) == ["key", "title", "status", "reason", "needed"] and len(frame) == 10
    assert isinstance(checklist, Checklist) and "\n" not in repr(checklist)


# ---- the configs it reads -----------------------------------------------------------------------------------------
def test_bundled_monitoring_rules_are_the_articles_thresholds():
    rules = {rule.metric: rule for rule in load_monitoring(ROOT / "configs/monitoring.yaml").rules}
    assert rules["success_rate"].min == 0.95 and rules["format_failure_rate"].max == 0.05
    assert rules["p95_latency_ms"].max == 5000 and rules["quality_score"].min == 3.5
    assert rules["success_rate"].describe() == "success_rate ≥ 0.95"


def test_bundled_fallbacks_cover_the_bundled_prompts():
    fallbacks = load_fallbacks(ROOT / "configs/fallbacks.yaml").prompts
    assert {SENTIMENT, "ticket_intent"} <= set(fallbacks)
    assert all(fb.defined for fb in fallbacks.values())
    assert fallbacks[SENTIMENT].describe() == "models anthropic:claude-3-5-haiku-20241022, then answer 'neutral'"


def test_rules_can_target_some_prompts(tmp_path):
    path = tmp_path / "monitoring.yaml"
    path.write_text("rules:\n  - {name: q, metric: quality_score, min: 3.5, prompts: [a]}\n"
                    "  - {name: s, metric: success_rate, min: 0.9}\n")
    config = load_monitoring(path)
    assert [r.name for r in config.rules_for("a")] == ["q", "s"] and [r.name for r in config.rules_for("b")] == ["s"]
    assert load_monitoring(tmp_path / "missing.yaml").rules == ()


@pytest.mark.parametrize(("text", "match"), [
    ("rules:\n  - {name: x, metric: success_rate, min: 0.9, max: 1}\n",
     r":2: .*exactly one of `min:`, `max:` or `regression:`"),
    ("rules:\n  - {name: x, metric: success_rate, minimum: 0.9}\n",
     r":2: rules.0.minimum: unknown key.*Did you mean 'min'\? Allowed keys: name, metric, min, max, regression"),
    ("rules: [\n", r":2: not valid YAML"),
])
def test_invalid_monitoring_files_say_what_and_where(tmp_path, text, match):
    # the checklist reads monitoring.yaml with the alerting's reader, so the errors are the alerting's
    path = tmp_path / "monitoring.yaml"
    path.write_text(text)
    with pytest.raises(AlertConfigError, match=match):
        load_monitoring(path)


def test_invalid_fallback_files_name_the_allowed_keys(tmp_path):
    path = tmp_path / "fallbacks.yaml"
    path.write_text("prompts:\n  a:\n    model: gpt-4o\n")
    with pytest.raises(RegistryError, match=r"prompts.a.model: unknown key.*'models'\? Allowed keys: models, default_"):
        load_fallbacks(path)


# ---- from the registry -------------------------------------------------------------------------------------------
def test_registry_checklist_reads_evidence_history_and_configs(tmp_path):
    repo = make_repo(tmp_path)
    reg = Registry(repo)
    ref = f"{SENTIMENT}@1.1.0"
    assert reg.checklist(ref)["changelog"].reason == f"{ref} is not registered"
    reg.register(ref, actor="ann")
    suite = pl.load_suite(repo / "suites/sentiment.yaml")
    prompt = reg.get(ref)
    slow = eval_results(prompt, suite, latency_s=6.0)
    preview = reg.checklist(ref, evidence=slow)  # counted, not stored
    assert [i.key for i in preview.failures] == ["latency", "review"] and reg.evidence(ref) == []
    walk_to(reg, ref, "staging", suite)
    checklist = reg.checklist(ref)
    assert checklist.passed, checklist.text()
    assert checklist["changelog"].reason.startswith("registered by ann at ")
