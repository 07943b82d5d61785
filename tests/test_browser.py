"""Real-browser tests: Playwright drives Debian's chromium (``/usr/bin/chromium``; `.ci/run` installs it).

Playwright's own browser download is never used: every launch passes ``executable_path``. The machine may be
loaded (2 cores shared), so every wait is on a selector or a condition with a generous timeout, never a sleep.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

import promptlab as pl
from promptlab.notebook._report import comparison_report

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 180_000  # generous: JupyterLab's first load on a busy 2-core machine is slow

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium under Playwright; missing chromium fails in CI (`.ci/run` installs it)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


# ---- the shared report's all-answers table ----------------------------------------------------------------
def _answer(request) -> str:
    """Variant A says positive to everything; B (system "other") gets the first six cases right."""
    text = request.messages[-1].content
    number = int(text.split()[1])
    if request.system == "other" and number < 6:
        return "positive" if number % 2 else "negative"
    return "positive"


def disagreeing_results() -> pl.Results:
    suite = pl.Suite("browser-suite", labels=["positive", "negative"])
    for i in range(12):
        suite.add_case(f"text {i} café", "positive" if i % 2 else "negative",
                       category=["happy_path", "edge_case"][i % 2])
    prompt = pl.Prompt(name="p", version="1", model="claude-3-5-sonnet-20241022")
    variants = {"A": prompt, "B": prompt.with_changes(system="other")}
    return pl.run(suite, variants, pl.FakeProvider(_answer), progress=False, cache=False)


def visible_rows(page) -> list[dict]:
    """The rows a reader sees now: their case, variant and outcome."""
    return page.eval_on_selector_all(
        ".pl-answers tbody tr",
        "rows => rows.filter(r => r.offsetParent !== null).map(r => ({case: r.cells[0].textContent, "
        "variant: r.dataset.variant, category: r.dataset.category, outcome: r.dataset.outcome}))")


def wait_for_count(page, shown: int) -> None:
    """Wait until the table's counter says ``shown`` rows are visible (the filter has run)."""
    page.wait_for_function("n => document.querySelector('.pl-answers .pl-count').textContent.startsWith(n + ' of')",
                           arg=shown)


def test_report_table_filters_change_the_rows_offline(page, tmp_path):
    results = disagreeing_results()
    df = results.df
    path = comparison_report(tmp_path / "r.html", results, pl.compare(results, baseline="A"), "demo")
    page.route("**/*", lambda route: route.abort() if not route.request.url.startswith("file:") else route.continue_())
    page.goto(path.resolve().as_uri())
    page.wait_for_selector(".pl-answers .pl-count")
    assert len(visible_rows(page)) == len(df) == 24
    assert page.text_content(".pl-answers .pl-count") == "24 of 24 rows"
    assert "browser-suite" in page.text_content(".pl-suite")

    page.select_option(".pl-answers [data-filter=outcome]", "fail")
    failed = df[df["passed"] == False]  # noqa: E712 (a pandas mask)
    wait_for_count(page, len(failed))
    rows = visible_rows(page)
    assert {(r["case"], r["variant"]) for r in rows} == set(zip(failed["case_id"], failed["variant"], strict=True))
    assert {r["outcome"] for r in rows} == {"fail"}

    page.select_option(".pl-answers [data-filter=variant]", "B")
    expected = failed[failed["variant"] == "B"]
    wait_for_count(page, len(expected))
    assert sorted(r["case"] for r in visible_rows(page)) == sorted(expected["case_id"])

    # back to everything, then the "variants disagree" box: the cases where A and B reach different outcomes
    page.select_option(".pl-answers [data-filter=outcome]", "")
    page.select_option(".pl-answers [data-filter=variant]", "")
    page.check(".pl-answers [data-filter=disagree]")
    per_case = df.groupby("case_id")["passed"].nunique()
    disagree = set(per_case[per_case > 1].index)
    assert disagree  # the fixture is built so that B fixes some of A's failures
    wait_for_count(page, (2 * len(disagree)))
    assert {r["case"] for r in visible_rows(page)} == disagree

    # text search reads the whole row (input, answer, reason), case-insensitively
    page.uncheck(".pl-answers [data-filter=disagree]")
    page.fill(".pl-answers [data-filter=text]", "TEXT 7 CAFÉ")
    wait_for_count(page, 2)
    assert {r["case"] for r in visible_rows(page)} == set(df.loc[df["input"] == "text 7 café", "case_id"])


# ---- JupyterLab opens a notebook, runs it and shows its output ---------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_server(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)  # polling a socket, not waiting on the page
    pytest.fail(f"JupyterLab did not answer {url} in {timeout_s}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab on loopback: a free port, a random token, no browser, a temp root dir and config dirs."""
    if shutil.which("jupyter", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("jupyterlab is not installed in this environment (the dev extra)")
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws"),
           "PYTHONPATH": os.pathsep.join([str(Path(pl.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    # no news pop-up: it asks the network and can cover the buttons the tests click
    notification = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text('{"fetchNews": "false", "checkForUpdates": false}', encoding="utf-8")
    log = tmp_path / "jupyterlab.log"
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:  # CI containers run as root; the server refuses that unless told
        command.append("--allow-root")
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", process, log)
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "root": root, "log": log}
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def small_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Browser test"),
        nbformat.v4.new_code_cell("import promptlab as pl\nsuite = pl.Suite('nb', labels=['yes', 'no'])\n"
                                  "for i in range(5):\n    suite.add_case(f'q{i}', 'yes')\n"
                                  "r = pl.run(suite, pl.Prompt(name='p', version='1', model='m'), "
                                  "pl.FakeProvider('yes'), progress=False, cache=False)"),
        nbformat.v4.new_code_cell("print('accuracy', r.df['passed'].mean(), 'rows', len(r.df))"),
    ]
    nbformat.write(notebook, path)


def accept_dialog(page) -> None:
    page.click(".jp-Dialog .jp-mod-accept")
    page.wait_for_selector(".jp-Dialog", state="detached")


def open_and_run_all(page, jupyterlab, name: str, shows: str):
    """Open ``name`` in JupyterLab, run every cell from the Run menu, and return the output showing ``shows``.

    On a loaded machine JupyterLab may ask "Select Kernel" when cells run before its session connected; the
    dialog is accepted (the notebook's own python3 kernel) and the cells run again (they are idempotent).
    """
    page.goto(f"{jupyterlab['url']}/lab/tree/{name}?token={jupyterlab['token']}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
    output = f".jp-OutputArea-output:has-text('{shows}')"
    for _attempt in range(3):
        # the kernel is up before we run: the toolbar's indicator and the status bar read Idle
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']")
        page.wait_for_selector("text=/\\| Idle$/")
        if page.query_selector(".jp-Dialog"):  # the kernel dialog came up on its own while the page loaded
            accept_dialog(page)
        page.click(".lm-MenuBar-item:has-text('Run')")
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            found = page.wait_for_selector(f"{output}, .jp-Dialog")
        except sync_api.TimeoutError:
            break
        if "jp-Dialog" not in (found.get_attribute("class") or ""):
            return found
        accept_dialog(page)
    shot = jupyterlab["root"].parent / "jupyterlab.png"
    page.screenshot(path=str(shot))
    pytest.fail(f"no output {shows!r} (screenshot {shot}); notebook: {page.text_content('.jp-NotebookPanel')[:2000]}"
                f"\nserver log:\n{jupyterlab['log'].read_text()[-3000:]}")


def test_jupyterlab_opens_runs_and_shows_a_notebook(page, jupyterlab):
    small_notebook(jupyterlab["root"] / "small.ipynb")
    output = open_and_run_all(page, jupyterlab, "small.ipynb", "accuracy")
    assert output.text_content().split() == ["accuracy", "1.0", "rows", "5"]
    assert "Traceback" not in page.text_content(".jp-NotebookPanel .jp-Notebook")


# ---- pl.view in JupyterLab: a filter changes the rows, a verdict lands in the review file --------------------
VIEWER_NOTEBOOK = '''import promptlab as pl

def answer(request):
    number = int(request.messages[-1].content.split()[1])
    if request.system == "other" and number < 6:
        return "positive" if number % 2 else "negative"
    return "positive"

suite = pl.Suite("viewer-suite", labels=["positive", "negative"])
for i in range(12):
    suite.add_case(f"text {i}", "positive" if i % 2 else "negative", category=["happy_path", "edge_case"][i % 2])
suite.save("suite.yaml")
prompt = pl.Prompt(name="p", version="1", model="m")
results = pl.run(suite, {"A": prompt, "B": prompt.with_changes(system="other")}, pl.FakeProvider(answer),
                 progress=False, cache=False)
viewer = pl.view(results, suite="suite.yaml", review_file="suite.review.yaml", reviewer="browser-test")
viewer'''


def viewer_count(page, shown: int, total: int) -> None:
    """Wait until the viewer's summary says ``shown of total rows`` (the filter reached the kernel and back)."""
    page.wait_for_selector(f".jp-OutputArea-output:has-text('{shown} of {total} rows')")


def test_jupyterlab_view_filter_changes_rows_and_a_verdict_is_written(page, jupyterlab):
    root = jupyterlab["root"]
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(VIEWER_NOTEBOOK)]
    nbformat.write(notebook, root / "viewer.ipynb")
    # 12 cases, one row each; A fails the six even (negative) cases, B gets cases 0-5 right
    open_and_run_all(page, jupyterlab, "viewer.ipynb", "12 of 12 rows")
    page.check(".pl-view-failures input[type=checkbox]")
    viewer_count(page, 6, 12)
    page.check(".pl-view-disagree input[type=checkbox]")
    viewer_count(page, 3, 12)  # cases 0, 2, 4: B right where A is wrong
    rows = page.eval_on_selector_all(".pl-view-table tbody tr", "rows => rows.map(r => r.dataset.case)")
    assert rows == ["happy_path-001", "happy_path-002", "happy_path-003"]

    # the first row is selected: mark it as a human pass with a comment and save
    page.click(".pl-view-verdict button:has-text('pass')")
    page.fill(".pl-view-comment input", "sarcasm, the label is right")
    page.click("button.pl-view-save")
    page.wait_for_selector(".jp-OutputArea-output:has-text('saved: happy_path-001')")
    reviews = pl.evaluation.load_reviews(root / "suite.review.yaml")
    assert reviews[["case_id", "human", "comment", "reviewer"]].to_dict("records") == [
        {"case_id": "happy_path-001", "human": "pass", "comment": "sarcasm, the label is right",
         "reviewer": "browser-test"}]
