"""Shareable reports render their plots in a real browser, offline (headless Chromium)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html import escape as html_escape
from pathlib import Path

import nbformat
import pytest

import promptlab as pl
from promptlab.cli import main
from promptlab.notebook._report import (
    answers_table_html,
    comparison_report,
    notebook_report,
    parse_parameters,
    suite_line,
)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed by `.ci/run` (tests never install system packages themselves)."""
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium not installed: apt-get install chromium to run the browser check")
    return found


def rendered_dom(chromium: str, html: Path, tmp_path: Path) -> str:
    """The page's DOM after its scripts ran, in headless Chromium with no network."""
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
               "--dump-dom", html.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def assert_offline(html: str) -> None:
    external = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//[^"]*"', html)
    assert not external, external


def small_results() -> pl.Results:
    suite = pl.Suite("s", labels=["positive", "negative"])
    for i in range(12):
        suite.add_case(f"text {i}", "positive" if i % 2 else "negative", category=["happy_path", "edge_case"][i % 2])
    prompt = pl.Prompt(name="p", version="1", model="claude-3-5-sonnet-20241022")
    variants = {"A": prompt, "B": prompt.with_changes(system="other")}
    return pl.run(suite, variants, pl.FakeProvider("positive"), progress=False, cache=False)


def test_comparison_report_renders_its_plots_offline(chromium, tmp_path):
    results = small_results()
    path = comparison_report(tmp_path / "r.html", results, pl.compare(results, baseline="A"), "demo")
    assert_offline(path.read_text())
    dom = rendered_dom(chromium, path, tmp_path)
    assert dom.count('class="main-svg"') >= 3  # significance, accuracy, latency drew their SVGs
    assert "Paired comparison against the baseline" in dom
    assert "24 of 24 rows" in dom  # the all-answers table's script ran: every row counted, none filtered yet
    assert dom.count('<tr class="pl-') == len(results.df) == 24


def test_answers_table_marks_failed_calls_as_errors_with_no_answer():
    suite = pl.Suite("s")
    suite.add_case("ünïcode «q1»\r\nsecond line", "a", id="c1")
    suite.add_case("q2", "b", id="c2")
    results = pl.run(suite, pl.Prompt(name="p", version="1", model="m"),
                     pl.FakeProvider({"q2": "b"}, default=None), progress=False, cache=False)
    html = answers_table_html(results)
    # the failed call is a row, shown as an error; the answered one passes
    assert results.df["error_type"].isna().tolist() == [False, True] and len(results.df) == 2
    assert html.count('data-outcome="error"') == 1 and html.count('data-outcome="pass"') == 1
    assert '<td class="pl-text muted">NA</td>' in html  # no answer is NA, not an empty string or 0
    assert html_escape("ünïcode «q1»\r\nsecond line") in html
    assert html_escape(results.df["error"][0]) in html


def test_answers_table_carries_every_answer_escaped_and_the_suite_provenance():
    results = small_results()
    results.df.loc[0, "output"] = "<script>alert(1)</script> a long\nanswer é"
    html = answers_table_html(results)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; a long\nanswer é" in html and "<script>alert" not in html
    assert html.count("<tr class=") == len(results.df)
    # the provenance as the run store records it (h16-runs: suite_provenance)
    facts = suite_line({"suite": {"name": "s", "path": "suites/s.yaml", "sha256": "ab12", "sha256_of": "file",
                                  "cases_in_file": 60, "subset": [{"sample": {"n": 12, "seed": 3, "of": 60}}]}},
                       results.df)
    assert facts == ("suite s · file suites/s.yaml · sha256 of the file ab12 · sample of 12 (seed 3) from 60 cases"
                     " · 12 cases ran of 60 in the file")
    facts = suite_line({"suite": {"name": "s", "path": None, "sha256": "cd34", "sha256_of": "cases",
                                  "cases_in_file": None, "subset": []}}, results.df)
    assert facts == "suite s · no suite file (built in code) · sha256 of its cases cd34 · 12 cases ran"
    assert "whether they were a sample was not recorded" in suite_line({"suite": {"name": "s"}}, results.df)


def test_notebook_report_executes_and_renders_offline(chromium, tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Report test"),
        nbformat.v4.new_code_cell("N = 3", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import plotly.graph_objects as go\ngo.Figure(go.Bar(y=list(range(N))))"),
    ]
    source = tmp_path / "nb.ipynb"
    nbformat.write(notebook, source)
    path = notebook_report(source, tmp_path / "nb.html", parameters={"N": 5})
    html = path.read_text()
    assert_offline(html)
    assert '"y":[0,1,2,3,4]' in html  # the injected N = 5 ran after the default N = 3
    assert 'class="main-svg"' in rendered_dom(chromium, path, tmp_path)


def test_parameters_parse_literals_and_text():
    assert parse_parameters(["SAMPLE=20", "MODEL=local:gemma-3-270m", "X=None"]) == \
        {"SAMPLE": 20, "MODEL": "local:gemma-3-270m", "X": None}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_parameters(["oops"])


def test_cli_report_rejects_a_missing_notebook(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.ipynb")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_shared_notebook_report_carries_every_answer_of_a_viewed_run(chromium, tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        "import promptlab as pl\n"
        "suite = pl.Suite('s', labels=['positive', 'negative'])\n"
        "for i in range(30):\n"
        "    suite.add_case(f'text {i}', 'positive' if i % 3 else 'negative')\n"
        "prompt = pl.Prompt(name='p', version='1', model='claude-3-5-sonnet-20241022')\n"
        "results = pl.run(suite, {'A': prompt, 'B': prompt.with_changes(system='b')}, pl.FakeProvider('positive'),\n"
        "                 progress=False, cache=False)\n"
        "pl.view(results)")]
    source = tmp_path / "review.ipynb"
    nbformat.write(notebook, source)
    path = notebook_report(source, tmp_path / "review.html")
    assert_offline(path.read_text())
    assert "unpkg.com" not in path.read_text()  # no widget renderer to fetch: the viewer's table stands alone
    dom = rendered_dom(chromium, path, tmp_path)
    # 30 cases × 2 variants, every answer in the shared file (not a first page of failures), its script ran
    assert dom.count('data-outcome="pass"') == 40 and dom.count('data-outcome="fail"') == 20
    assert "60 of 60 rows" in dom
