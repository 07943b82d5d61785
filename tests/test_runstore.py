"""The run store: every run recorded with its provenance; `pl.runs()`, `pl.load_run(id)`, runs compared by case,
concurrent processes that both land, a killed or interrupted run kept as such; `promptlab runs ...`."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import scipy.stats

import promptlab as pl
from promptlab.cli._runs import HANDLERS, add_runs_commands
from promptlab.errors import ArgumentError, UnknownNameError
from promptlab.evaluation._runstore import gc_runs, run_entry, runs_dir

ROOT = Path(__file__).resolve().parent.parent
PROMPT = pl.Prompt(name="sentiment", version="1.0.0", model="fake:fake-model", system="Classify.",
                   template="Text: {{ input }}")
SUITE_YAML = "name: tiny\nlabels: [positive, negative]\ncases:\n" + "".join(
    f"  - id: c{i}\n    input: text {i}\n    expected: {'positive' if i % 2 == 0 else 'negative'}\n" for i in range(12))


def by_parity(request: pl.providers.Request) -> str:
    return "positive" if int(request.messages[-1].content.split()[-1]) % 2 == 0 else "negative"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A git project with a suite file, the current folder while the test runs."""
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "suites").mkdir()
    (folder / "suites" / "tiny.yaml").write_text(SUITE_YAML, encoding="utf-8")
    git(folder, "init", "-q")
    git(folder, "-c", "user.name=t", "-c", "user.email=t@e", "add", ".")
    git(folder, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "init")
    monkeypatch.chdir(folder)
    return folder


def test_no_test_writes_runs_into_the_repository():
    assert os.environ["PROMPTLAB_RUNS_DIR"]
    assert ROOT not in runs_dir().resolve().parents  # the autouse fixture points every test elsewhere


def test_a_run_is_recorded_with_its_provenance(project):
    suite = pl.load_suite("suites/tiny.yaml").sample(8, seed=3)
    results = pl.run(suite, {"A": PROMPT, "B": PROMPT.with_changes(version="1.1.0", system="Label it.")},
                     pl.FakeProvider(by_parity), params={"temperature": 0.2}, progress=False)
    entry = run_entry(results.meta["run_id"])
    assert entry["status"] == results.meta["status"] == "complete"
    suite_meta = entry["suite"]
    assert suite_meta["path"] == "suites/tiny.yaml"
    assert suite_meta["sha256"] == hashlib.sha256((project / "suites" / "tiny.yaml").read_bytes()).hexdigest()
    assert suite_meta["sha256_of"] == "file"
    assert suite_meta["case_ids"] == [case.id for case in suite] and suite_meta["cases"] == 8
    assert suite_meta["cases_in_file"] == 12
    assert suite_meta["subset"] == [{"sample": {"n": 8, "seed": 3, "of": 12}}]
    assert entry["prompts"]["B"] == {"name": "sentiment", "version": "1.1.0", "model_pinned": "fake:fake-model",
                                     "hash": PROMPT.with_changes(version="1.1.0", system="Label it.").content_hash}
    assert entry["models_asked"] == ["fake:fake-model"] and entry["params"] == {"temperature": 0.2}
    assert entry["git"] == {"commit": git(project, "rev-parse", "HEAD"), "dirty": False}
    assert entry["promptlab_version"] == pl.__version__ and entry["pid"] == os.getpid()
    assert entry["cache"] == {"hits": 0, "misses": 16, "enabled": True}
    assert entry["rows"] == 16 and entry["errors"] == 0
    assert entry["started_at"] <= entry["finished_at"]
    assert results.meta["suite"]["sha256"] == suite_meta["sha256"]  # the report reads it from the results
    # the same suite again comes from the cache; an edited tracked file makes the checkout dirty
    (project / "suites" / "tiny.yaml").write_text(SUITE_YAML + "# edited\n", encoding="utf-8")
    again = pl.run(suite, PROMPT, pl.FakeProvider(by_parity), params={"temperature": 0.2}, progress=False)
    second = run_entry(again.meta["run_id"])
    assert second["git"]["dirty"] is True and second["cache"]["hits"] == 8
    assert second["suite"]["sha256"] == suite_meta["sha256"]  # the suite as loaded, not as edited since


def test_outside_git_the_commit_is_unknown_not_empty(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = pl.run(pl.load_suite(_write(tmp_path / "s.yaml", SUITE_YAML)), PROMPT, pl.FakeProvider(by_parity),
                     progress=False)
    assert run_entry(results.meta["run_id"])["git"] == {"commit": None, "dirty": None}


def test_a_suite_built_in_code_is_known_by_its_cases(project):
    def built(expected_last: str) -> pl.Suite:
        suite = pl.Suite("in-code", labels=["positive", "negative"])
        suite.add_case("fine", "positive", id="a")
        suite.add_case("awful", expected_last, id="b")
        return suite

    ids = [pl.run(built(e), PROMPT, pl.FakeProvider("positive"), progress=False).meta["run_id"]
           for e in ("negative", "negative", "positive")]
    suites = [run_entry(run_id)["suite"] for run_id in ids]
    assert suites[0]["path"] is None and suites[0]["sha256_of"] == "cases"
    # the hash of the cases in their file layout: json.dumps(suite.to_dict(), sort_keys=True) through hashlib
    layout = json.dumps(built("negative").to_dict(), sort_keys=True, ensure_ascii=False)
    assert suites[0]["sha256"] == suites[1]["sha256"] == hashlib.sha256(layout.encode()).hexdigest()
    assert suites[2]["sha256"] != suites[0]["sha256"]


def test_load_run_gives_the_results_back_by_id_or_prefix(project):
    results = pl.run(pl.load_suite("suites/tiny.yaml"), PROMPT, pl.FakeProvider(by_parity), progress=False)
    run_id = results.meta["run_id"]
    loaded = pl.load_run(run_id[:5])
    pd.testing.assert_frame_equal(loaded.df, results.df)
    assert loaded.meta["run_id"] == run_id and loaded.meta["status"] == "complete"
    with pytest.raises(UnknownNameError, match=run_id):  # lists the runs that exist
        pl.load_run("zzzz")
    with pytest.raises(ArgumentError, match="run id"):
        pl.load_run("")


def test_an_ambiguous_prefix_lists_its_matches(project, monkeypatch):
    ids = iter(["abc111111111", "abc222222222"])
    monkeypatch.setattr("promptlab.evaluation._runner.uuid.uuid4", lambda: type("U", (), {"hex": next(ids)})())
    for _ in range(2):
        pl.run(pl.load_suite("suites/tiny.yaml"), PROMPT, pl.FakeProvider(by_parity), progress=False)
    with pytest.raises(ArgumentError, match=r"abc111111111.*abc222222222"):
        pl.load_run("abc")
    assert pl.load_run("abc2").meta["run_id"] == "abc222222222"


def test_runs_lists_newest_first_and_filters(project):
    suite = pl.load_suite("suites/tiny.yaml")
    first = pl.run(suite, PROMPT, pl.FakeProvider(by_parity), progress=False)
    second = pl.run(suite.filter(category="happy_path"), PROMPT, pl.FakeProvider("positive"), progress=False)
    listed = pl.runs()
    assert list(listed["run_id"]) == [second.meta["run_id"], first.meta["run_id"]]
    assert list(listed["passed"]) == ["A: 6/12", "A: 12/12"]  # 6 of 12 expect positive; all 12 by parity
    assert listed.loc[0, "sample"] == "filter category=['happy_path']"
    assert len(pl.runs(limit=1)) == 1 and pl.runs(status="interrupted").empty
    assert len(pl.runs(suite="tiny")) == 2 and pl.runs(suite="other").empty
    with pytest.raises(ArgumentError, match="complete"):
        pl.runs(status="done")


def test_record_false_keeps_nothing(project):
    pl.run(pl.load_suite("suites/tiny.yaml"), PROMPT, pl.FakeProvider(by_parity), progress=False, record=False)
    assert pl.runs().empty


def test_a_store_that_cannot_be_written_warns_and_the_run_returns(project, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PROMPTLAB_RUNS_DIR", str(blocker / "runs"))
    with pytest.warns(UserWarning, match="could not record run"):
        results = pl.run(pl.load_suite("suites/tiny.yaml"), PROMPT, pl.FakeProvider(by_parity), progress=False)
    assert len(results) == 12


def test_ugly_suite_files_are_recorded_as_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = "\ufeffid,text,label\r\nα-1,\"naïve, but\r\nfine\",positive\r\n\r\nβ-2,\"😀 ok\",negative\r\n".encode()
    (tmp_path / "ugly.csv").write_bytes(raw)
    suite = pl.load_suite(tmp_path / "ugly.csv", input="text", expected="label")
    results = pl.run(suite, PROMPT, pl.FakeProvider("positive"), progress=False)
    entry = run_entry(results.meta["run_id"])
    assert entry["suite"]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert entry["suite"]["case_ids"] == ["α-1", "β-2"] and entry["suite"]["path"] == "ugly.csv"
    assert list(pl.load_run(results.meta["run_id"]).df["input"]) == ["naïve, but\nfine", "😀 ok"]


# ---- comparing runs ------------------------------------------------------------------------------------
def test_two_runs_compare_paired_by_case(project):
    suite = pl.load_suite("suites/tiny.yaml")
    labelled = PROMPT.with_changes(version="2.0.0", system="Label it.")

    def answers(request):  # the new prompt gets every case right, the old one says positive to all
        return by_parity(request) if request.system == "Label it." else "positive"

    old = pl.run(suite, PROMPT, pl.FakeProvider(answers), progress=False)
    new = pl.run(suite, labelled, pl.FakeProvider(answers), progress=False)
    comparison = pl.compare(pl.load_run(old.meta["run_id"]), pl.load_run(new.meta["run_id"]))
    row = comparison.df.iloc[0]
    assert (row["baseline"], row["variant"]) == (old.meta["run_id"], new.meta["run_id"])
    # hand count of discordant pairs by case: b = only the old run passed, c = only the new one
    both = old.df.merge(new.df, on="case_id", suffixes=("_old", "_new"))
    b = int((both["passed_old"] & ~both["passed_new"]).sum())
    c = int((~both["passed_old"] & both["passed_new"]).sum())
    assert (row["b"], row["c"], row["n"]) == (b, c, 12) == (0, 6, 12)
    # McNemar's exact p is the two-sided binomial test on the discordant pairs:
    # scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue
    assert row["p_exact"] == pytest.approx(scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue)
    assert row["diff"] == pytest.approx((c - b) / 12)
    # the same two prompts in one run give the same comparison: pairing across runs is pairing by case
    together = pl.compare(pl.run(suite, {"A": PROMPT, "B": labelled}, pl.FakeProvider(answers), progress=False))
    columns = ["n", "b", "c", "diff", "ci_low", "ci_high", "p_value", "p_exact", "verdict"]
    assert together.df.iloc[0][columns].tolist() == row[columns].tolist()


def test_runs_on_different_suite_files_say_so(project):
    first = pl.run(pl.load_suite("suites/tiny.yaml").sample(10), PROMPT, pl.FakeProvider("positive"), progress=False)
    (project / "suites" / "tiny.yaml").write_text(SUITE_YAML.replace("text 11", "text eleven"), encoding="utf-8")
    second = pl.run(pl.load_suite("suites/tiny.yaml"), PROMPT, pl.FakeProvider("positive"), progress=False)
    comparison = pl.compare([first, second])
    assert any("different suite files" in m for m in comparison.messages)
    assert any("2 case(s) are in only one" in m for m in comparison.messages)
    assert comparison.df.iloc[0]["n"] == 10


def test_compare_refuses_the_same_run_twice_and_an_unknown_run_id(project):
    results = pl.run(pl.load_suite("suites/tiny.yaml"), PROMPT, pl.FakeProvider("positive"), progress=False)
    with pytest.raises(pl.errors.StatsError, match="given twice"):
        pl.compare(results, pl.load_run(results.meta["run_id"]))
    with pytest.raises(pl.errors.UnknownNameError, match=results.meta["run_id"]):  # the message lists the runs
        pl.compare(results.meta["run_id"], "other")
    with pytest.raises(pl.errors.StatsError, match="load_run"):  # the pure statistic takes no ids
        pl.stats.compare(results.meta["run_id"], "other")


def test_comparisons_and_judge_passes_are_recorded_with_the_runs_they_read(project):
    from scipy import stats

    suite = pl.load_suite("suites/tiny.yaml")
    first = pl.run(suite, PROMPT, pl.FakeProvider("positive"), progress=False)
    second = pl.run(suite, PROMPT, pl.FakeProvider("negative"), progress=False)
    by_id = pl.compare(first.meta["run_id"], second.meta["run_id"])  # ids, resolved from the store
    by_runs = pl.compare(pl.load_run(first.meta["run_id"]), pl.load_run(second.meta["run_id"]), record=False)
    assert by_id.df[["diff", "p_value", "n"]].equals(by_runs.df[["diff", "p_value", "n"]])
    listed = pl.runs(kind="comparison")
    assert len(listed) == 1 and set(pl.runs()["kind"]) == {"run", "comparison"}
    table = pl.load_run(listed["run_id"][0])
    entry = table.attrs["promptlab"]
    assert entry["sources"] == [first.meta["run_id"], second.meta["run_id"]]
    assert table["p_value"].astype(float).tolist() == pytest.approx(by_id.df["p_value"].tolist())
    (row,) = by_id.df.to_dict("records")
    b, c = row["b"], row["c"]  # discordant pairs; exact McNemar = binomial test on them
    assert row["p_exact"] == pytest.approx(stats.binomtest(min(b, c), b + c, 0.5).pvalue)  # scipy reference

    rubric = pl.judge(["accuracy"], model=pl.FakeProvider('{"accuracy": {"score": 4, "reason": "fine"}}'),
                      cache=False)
    judged = pl.evaluation.rejudge(first, rubric, k=2)
    (record,) = pl.runs(kind="judge")["run_id"]
    stored = pl.load_run(record)
    assert len(stored) == len(judged) == 2 * len(first.df)
    assert stored.attrs["promptlab"]["sources"] == [first.meta["run_id"]]
    assert stored.attrs["promptlab"]["details"]["k"] == 2
    with pytest.raises(pl.errors.ArgumentError, match="kind"):
        pl.runs(kind="comparisons")


# ---- processes ---------------------------------------------------------------------------------------
RUNNER = textwrap.dedent("""
    import sys, promptlab as pl
    suite = pl.Suite("proc", labels=["positive", "negative"])
    for i in range(int(sys.argv[1])):
        suite.add_case(f"text {i}", "positive", id=f"c{i}")
    prompt = pl.Prompt(name="p", version=sys.argv[2], model="fake:fake-model", template="Text: {{ input }}")
    pl.run(suite, prompt, pl.FakeProvider("positive", latency_s=float(sys.argv[3])), concurrency=1, progress=False)
    print("done", flush=True)
""")


def _spawn(cases: int, version: str, latency: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(cases), version, str(latency)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_running_at_once_both_land(project):
    procs = [_spawn(30, version, 0.02) for version in ("1.0.0", "2.0.0")]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    listed = pl.runs()
    assert sorted(listed["status"]) == ["complete", "complete"] and list(listed["rows"]) == [30, 30]
    entries = [run_entry(run_id) for run_id in listed["run_id"]]
    assert {e["prompts"]["A"]["version"] for e in entries} == {"1.0.0", "2.0.0"}
    assert len({e["pid"] for e in entries}) == 2
    # they did overlap in time: each started before the other finished
    a, b = entries
    assert a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]
    for e in entries:
        assert len(pl.load_run(e["run_id"]).df) == 30


def test_a_killed_run_is_listed_incomplete_with_the_calls_it_made(project):
    proc = _spawn(400, "1.0.0", 0.01)
    journal = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list(runs_dir().glob("*.partial.jsonl")) if runs_dir().is_dir() else []
        if found and len(found[0].read_text(encoding="utf-8").splitlines()) >= 20:
            journal = found[0]
            break
        time.sleep(0.02)
    assert journal is not None, proc.stderr.read() if proc.poll() is not None else "no journal"
    proc.send_signal(signal.SIGKILL)  # no handler, no finally: the process is simply gone
    proc.wait(timeout=10)
    listed = pl.runs()
    assert list(listed["status"]) == ["incomplete"]
    results = pl.load_run(listed.loc[0, "run_id"])
    assert 20 <= len(results) < 400 and results.meta["status"] == "incomplete"
    assert set(results.df["output"]) == {"positive"} and results.df["passed"].isna().all()  # kept, unscored
    assert "ended without finishing" in run_entry(listed.loc[0, "run_id"])["stopped"]
    assert gc_runs(status="incomplete") == [listed.loc[0, "run_id"]] and pl.runs().empty


def test_an_interrupted_run_is_kept_as_interrupted(project):
    provider = pl.FakeProvider(by_parity, latency_s=0.02)
    suite = pl.Suite("t", labels=["positive", "negative"])
    for i in range(40):
        suite.add_case(f"text {i}", "positive" if i % 2 == 0 else "negative", id=f"c{i}")

    def interrupt_after_five_calls():
        while len(provider.calls) < 5:
            time.sleep(0.005)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    async def notebook_cell():
        return pl.run(suite, PROMPT, provider, concurrency=1, progress=False)

    threading.Thread(target=interrupt_after_five_calls, daemon=True).start()
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(notebook_cell())
    finally:
        loop.close()
    listed = pl.runs()
    assert list(listed["status"]) == ["interrupted"]
    kept = pl.load_run(listed.loc[0, "run_id"])
    assert 4 <= len(kept) < 40 and kept.meta["status"] == "interrupted"
    assert not list(runs_dir().glob("*.partial.jsonl"))  # the journal became the run's Parquet rows


def test_a_run_past_its_error_rate_is_recorded_whole(project):
    def broken(request):
        raise pl.ProviderError("boom", error_type="server", retryable=False)

    with pytest.raises(pl.errors.RunFailed):
        pl.run(pl.load_suite("suites/tiny.yaml"), PROMPT, pl.FakeProvider(broken), progress=False, retries=0)
    listed = pl.runs()
    assert list(listed["status"]) == ["complete"] and list(listed["errors"]) == [12]


# ---- gc and the command ----------------------------------------------------------------------------------
def test_gc_keeps_the_newest_and_needs_a_condition(project):
    suite = pl.load_suite("suites/tiny.yaml")
    ids = [pl.run(suite, PROMPT, pl.FakeProvider("positive"), progress=False).meta["run_id"] for _ in range(3)]
    with pytest.raises(ArgumentError, match="condition"):
        gc_runs()
    assert gc_runs(keep=1, dry_run=True) == ids[:2] and len(pl.runs()) == 3
    assert gc_runs(older_than_days=1) == []
    assert gc_runs(keep=1) == ids[:2]
    assert list(pl.runs()["run_id"]) == [ids[2]] and sorted(p.name for p in runs_dir().iterdir()) == [
        f"{ids[2]}.json", f"{ids[2]}.parquet"]


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="promptlab")
    add_runs_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return HANDLERS[args.command](args)


def test_the_runs_command_lists_shows_diffs_and_collects(project, capsys):
    suite = pl.load_suite("suites/tiny.yaml")
    old = pl.run(suite, PROMPT, pl.FakeProvider("positive"), progress=False).meta["run_id"]
    new = pl.run(suite, PROMPT.with_changes(version="2.0.0"), pl.FakeProvider(by_parity), progress=False).meta["run_id"]
    assert cli("runs", "list") == 0
    out = capsys.readouterr().out
    assert out.index(new) < out.index(old) and "suites/tiny.yaml" in out
    assert cli("runs", "list", "--json") == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [new, old]
    assert cli("runs", "show", old[:6]) == 0
    out = capsys.readouterr().out
    assert f"run {old} · complete" in out and "sentiment@1.0.0" in out and git(project, "rev-parse", "HEAD")[:10] in out
    assert cli("runs", "diff", old, new, "--json") == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["changed"]["prompts"][1]["A"].startswith("sentiment@2.0.0")
    assert diff["comparison"][0]["c"] == 6 and diff["comparison"][0]["baseline"] == old
    assert cli("runs", "diff", old, new) == 0
    assert "prompts:" in capsys.readouterr().out
    with pytest.raises(UnknownNameError):
        cli("runs", "show", "nope")
    assert cli("runs", "gc", "--keep", "1") == 0
    assert "deleted 1 run(s)" in capsys.readouterr().out and list(pl.runs()["run_id"]) == [new]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path



# ---- where runs come from: the eval command and a notebook ---------------------------------------------------
PROMPT_FILE = """name: cli_prompt
version: 1.0.0
model: openai:m-1
max_tokens: 5
system: Classify.
template: "{{ input }}"
"""


def test_a_run_of_promptlab_eval_is_recorded(project, monkeypatch):
    from promptlab.cli import main
    from promptlab.testing import FakeLLMServer, last_user_text

    (project / "prompt.yaml").write_text(PROMPT_FILE, encoding="utf-8")
    with FakeLLMServer(answers=lambda body: by_parity_text(last_user_text(body))) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-runs-secret")
        assert main(["eval", "--suite", "suites/tiny.yaml", "--prompt", "prompt.yaml", "--sample", "6",
                     "--quiet"]) == 0
    listed = pl.runs()
    assert len(listed) == 1 and listed.loc[0, "rows"] == 6 and listed.loc[0, "passed"] == "A: 6/6"
    entry = run_entry(listed.loc[0, "run_id"])
    assert entry["suite"]["path"] == "suites/tiny.yaml" and entry["suite"]["subset"][0]["sample"]["n"] == 6
    assert entry["prompts"]["A"]["name"] == "cli_prompt" and entry["models_asked"] == ["openai:m-1"]
    assert entry["git"]["commit"] == git(project, "rev-parse", "HEAD")
    assert entry["cost_usd"] is None  # openai:m-1 has no price: unknown, not 0
    stored = "".join(p.read_text(encoding="utf-8", errors="replace") for p in runs_dir().iterdir())
    assert "sk-test-runs-secret" not in stored  # no key lands in the store


def by_parity_text(text: str) -> str:
    return "positive" if int(text.split()[-1]) % 2 == 0 else "negative"


def test_a_run_in_a_notebook_is_recorded_as_one(project):
    import nbformat
    from nbclient import NotebookClient

    code = ("import promptlab as pl\n"
            "suite = pl.load_suite('suites/tiny.yaml').sample(4)\n"
            "prompt = pl.Prompt(name='nb', version='0.1.0', model='fake:fake-model', template='Text: {{ input }}')\n"
            "results = await pl.arun(suite, prompt, pl.FakeProvider('positive'), progress=False)\n"
            "print(results.meta['run_id'])")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(project)}}
                   ).execute()
    run_id = notebook.cells[0].outputs[0]["text"].strip()
    entry = run_entry(run_id)
    assert entry["entry_point"] == "notebook" and entry["status"] == "complete"
    assert entry["suite"]["path"] == "suites/tiny.yaml" and entry["suite"]["cases"] == 4
    assert entry["git"]["commit"] == git(project, "rev-parse", "HEAD") and entry["pid"] != os.getpid()
