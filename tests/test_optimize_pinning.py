"""Pinning: floating aliases, served-model drift behind a pinned name (through the real OpenAI SDK against the
loopback fake server), and the lockfile."""

from __future__ import annotations

import pytest
import yaml

import promptlab as pl
from promptlab.errors import LockfileError, ModelDriftError
from promptlab.evaluation._results import build_frame
from promptlab.optimize import check_lockfile, floating_aliases, load_lockfile, served_model_drift, write_lockfile
from promptlab.providers import is_pinned, pin_status
from promptlab.testing import FakeLLMServer, last_user_text

PINNED_ASK = "openai:gpt-4o-2024-08-06"


@pytest.mark.parametrize(("model", "pinned", "suggestion"), [
    ("claude-3-5-sonnet-latest", False, "anthropic:claude-3-5-sonnet-20241022"),
    ("gpt-4o", False, "openai:gpt-4o-2024-11-20"),  # the newest dated gpt-4o in the price table
    ("gpt-4o-mini", False, "openai:gpt-4o-mini-2024-07-18"),
    ("claude-3-opus", False, "anthropic:claude-3-opus-20240229"),
    ("openai:o1", False, None),
    ("claude-3-5-sonnet-20241022", True, None),
    ("gpt-4o-2024-08-06", True, None),
    ("gpt-4-0613", True, None),
    ("local:gemma-3-270m", True, None),
    ("fake:anything", True, None),
])
def test_pin_status(model, pinned, suggestion):
    status = pin_status(model)
    assert (status.pinned, status.suggestion) == (pinned, suggestion)
    assert is_pinned(model) is pinned


def test_reasons_say_why():
    assert pin_status("claude-3-5-sonnet-latest").reason.startswith("ends with 'latest'")
    assert pin_status("gpt-4o").reason.startswith("no date suffix")
    assert pin_status("local:gemma-3-270m").reason == "a fixed local model file"
    assert pin_status("mystery").reason.startswith("cannot tell the provider")


def test_floating_aliases_in_prompts_files_and_results(tmp_path):
    floating = pl.load_prompt("prompts/classification/sentiment.yaml").with_changes(model="gpt-4o")
    floating.save(tmp_path / "prompts" / "p.yaml")
    frame = build_frame([{"case_id": "1", "model": "anthropic:claude-3-5-sonnet-latest",
                          "model_pinned": "claude-3-5-sonnet-20241022"}], "r")
    found = floating_aliases(floating, tmp_path / "prompts", pl.Results(frame), "prompts")
    assert found[["model", "source"]].values.tolist() == [
        ["openai:gpt-4o", "prompt sentiment_classifier@1.0.0"],
        ["openai:gpt-4o", str(tmp_path / "prompts" / "p.yaml")],
        ["anthropic:claude-3-5-sonnet-latest", "results column 'model'"]]
    assert not found["pinned"].any()
    everything = floating_aliases("prompts", include_pinned=True)
    assert len(everything) >= 4 and everything["pinned"].all()  # the bundled prompts are all pinned


# ---- drift through the real SDK ---------------------------------------------------------------------------
def _suite() -> pl.Suite:
    suite = pl.Suite("mini")
    for i in range(6):
        suite.add_case(f"text {i}", "positive")
    return suite


PROMPT = pl.Prompt(name="p", version="1", model=PINNED_ASK, max_tokens=5)


def _run(server: FakeLLMServer, served: str) -> pl.Results:
    server.served_model = served
    return pl.run(_suite(), PROMPT, PINNED_ASK, progress=False, cache=False)


@pytest.fixture
def server(monkeypatch):
    with FakeLLMServer(answers=lambda body: "positive" if last_user_text(body) else None) as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        yield fake


def test_served_model_is_recorded_and_drift_is_found(server):
    before = _run(server, "gpt-4o-2024-08-06")
    after = _run(server, "gpt-4o-2024-11-20")
    assert set(after.df["model"]) == {PINNED_ASK} and set(after.df["model_served"]) == {"openai:gpt-4o-2024-11-20"}
    assert served_model_drift(before).empty
    drift = served_model_drift(pl.Results.concat([before, after]))
    assert drift[["model", "model_served", "calls"]].values.tolist() == [
        [PINNED_ASK, "openai:gpt-4o-2024-08-06", 6], [PINNED_ASK, "openai:gpt-4o-2024-11-20", 6]]
    assert (drift["reason"] == "one model name answered by 2 model ids").all()
    assert drift["runs"].tolist() == [[before.meta["run_id"]], [after.meta["run_id"]]]
    assert drift["first_seen"].iloc[0] == before.meta["finished_at"]


def test_lockfile_catches_a_model_changed_behind_its_name(server, tmp_path):
    path = tmp_path / "promptlab.lock.yaml"
    before = _run(server, "gpt-4o-2024-08-06")
    lock = write_lockfile(before, path)
    entry = lock.models[PINNED_ASK]
    assert (entry.served, entry.pinned, entry.calls) == ("openai:gpt-4o-2024-08-06", True, 6)
    assert entry.first_seen == entry.last_seen == before.meta["finished_at"]
    assert path.read_text().startswith("# promptlab lockfile")
    assert yaml.safe_load(path.read_text())["models"][PINNED_ASK]["served"] == "openai:gpt-4o-2024-08-06"

    same = _run(server, "gpt-4o-2024-08-06")
    assert check_lockfile(same, path).ok
    extended = write_lockfile(same, path).models[PINNED_ASK]
    assert (extended.calls, extended.first_seen, extended.last_seen) == (
        12, before.meta["finished_at"], same.meta["finished_at"])

    after = _run(server, "gpt-4o-2024-11-20")
    check = check_lockfile(after, path)
    assert not check.ok and check.df["status"].tolist() == ["drift"]
    assert repr(check) == "<LockCheck DRIFT (drift: 1)>"
    assert "a model changed behind its name" in check._repr_html_()
    assert check.drift["reason"].tolist() == ["differs from the lockfile (locked: 'openai:gpt-4o-2024-08-06')"]
    assert served_model_drift(after, path)["locked"].tolist() == ["openai:gpt-4o-2024-08-06"]
    with pytest.raises(ModelDriftError, match="served models changed behind their names") as caught:
        check.raise_for_drift()
    assert len(caught.value.drift) == 1
    with pytest.raises(ModelDriftError, match=r"locked to 'openai:gpt-4o-2024-08-06' but was answered by "
                                              r"'openai:gpt-4o-2024-11-20'.*accept_changes=True"):
        write_lockfile(after, path)
    accepted = write_lockfile(after, path, accept_changes=True).models[PINNED_ASK]
    assert (accepted.served, accepted.calls) == ("openai:gpt-4o-2024-11-20", 6)


def test_lockfile_refuses_results_with_several_served_ids(server, tmp_path):
    both = pl.Results.concat([_run(server, "gpt-4o-2024-08-06"), _run(server, "gpt-4o-2024-11-20")])
    with pytest.raises(ModelDriftError, match=r"cannot lock: \['openai:gpt-4o-2024-08-06'\] were answered by "
                                              "several model ids"):
        write_lockfile(both, tmp_path / "lock.yaml")
    write_lockfile(both.df[both.df["model_served"] == "openai:gpt-4o-2024-08-06"], tmp_path / "lock.yaml")
    check = check_lockfile(both, tmp_path / "lock.yaml")
    assert check.df["status"].tolist() == ["several"] and not check.ok


def test_unlocked_models_are_reported_not_failed(tmp_path):
    frame = build_frame([{"case_id": "1", "model": "fake:m", "model_served": "fake:m", "output": "x"}], "r")
    write_lockfile(frame, tmp_path / "lock.yaml")
    other = build_frame([{"case_id": "1", "model": "fake:n", "model_served": "fake:n", "output": "x"}], "r2")
    check = check_lockfile(other, tmp_path / "lock.yaml")
    assert check.ok and check.df["status"].tolist() == ["not locked"]
    assert repr(check) == "<LockCheck ok (not locked: 1)>"
    assert set(load_lockfile(tmp_path / "lock.yaml").models) == {"fake:m"}


def test_bad_lockfiles(tmp_path):
    with pytest.raises(LockfileError, match="does not exist. Create or write it again with write_lockfile"):
        load_lockfile(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nmodels: {m: {served: x, pinned: true, first_seen: a, last_seen: b, calls: -1}}\n")
    with pytest.raises(LockfileError, match=r"models.m.calls: .*greater than or equal to 0 \(got -1\)"):
        load_lockfile(bad)
    bad.write_text("version: 1\nmodels: {}\nextra: 1\n")
    with pytest.raises(LockfileError, match="extra: unknown key"):
        load_lockfile(bad)
