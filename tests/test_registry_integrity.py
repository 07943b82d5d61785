"""Registry integrity on hand-edited files (issue 12, item 8): aliases the history does not back are refused,
the history is hash-chained (a hand-appended or edited line is named), versions with the same behaviour are not
registered twice, and the config files are read strictly with one schema for alert rules (item 9)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import time
from pathlib import Path

import pytest
import yaml
from test_registry import SENTIMENT, eval_results, make_repo, shadow_results, walk_to

import promptlab as pl
from promptlab.authoring._prompt import ChangelogEntry
from promptlab.errors import AlertConfigError, IntegrityError, PromptUnavailableError, RegistryError
from promptlab.production import ClientPolicy, ProductionClient, load_alert_rules
from promptlab.providers._fake import FakeProvider
from promptlab.registry._registry import Registry

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bad_registry"
HISTORY = "configs/history.jsonl"
V1, V2 = f"{SENTIMENT}@1.0.0", f"{SENTIMENT}@1.1.0"


@pytest.fixture
def repo(tmp_path) -> Path:
    return make_repo(tmp_path)


@pytest.fixture
def reg(repo) -> Registry:
    return Registry(repo)


@pytest.fixture
def suite(repo) -> pl.Suite:
    return pl.load_suite(repo / "suites/sentiment.yaml")


def _live_in_production(reg: Registry, suite: pl.Suite) -> None:
    """1.0.0 in production through every gate; 1.1.0 registered and approved in review only."""
    for ref in (V1, V2):
        reg.register(ref, actor="ann")
    walk_to(reg, V1, "production", suite)
    walk_to(reg, V2, "review", suite)


def _point_alias(repo: Path, env: str, version: str, **changes: str) -> Path:
    """Hand-edit configs/<env>.yaml's entry for the sentiment prompt (what the issue's user did)."""
    path = repo / f"configs/{env}.yaml"
    data = yaml.safe_load(path.read_text())
    entry = data["prompts"][SENTIMENT]
    entry.update(version=version, **changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _lines(repo: Path) -> list[dict]:
    return [json.loads(line) for line in (repo / HISTORY).read_text().splitlines() if line.strip()]


def _write_lines(repo: Path, lines: list[dict]) -> None:
    (repo / HISTORY).write_text("".join(json.dumps(line) + "\n" for line in lines))


# ---- aliases are verified when they are resolved -------------------------------------------------------------
def test_a_hand_edited_production_alias_is_refused_by_get(reg, repo, suite):
    _live_in_production(reg, suite)
    assert reg.get(f"{SENTIMENT}@production").version == "1.0.0"
    v2 = reg.get(V2)
    _point_alias(repo, "production", "1.1.0", file="prompts/classification/sentiment_v2.yaml",
                 content_hash=v2.content_hash)
    with pytest.raises(IntegrityError) as info:  # the old code served 1.1.0 here
        reg.get(f"{SENTIMENT}@production")
    message = str(info.value)
    assert "configs/production.yaml says 'sentiment_classifier' is at '1.1.0'" in message
    assert "the history says '1.0.0'" in message and "sentiment_classifier@1.1.0 is in state 'review'" in message
    assert f"promptlab promote {SENTIMENT} VERSION --to production" in message
    assert "git checkout -- configs/production.yaml" in message
    assert [p.kind for p in reg.verify()] == ["alias"]  # status and get agree
    with pytest.raises(IntegrityError, match="the alias file was changed by hand"):
        reg.get(SENTIMENT, version="production")


def test_an_alias_with_a_changed_hash_or_a_removed_entry_is_refused(reg, repo, suite):
    _live_in_production(reg, suite)
    path = _point_alias(repo, "production", "1.0.0", content_hash="0" * 16)
    with pytest.raises(IntegrityError, match=r"records content hash '0{16}' for .*registered it with"):
        reg.get(f"{SENTIMENT}@production")
    path.write_text("environment: production\nprompts: {}\n")
    with pytest.raises(IntegrityError, match=r"has no entry for .* history says production serves .*@1.0.0"):
        reg.get(f"{SENTIMENT}@production")


def test_an_alias_nobody_promoted_is_refused_and_a_rollback_is_served(reg, repo, suite):
    reg.register(V1, actor="ann")
    v1 = reg.get(V1)
    (repo / "configs/staging.yaml").write_text(yaml.safe_dump({"environment": "staging", "prompts": {SENTIMENT: {
        "version": "1.0.0", "file": "prompts/classification/sentiment.yaml", "content_hash": v1.content_hash}}}))
    with pytest.raises(IntegrityError, match="history says nothing is live in staging.*state 'draft'"):
        reg.get(f"{SENTIMENT}@staging")
    (repo / "configs/staging.yaml").unlink()
    _live_in_production(reg, suite)
    shadow = shadow_results(reg.get(V2), suite, reg.get(f"{SENTIMENT}@production"))
    reg.promote(V2, "staging", evidence=shadow, kind="shadow", actor="ann")
    reg.promote(V2, "production", actor="ann")
    reg.rollback(SENTIMENT, "production", reason="format failures up", actor="ops")
    assert reg.get(f"{SENTIMENT}@production").version == "1.0.0"  # a rollback is a move the history backs


def test_the_production_client_treats_a_tampered_alias_like_any_registry_failure(reg, repo, suite):
    _live_in_production(reg, suite)
    provider = FakeProvider("positive")
    policy = ClientPolicy(registry_ttl_s=0.0, retries=0)
    client = ProductionClient(reg, SENTIMENT, provider, policy=policy)
    assert client.complete("great").version == "1.0.0"
    _point_alias(repo, "production", "1.1.0", content_hash=reg.get(V2).content_hash)
    answer = client.complete("great")  # the last good (verified) version keeps serving, counted as stale
    assert answer.version == "1.0.0" and client.stale_serves == 1
    fresh = ProductionClient(reg, SENTIMENT, provider, policy=policy)
    with pytest.raises(PromptUnavailableError, match=r"\(IntegrityError\)"):
        fresh.complete("great")


# ---- the history is hash-chained -----------------------------------------------------------------------------------
def _by_hand(line: dict) -> str:
    """The chain's hash, computed here without promptlab: SHA-256 of the canonical JSON (sorted keys, no spaces,
    UTF-8) of the line without its own `hash`."""
    body = {k: v for k, v in line.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_every_event_carries_the_hash_of_the_one_before(reg, repo, suite):
    reg.register(V1, actor="ann")
    walk_to(reg, V1, "review", suite)
    lines = _lines(repo)
    assert lines[0]["prev_hash"] == "0" * 64
    assert all(line["hash"] == _by_hand(line) for line in lines)
    assert [line["prev_hash"] for line in lines[1:]] == [line["hash"] for line in lines[:-1]]
    assert reg.chain().intact and reg.chain().events == 3
    assert "3 events, hash chain intact" in reg.status().text()


def test_a_hand_appended_line_is_named_by_verify_and_status_and_stops_every_move(reg, repo, suite):
    reg.register(V1, actor="ann")
    walk_to(reg, V1, "test", suite)
    forged = {"seq": 3, "at": "2025-01-01T00:00:00+00:00", "actor": "mallory", "action": "move",
              "prompt": SENTIMENT, "version": "1.0.0", "from_state": "test", "to_state": "review",
              "reviewer": "bob"}
    with (repo / HISTORY).open("a") as handle:
        handle.write(json.dumps(forged) + "\n")
    (problem,) = reg.verify()  # the old code saw no problem and accepted the forged review
    assert problem.kind == "history" and problem.ref == f"{HISTORY}:3"
    assert "has no hash" in problem.message and "git checkout -- configs/history.jsonl" in problem.message
    status = reg.status()
    assert not status.ok and "history: broken at line 3" in status.text()
    with pytest.raises(IntegrityError, match=r"history.jsonl:3: .*has no hash"):
        reg.promote(V1, "staging", evidence=eval_results(reg.get(V1), suite), kind="shadow")
    with pytest.raises(IntegrityError, match=r"history.jsonl:3"):
        reg.get(V1)
    versions = reg.versions(SENTIMENT).set_index("version")
    assert len(reg.history()) == 3 and versions.loc["1.0.0", "state"] == "test"  # listings read up to line 2


@pytest.mark.parametrize(("tamper", "line", "reason"), [
    (lambda lines: lines[1].update(actor="mallory"), 2, "content does not match its hash"),
    (lambda lines: lines[1].update(actor="mallory", hash=_by_hand({**lines[1], "actor": "mallory"})), 3,
     "prev_hash does not match the line before"),
    (lambda lines: lines.pop(1), 2, "seq 3 where 2 was expected"),
    (lambda lines: lines.insert(1, lines.pop(2)), 2, "seq 3 where 2 was expected"),
    (lambda lines: lines.append(dict(lines[-1])), 4, "seq 3 where 4 was expected"),
])
def test_edited_removed_reordered_or_copied_lines_are_named(reg, repo, suite, tamper, line, reason):
    reg.register(V1, actor="ann")
    walk_to(reg, V1, "review", suite)
    lines = _lines(repo)
    tamper(lines)
    _write_lines(repo, lines)
    problems = [p for p in reg.verify() if p.kind == "history"]
    assert [p.ref for p in problems] == [f"{HISTORY}:{line}"] and reason in problems[0].message


def test_a_line_that_is_not_an_event_is_named_and_status_still_runs(reg, repo):
    reg.register(V1, actor="ann")
    with (repo / HISTORY).open("a") as handle:
        handle.write("{not json\n")
    (problem,) = reg.verify()
    assert problem.ref == f"{HISTORY}:2" and "not a history event (not JSON" in problem.message
    assert not reg.status().ok
    with pytest.raises(IntegrityError, match="history.jsonl:2"):
        reg.history()


def test_a_legacy_history_stays_valid_and_the_next_event_anchors_it(reg, repo, suite):
    reg.register(V1, actor="ann")
    walk_to(reg, V1, "test", suite)
    legacy = [{k: v for k, v in line.items() if k not in ("hash", "prev_hash")} for line in _lines(repo)]
    _write_lines(repo, legacy)  # as written before hashing
    assert reg.verify() == () and reg.get(V1)
    assert "written before hash chaining (unchained)" in reg.status().text()
    reg.promote(V1, "review", reviewer="bob", actor="ann")
    chain = reg.chain()
    assert chain.intact and (chain.events, chain.legacy) == (3, 2) and reg.verify() == ()
    anchor = hashlib.sha256(("0" * 64).encode() + b"\n" + _canonical(legacy[0])).hexdigest()
    anchor = hashlib.sha256(anchor.encode() + b"\n" + _canonical(legacy[1])).hexdigest()
    assert _lines(repo)[2]["prev_hash"] == anchor
    lines = _lines(repo)
    lines[0]["actor"] = "mallory"  # editing a legacy line is detected once it is anchored
    _write_lines(repo, lines)
    assert [p.ref for p in reg.verify() if p.kind == "history"] == [f"{HISTORY}:3"]


def _canonical(line: dict) -> bytes:
    return json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _attach_many(root: str, ref: str, evidence: str, times: int, barrier) -> None:
    barrier.wait(timeout=120)
    reg = Registry(root)
    for _ in range(times):
        reg.attach(ref, evidence, actor="worker")


def test_processes_appending_at_once_keep_a_valid_chain(reg, repo, suite):
    reg.register(V1, actor="ann")
    evidence = str(eval_results(reg.get(V1), suite).save(repo / "eval.parquet"))
    workers, times = 3, 5
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)
    processes = [ctx.Process(target=_attach_many, args=(str(repo), V1, evidence, times, barrier))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=180)
    assert [process.exitcode for process in processes] == [0] * workers
    lines = _lines(repo)
    assert len(lines) == 1 + workers * times and [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert all(line["hash"] == _by_hand(line) for line in lines)
    assert [line["prev_hash"] for line in lines[1:]] == [line["hash"] for line in lines[:-1]]
    assert reg.verify() == ()


# ---- one version per behaviour -----------------------------------------------------------------------------------
def test_registering_the_same_behaviour_under_a_new_version_is_refused(reg, repo):
    original = reg.register(V1, actor="ann")
    entry = ChangelogEntry(version="1.0.1", author="ann", changes="Same prompt, new number.")
    copy = original.with_changes(version="1.0.1", changelog=(entry, *original.changelog))
    with pytest.raises(RegistryError) as info:  # the old code registered a second, identical version
        reg.register(copy, actor="ann")
    message = str(info.value)
    assert f"{SENTIMENT}@1.0.0 (registered by ann from prompts/classification/sentiment.yaml)" in message
    assert original.content_hash in message and "would be a duplicate" in message
    assert not (repo / "prompts/classification/sentiment_classifier_v1.0.1.yaml").exists()
    assert reg.register(V1, actor="bob") == original  # re-registering the same version changes nothing
    assert reg.history()["action"].tolist() == ["register"]


# ---- one schema for alert rules; strict config files ------------------------------------------------------------
def test_a_regression_rule_that_alerting_accepts_works_in_the_checklist(reg, repo, suite):
    monitoring = repo / "configs/monitoring.yaml"
    monitoring.write_text("rules:\n  - {name: success_drop, metric: success_rate, regression: 0.02,"
                          " severity: critical}\n")
    assert load_alert_rules(monitoring).rules[0].kind == "regression"
    reg.register(V2, actor="ann")
    item = reg.checklist(V2)["monitoring"]  # the old code raised: "regression" was not a checklist key
    assert item.status == "pass" and "success_rate: no drop > 0.02 against the baseline" in item.reason


def test_monitoring_errors_name_the_line_and_the_closest_key(tmp_path):
    path = tmp_path / "monitoring.yaml"
    path.write_text("rules:\n  - name: s\n    metric: success_rate\n    regresion: 0.02\n")
    with pytest.raises(AlertConfigError) as info:
        load_alert_rules(path)
    message = str(info.value)
    assert f"{path}:4: rules.0.regresion: unknown key" in message
    assert "Did you mean 'regression'?" in message and "Allowed keys: name, metric, min, max" in message


def _bad_registry_cases() -> list[tuple[str, list[str]]]:
    return list(yaml.safe_load((FIXTURES / "EXPECTED.yaml").read_text()).items())


_TARGETS = {"gates": "configs/gates.yaml", "monitoring": "configs/monitoring.yaml",
            "production": "configs/production.yaml", "history": HISTORY}


@pytest.mark.parametrize(("name", "expected"), _bad_registry_cases())
def test_bad_registry_files_give_specific_errors_fast(repo, name, expected):
    target = repo / _TARGETS[name.split("_")[0]]
    shutil.copy(FIXTURES / name, target)
    reg = Registry(repo)
    started = time.perf_counter()
    if name.startswith("history"):
        problems = [p for p in reg.verify() if p.kind == "history"]
        assert len(problems) == 1
        message = problems[0].message
    else:
        read = {"gates": reg.policy, "monitoring": lambda: reg.checklist(V2), "production": reg.status}
        with pytest.raises((RegistryError, AlertConfigError)) as info:
            read[name.split("_")[0]]()
        message = str(info.value)
    assert time.perf_counter() - started < 5
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from: {message}"
