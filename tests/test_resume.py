"""Resume: a run killed part-way (SIGKILL, or Ctrl-C) and started again pays for no call that had completed.

A child process runs 40 cases against the loopback fake server with a response cache; it is killed once the
server has seen ~15 requests. The calls it completed are the rows of its cache file. The same run, started
again in this process on the same cache file, must send exactly the other calls — counted on a fresh server at
the same address (the cache answers only for the endpoint that answered), so that requests the dead child left
in flight cannot blur the count — and return 40 rows without errors.
"""

from __future__ import annotations

import os
import re
import runpy
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import promptlab as pl
from promptlab.testing import FakeLLMServer

CASES = 40
KILL_AFTER_REQUESTS = 15

RUN_SCRIPT = '''
import sys

import promptlab as pl
from promptlab.providers._openai import OpenAIProvider


def build():
    suite = pl.Suite("resume", labels=["positive", "negative"])
    for i in range(40):
        suite.add_case(f"review number {i}", "positive" if i % 2 == 0 else "negative", id=f"c{i}")
    prompt = pl.Prompt(name="resume", version="1", model="openai:gpt-4o-mini", system="Classify.",
                       template="Text: {{ input }}", max_tokens=5)
    return suite, prompt


def run(base_url, cache_path):
    suite, prompt = build()
    provider = OpenAIProvider(base_url=base_url, api_key="test")
    return pl.run(suite, prompt, provider, cache=pl.ResponseCache(cache_path), concurrency=4, progress=False)


if __name__ == "__main__":
    print("started", flush=True)
    run(sys.argv[1], sys.argv[2])
'''


def answer(body: dict) -> str:
    from promptlab.testing import last_user_text

    return "positive" if int(last_user_text(body).split()[-1]) % 2 == 0 else "negative"


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.002)


def cached_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def interrupt_a_run(tmp_path: Path, sig: int) -> tuple[Path, Path, subprocess.Popen, int]:
    """Start the 40-case run in a child process and send it ``sig`` after ~15 requests; returns the script,
    the cache file, the finished child and the server's port."""
    script, cache = tmp_path / "run40.py", tmp_path / "responses.sqlite"
    script.write_text(RUN_SCRIPT)
    with FakeLLMServer(answers=answer, latency_s=0.05) as server:
        child = subprocess.Popen([sys.executable, str(script), server.openai_base_url, str(cache)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
        try:
            wait_for(lambda: server.request_count >= KILL_AFTER_REQUESTS or child.poll() is not None, 60,
                     f"{KILL_AFTER_REQUESTS} requests from the child")
            assert child.poll() is None, f"the child ended before it was interrupted: {child.stderr.read()!r}"
            child.send_signal(sig)
            child.wait(timeout=15)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    return script, cache, child, server.port


def rerun_and_check(script: Path, cache: Path, port: int) -> None:
    completed = cached_rows(cache)
    assert 0 < completed < CASES
    with FakeLLMServer(answers=answer, latency_s=0.05, port=port) as server:
        results = runpy.run_path(str(script))["run"](server.openai_base_url, str(cache))
        assert server.request_count == CASES - completed
    df = results.df
    assert len(df) == CASES and df["error_type"].isna().all() and df["passed"].all()
    assert df["cached"].sum() == completed and results.meta["cache"]["misses"] == CASES - completed
    assert cached_rows(cache) == CASES


def test_a_killed_run_pays_for_no_completed_call_when_run_again(tmp_path):
    script, cache, child, port = interrupt_a_run(tmp_path, signal.SIGKILL)
    assert child.returncode == -signal.SIGKILL
    rerun_and_check(script, cache, port)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_a_run_stopped_with_ctrl_c_pays_for_no_completed_call_when_run_again(tmp_path):
    script, cache, child, port = interrupt_a_run(tmp_path, signal.SIGINT)
    stderr = child.stderr.read().decode()
    assert child.returncode != 0 and "RunInterrupted" in stderr  # Ctrl-C stops the run; it is not swallowed
    done = int(re.search(rf"(\d+) of {CASES} calls done and cached; run it again to resume", stderr)[1])
    assert done == cached_rows(cache)
    rerun_and_check(script, cache, port)


CLI_SUITE = "name: resume\nlabels: [positive, negative]\ncases:\n" + "".join(
    f"  - id: c{i}\n    input: review number {i}\n    expected: {'positive' if i % 2 == 0 else 'negative'}\n"
    for i in range(CASES))
CLI_PROMPT = 'name: resume\nversion: 1.0.0\nmodel: openai:gpt-4o-mini\nmax_tokens: 5\nsystem: Classify.\n' \
             'template: "Text: {{ input }}"\n'
RESUME_LINE = re.compile(rf"^interrupted: (\d+) of {CASES} calls done and cached; run the same command to resume$")


def cli_command(tmp_path: Path) -> list[str]:
    (tmp_path / "suite.yaml").write_text(CLI_SUITE)
    (tmp_path / "prompt.yaml").write_text(CLI_PROMPT)
    return [sys.executable, "-m", "promptlab.cli", "eval", "--suite", str(tmp_path / "suite.yaml"),
            "--prompt", str(tmp_path / "prompt.yaml"), "--quiet"]


def cli_env(tmp_path: Path, server: FakeLLMServer) -> dict:
    return {**os.environ, "OPENAI_BASE_URL": server.openai_base_url, "OPENAI_API_KEY": "sk-test",
            "PROMPTLAB_CACHE_DIR": str(tmp_path / "cache")}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_in_the_cli_says_how_far_it_got_and_how_to_resume(tmp_path):
    command = cli_command(tmp_path)
    with FakeLLMServer(answers=answer, latency_s=0.3) as server:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=cli_env(tmp_path, server))
        try:
            wait_for(lambda: server.request_count >= KILL_AFTER_REQUESTS or child.poll() is not None, 60,
                     f"{KILL_AFTER_REQUESTS} requests from the CLI")
            assert child.poll() is None, f"the CLI ended before it was interrupted: {child.stderr.read()!r}"
            child.send_signal(signal.SIGINT)
            _, stderr = child.communicate(timeout=15)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr
    (line,) = stderr.strip().splitlines()
    done = int(RESUME_LINE.match(line)[1])
    assert 0 < done < CASES and done == cached_rows(tmp_path / "cache" / "responses.sqlite")

    # the same command again, at the same address: only the missing calls are made
    with FakeLLMServer(answers=answer, port=server.port) as server:
        again = subprocess.run(command, capture_output=True, text=True, env=cli_env(tmp_path, server), timeout=120)
        assert server.request_count == CASES - done
    assert again.returncode == 0, again.stderr
    assert f"cache: {done} hits · {CASES - done} misses" in again.stdout


def test_results_match_an_uninterrupted_run(tmp_path):
    script = tmp_path / "run40.py"
    script.write_text(RUN_SCRIPT)
    with FakeLLMServer(answers=answer, latency_s=0.0) as server:
        results = runpy.run_path(str(script))["run"](server.openai_base_url, str(tmp_path / "c.sqlite"))
        assert server.request_count == CASES
    assert len(results.df) == CASES and not results.df["cached"].any()
    assert isinstance(results, pl.Results)
