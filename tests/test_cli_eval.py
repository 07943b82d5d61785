"""`promptlab eval` reports its cache use; `promptlab cache info | clear` show and empty the project's cache;
`promptlab report` on a failing notebook names the cell and exits 2."""

from __future__ import annotations

import re

import nbformat
import pytest

from promptlab.cli import main, parse_age
from promptlab.testing import FakeLLMServer, last_user_text

CASES = 4
SUITE = "name: cli\nlabels: [positive, negative]\ncases:\n" + "".join(
    f"  - id: c{i}\n    input: review {i}\n    expected: {'positive' if i % 2 == 0 else 'negative'}\n"
    for i in range(CASES))
PROMPT = """name: cli_prompt
version: 1.0.0
model: openai:m-1
max_tokens: 5
system: Classify.
template: "{{ input }}"
"""


def answer(body: dict) -> str:
    return "positive" if int(last_user_text(body).split()[-1]) % 2 == 0 else "negative"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with a suite and a prompt, and a fake OpenAI-compatible server behind the env."""
    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "prompt.yaml").write_text(PROMPT)
    monkeypatch.chdir(tmp_path)
    with FakeLLMServer(answers=answer) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cli")
        yield server


def evaluate(*extra: str) -> int:
    return main(["eval", "--suite", "suite.yaml", "--prompt", "prompt.yaml", "--quiet", *extra])


def test_eval_prints_cache_hits_and_misses(project, capsys, tmp_path):
    assert evaluate() == 0
    path = tmp_path / "cache" / "responses.sqlite"  # conftest points PROMPTLAB_CACHE_DIR at tmp_path/cache
    assert f"cache: 0 hits · {CASES} misses ({path})" in capsys.readouterr().out
    assert evaluate() == 0
    assert f"cache: {CASES} hits · 0 misses ({path})" in capsys.readouterr().out
    assert evaluate("--no-cache") == 0
    assert "cache: off (--no-cache)" in capsys.readouterr().out
    assert project.request_count == 2 * CASES


def test_the_html_report_shows_cache_hits_and_misses(project, tmp_path):
    assert evaluate("--report", "first.html") == 0
    assert evaluate("--report", "second.html") == 0
    assert f"cache 0 hits · {CASES} misses" in (tmp_path / "first.html").read_text()
    assert f"cache {CASES} hits · 0 misses" in (tmp_path / "second.html").read_text()


def test_cache_info_and_clear(project, capsys, tmp_path):
    assert main(["cache", "info"]) == 0
    assert "empty: no run has written to it yet" in capsys.readouterr().out
    assert evaluate() == 0
    capsys.readouterr()
    assert main(["cache", "info"]) == 0
    info = capsys.readouterr().out
    assert str(tmp_path / "cache" / "responses.sqlite") in info and f"entries: {CASES} ·" in info
    assert re.search(rf"openai\s+openai:m-1\s+{re.escape(project.openai_base_url)}\s+{CASES}", info), info

    assert main(["cache", "clear", "--model", "openai:other"]) == 0
    assert f"cleared 0 of {CASES} entries" in capsys.readouterr().out
    assert main(["cache", "clear", "--older-than", "1d"]) == 0
    assert f"cleared 0 of {CASES} entries" in capsys.readouterr().out
    assert main(["cache", "clear", "--model", "openai:m-1"]) == 0
    assert f"cleared {CASES} of {CASES} entries" in capsys.readouterr().out


def test_cache_clear_refuses_an_unreadable_age(capsys):
    assert main(["cache", "clear", "--older-than", "soon"]) == 2
    assert "'soon'" in capsys.readouterr().err


def test_ages_read_as_durations():
    assert parse_age("30d").days == 30 and parse_age("12h").total_seconds() == 12 * 3600
    assert parse_age("1.5w").days == 10


def test_report_on_a_failing_notebook_names_the_cell_and_exits_2(tmp_path, capsys):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# Fails"),
                      nbformat.v4.new_code_cell("N = 3", metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell("total = N\nratio = total / (N - 4)")]
    path = tmp_path / "fails.ipynb"
    nbformat.write(notebook, path)
    # -p N=4 injects a cell after the parameters cell; the failing cell keeps its number in the file (3)
    assert main(["report", str(path), "-o", str(tmp_path / "out.html"), "-p", "N=4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"promptlab report: notebook {str(path)!r} failed at cell 3 ('total = N'): "
                   "ZeroDivisionError: division by zero")
    assert not (tmp_path / "out.html").exists()


_FIRST_REQUEST = """
import json, os, sys
from promptlab.providers import _openai

async def first_call(self, request, **options):  # the moment the first request would leave: what is loaded?
    heavy = ("pandas", "pyarrow", "numpy", "scipy", "plotly", "matplotlib")
    print(json.dumps({"sdk": "openai" in sys.modules, "heavy": [m for m in heavy if m in sys.modules]}))
    sys.stdout.flush()
    os._exit(0)

_openai.SDKProvider.complete = first_call
from promptlab.cli import main
main(["eval", "--suite", "suite.yaml", "--prompt", "prompt.yaml", "--prompt", "prompt.yaml", "--quiet"])
"""


def test_eval_reaches_its_first_request_without_pandas_scipy_or_plots(tmp_path):
    """Start to first request of `promptlab eval` pays for the SDK, not for the analysis stack (issue 13)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "prompt.yaml").write_text(PROMPT)
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-cli", "PROMPTLAB_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _FIRST_REQUEST], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"sdk": True, "heavy": []}
