"""The registry commands for CI: exit codes a pipeline gates on (0 ok, 1 refused, 2 usage), help for each."""

from __future__ import annotations

import argparse
import json
import sys

import pytest
from test_registry import SENTIMENT, eval_results, make_repo, shadow_results

import promptlab as pl
from promptlab.cli._registry import EXIT_GATE, EXIT_OK, EXIT_USAGE, add_registry_commands
from promptlab.errors import PromptlabError
from promptlab.registry._registry import Registry

COMMANDS = ["status", "check", "promote", "rollback", "register", "history", "diff"]


def run_cli(*argv: str) -> int:
    """What ``promptlab.cli.main`` does with the registry commands: dispatch, promptlab errors exit 2."""
    parser = argparse.ArgumentParser(prog="promptlab")
    handlers = add_registry_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return handlers[args.command](args)
    except PromptlabError as exc:
        print(f"promptlab {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path)


@pytest.fixture
def suite(repo):
    return pl.load_suite(repo / "suites/sentiment.yaml")


def _cli(repo, *argv: str) -> int:
    return run_cli(argv[0], "--root", str(repo), *argv[1:])


def test_add_registry_commands_returns_a_handler_per_command():
    parser = argparse.ArgumentParser(prog="promptlab")
    handlers = add_registry_commands(parser.add_subparsers(dest="command"))
    assert sorted(handlers) == sorted(COMMANDS) and all(callable(h) for h in handlers.values())
    assert (EXIT_OK, EXIT_GATE, EXIT_USAGE) == (0, 1, 2)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_explains_each_command_and_its_exit_codes(command, capsys):
    with pytest.raises(SystemExit) as done:
        run_cli(command, "--help")
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "Exit codes: 0" in out and "2 bad arguments or input" in out and "--root" in out
    assert len(out.split("\n\n")[1]) > 60  # a real description, not just usage


def test_help_of_gating_commands_documents_exit_1(capsys):
    for command in ("status", "check", "promote"):
        with pytest.raises(SystemExit):
            run_cli(command, "--help")
        assert "; 1 " in capsys.readouterr().out


def test_status_exits_1_when_a_registered_file_was_edited(repo, capsys):
    assert _cli(repo, "register", str(repo / "prompts/classification/sentiment.yaml"), "--actor", "ann") == EXIT_OK
    assert _cli(repo, "status") == EXIT_OK
    out = capsys.readouterr().out
    assert "problems (0)" in out and "draft" in out
    path = repo / "prompts/classification/sentiment.yaml"
    path.write_text(path.read_text().replace("max_tokens: 5", "max_tokens: 6"))
    assert _cli(repo, "status", "--json") == EXIT_GATE
    payload = json.loads(capsys.readouterr().out)
    assert not payload["ok"] and payload["problems"][0]["kind"] == "modified"


def test_status_names_a_hand_appended_history_line_and_moves_refuse(repo, capsys):
    assert _cli(repo, "register", "prompts/classification/sentiment.yaml", "--actor", "ann") == EXIT_OK
    assert _cli(repo, "status") == EXIT_OK
    assert "history: 1 events, hash chain intact" in capsys.readouterr().out
    forged = {"seq": 2, "at": "2025-01-01T00:00:00+00:00", "actor": "mallory", "action": "move",
              "prompt": SENTIMENT, "version": "1.0.0", "from_state": "draft", "to_state": "test"}
    with (repo / "configs/history.jsonl").open("a") as handle:
        handle.write(json.dumps(forged) + "\n")
    assert _cli(repo, "status") == EXIT_GATE  # the old code printed "problems (0)" and exited 0
    out = capsys.readouterr().out
    assert "history: broken at line 2" in out and "history: configs/history.jsonl:2: it has no hash" in out
    assert _cli(repo, "status", "--json") == EXIT_GATE
    payload = json.loads(capsys.readouterr().out)
    assert payload["history"]["bad_line"] == 2 and payload["problems"][0]["ref"] == "configs/history.jsonl:2"
    assert _cli(repo, "promote", SENTIMENT, "1.0.0", "--to", "review", "--reviewer", "bob") == EXIT_USAGE
    assert "configs/history.jsonl:2" in capsys.readouterr().err


def test_a_version_walks_the_lifecycle_from_the_command_line(repo, suite, capsys, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_USER", "ann")
    ref_args = (SENTIMENT, "1.0.0")
    assert _cli(repo, "register", "prompts/classification/sentiment.yaml") == EXIT_OK
    prompt = Registry(repo).get(f"{SENTIMENT}@1.0.0")
    evidence = eval_results(prompt, suite).save(repo / "eval.parquet")
    shadow = shadow_results(prompt, suite).save(repo / "shadow.parquet")

    assert _cli(repo, "check", *ref_args) == EXIT_GATE
    assert "[FAIL] Test suite with 50+ cases" in capsys.readouterr().out
    assert _cli(repo, "promote", *ref_args, "--to", "test") == EXIT_GATE
    err = capsys.readouterr().err
    assert "the test gate refused" in err and "needed: an eval of" in err
    assert _cli(repo, "promote", *ref_args, "--to", "test", "--evidence", str(evidence)) == EXIT_OK
    assert "draft → test" in capsys.readouterr().out
    assert _cli(repo, "promote", *ref_args, "--to", "review", "--reviewer", "ann") == EXIT_GATE
    assert "reviewer 'ann' is an author" in capsys.readouterr().err
    assert _cli(repo, "promote", *ref_args, "--to", "review", "--reviewer", "bob") == EXIT_OK
    assert _cli(repo, "promote", *ref_args, "--to", "staging", "--evidence", str(shadow), "--kind", "shadow") == 0
    assert "staging now serves 1.0.0 (was None)" in capsys.readouterr().out
    assert _cli(repo, "check", *ref_args, "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out)["passed"] is True
    assert _cli(repo, "promote", *ref_args, "--to", "production") == EXIT_OK
    assert _cli(repo, "history", SENTIMENT, "--limit", "2") == EXIT_OK
    out = capsys.readouterr().out
    assert "production" in out and "register" not in out
    assert _cli(repo, "rollback", SENTIMENT, "--env", "production") == EXIT_USAGE
    assert "nothing to roll back to" in capsys.readouterr().err


def test_production_refusal_prints_the_checklist(repo, suite, capsys):
    reg = Registry(repo)
    reg.register(f"{SENTIMENT}@1.1.0", actor="ann")
    prompt = reg.get(f"{SENTIMENT}@1.1.0")
    reg.promote(prompt.ref, "test", evidence=eval_results(prompt, suite, cost_usd=0.5))
    reg.promote(prompt.ref, "review", reviewer="bob")
    reg.promote(prompt.ref, "staging", evidence=shadow_results(prompt, suite))
    assert _cli(repo, "promote", SENTIMENT, "1.1.0", "--to", "production") == EXIT_GATE
    err = capsys.readouterr().err
    assert "production gate refused" in err and "cost: $0.50000 per call (budget $0.01)" in err
    assert "production checklist for sentiment_classifier@1.1.0:" in err and "[PASS] Model version pinned" in err


def test_rollback_diff_and_usage_errors(repo, suite, capsys):
    reg = Registry(repo)
    for version in ("1.0.0", "1.1.0"):
        ref = f"{SENTIMENT}@{version}"
        reg.register(ref, actor="ann")
        prompt = reg.get(ref)
        reg.promote(ref, "test", evidence=eval_results(prompt, suite))
        reg.promote(ref, "review", reviewer="bob")
        reg.promote(ref, "staging", evidence=shadow_results(prompt, suite))
    assert _cli(repo, "rollback", SENTIMENT, "--env", "staging", "--reason", "canary errors", "--actor", "ops") == 0
    assert "staging rolled back 1.1.0 → 1.0.0" in capsys.readouterr().out
    assert reg.get(f"{SENTIMENT}@staging").version == "1.0.0"
    assert _cli(repo, "diff", SENTIMENT, "1.0.0", "1.1.0") == EXIT_OK
    assert "@@ system @@" in capsys.readouterr().out
    assert _cli(repo, "check", "no_such_prompt", "1.0.0") == EXIT_USAGE
    assert "no prompt named 'no_such_prompt'" in capsys.readouterr().err
    assert _cli(repo, "promote", SENTIMENT, "1.1.0", "--to", "test") == EXIT_USAGE  # staging → test: not allowed
    assert "cannot move to 'test'" in capsys.readouterr().err
    assert _cli(repo, "promote", SENTIMENT, "1.0.0", "--to", "production", "--evidence", "nope.parquet") == 2
    with pytest.raises(SystemExit) as bad:
        _cli(repo, "promote", SENTIMENT, "1.0.0", "--to", "prod")
    assert bad.value.code == EXIT_USAGE


def test_wired_into_the_promptlab_command(repo, capsys):
    from promptlab import cli

    assert {"status", "check", "promote", "rollback", "register", "history", "diff"} <= set(cli.COMMANDS)
    assert cli.main(["status", "--root", str(repo)]) == EXIT_OK
    assert cli.main(["check", "--root", str(repo), "nope", "1"]) == EXIT_USAGE
