"""Repository invariants: CI runs README's test command, the public surface is sorted, notebooks are stripped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import promptlab as pl

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(python3 -m venv .+?)\n```", (ROOT / "README.md").read_text())


def test_readme_has_exactly_two_setup_commands():
    commands = readme_commands()
    assert len(commands) == 2, commands
    assert "promptlab eval" in commands[0] and "pytest" in commands[1]


def test_ci_runs_readmes_test_command_exactly():
    ci_lines = (ROOT / ".ci/run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_notebooks_are_stripped_of_outputs():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert cell.get("outputs") == [] and cell.get("execution_count") is None, path.name


def test_bundled_content_is_valid_and_big_enough():
    sentiment = pl.load_suite(ROOT / "suites/sentiment.yaml")
    counts = sentiment.counts()
    assert len(sentiment) >= 60 and {"happy_path", "edge_case", "adversarial"} <= set(counts.index)
    tickets = pl.load_suite(ROOT / "suites/support_tickets.yaml")
    assert len(tickets) >= 40
    for path in sorted((ROOT / "prompts").rglob("*.yaml")):
        prompt = pl.load_prompt(path)
        suite = tickets if "support" in str(path) else sentiment
        for case in suite:
            prompt.render(case.input)  # no missing variables anywhere


def test_the_house_is_lint_clean():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", str(ROOT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
