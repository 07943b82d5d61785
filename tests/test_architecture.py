"""The house's rules, checked: the exact face, no import circle, small files, notebooks on the faces only.

The face test follows httpx's ``test_exported_members``: the exact set is written here, so adding a public
name is a decision made in review, not an accident.
"""

from __future__ import annotations

import ast
import json
import re
import types
from pathlib import Path

import promptlab as pl

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "promptlab"

FACE = {
    # prompts and suites
    "Prompt", "load_prompt", "Suite", "Case", "load_suite", "diff",
    # running, results, scoring
    "run", "arun", "estimate", "load_eval", "Results", "Budget", "ResponseCache", "Score", "ExactMatch", "Contains",
    "AnyOf", "runs", "load_run",
    "Regex", "JsonValid", "JsonSchema", "JsonField", "Numeric", "judge",
    # comparing and plotting
    "compare", "Comparison", "plot_accuracy", "plot_latency", "plot_significance", "plot_cost_quality", "explore",
    "view",
    # registry, providers, fakes
    "Registry", "optimize_prompt", "FakeProvider", "OpenAIProvider", "AnthropicProvider", "FakeLLMServer",
    # errors users catch
    "PromptlabError", "PromptFileError", "SuiteFileError", "RenderError", "ProviderError", "GateRefused",
}
SUBFACES = {"authoring", "evaluation", "importers", "stats", "registry", "production", "optimize", "providers",
            "notebook", "testing", "errors", "compat"}


def test_the_face_is_exactly_this_set_and_every_name_resolves():
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(pl.__path__, "promptlab."):  # importing a module must not shadow a name
        if not module.name.endswith(("providers._local", "cli.__main__")):  # llama_cpp is an extra; main runs
            importlib.import_module(module.name)
    assert set(pl.__all__) == FACE | SUBFACES
    assert set(dir(pl)) == FACE | SUBFACES | {"__version__"}
    for name in FACE:
        value = getattr(pl, name)
        assert not isinstance(value, types.ModuleType), name
    for name in SUBFACES:
        face = getattr(pl, name)
        assert isinstance(face, types.ModuleType)
        for member in face.__all__:  # every sub-face name resolves too
            getattr(face, member)


def test_a_name_off_the_face_says_where_the_face_is():
    try:
        pl.holm  # noqa: B018 - the attribute access is the test
    except AttributeError as exc:
        assert "the face lists" in str(exc)
    else:
        raise AssertionError("pl.holm should not be on the face (it is pl.stats.holm)")


# ---- no import circle -----------------------------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _face_map(tree: ast.Module, package: str) -> dict[str, str]:
    """A package's declared face (``declare(__name__, globals(), {...})``): public name → owning module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "declare" and len(node.args) == 3:
            mapping = ast.literal_eval(node.args[2])
            return {k: (package + v if v.startswith(".") else v) for k, v in mapping.items()}
    return {}


def _imports(module: str, path: Path, tree: ast.Module, modules: set[str], faces: dict) -> set[str]:
    """Every promptlab module ``module`` imports — at the top or inside functions — except for type checking."""
    found: set[str] = set()
    checks = [node for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)]
    guarded = {id(n) for node in checks for n in ast.walk(node)}
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.ImportFrom):
            anchor = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join(anchor + ([node.module] if node.module else [])) if node.level else node.module or ""
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.add(child if child in modules else faces.get(target, {}).get(alias.name, target))
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {m for m in found if m in modules and m != module}


def _import_graph() -> dict[str, set[str]]:
    trees = {_module_name(p): (p, ast.parse(p.read_text(encoding="utf-8"))) for p in PACKAGE.rglob("*.py")}
    faces = {m: _face_map(t, m) for m, (_, t) in trees.items()}
    return {m: _imports(m, p, t, set(trees), faces) for m, (p, t) in trees.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circle_even_through_imports_inside_functions():
    graph = _import_graph()
    assert len(graph) > 50  # the walk saw the package
    assert not _circles(graph)


def test_the_circle_check_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_live_production_client_does_not_import_the_batch_runner():
    graph = _import_graph()
    reach, todo = set(), ["promptlab.production._client"]
    while todo:
        for nxt in graph[todo.pop()] - reach:
            reach.add(nxt)
            todo.append(nxt)
    assert "promptlab.evaluation._runner" not in reach


def test_internals_are_private_modules():
    public = [p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")
              if not p.name.startswith("_") and p.name not in ("errors.py", "compat.py")]
    assert not public, f"modules outside the faces must be private (_name.py): {public}"


def test_no_file_is_over_600_lines():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert not {path: n for path, n in sizes.items() if n > 620}


# ---- notebooks use the faces ----------------------------------------------------------------------------------
def test_notebooks_import_only_the_faces():
    faces = {"promptlab"} | {f"promptlab.{name}" for name in SUBFACES}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            for module in re.findall(r"^\s*(?:from|import)\s+(promptlab[\w.]*)", source, re.MULTILINE):
                assert module in faces, f"{path.name} imports {module}, past the faces"
            assert not re.search(r"\bpl\.\w+\._", source), f"{path.name} reaches a private module"


# ---- dependencies point one way -------------------------------------------------------------------------------
# Rooms from the bottom up; a module may import its own room and the rooms below it, never one above.
LAYERS = (
    {"errors", "_face", "_yaml", "_config_files", "_sync", "_files", "_display", "_version"},
    {"providers"},
    {"authoring"},
    {"stats"},
    {"evaluation"},
    {"importers"},
    {"notebook"},
    {"production"},
    {"registry"},
    {"optimize"},
    {"testing", "cli", "compat", "promptlab"},
)


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "promptlab"


def _level(module: str) -> int:
    return next(i for i, rooms in enumerate(LAYERS) if _room(module) in rooms)


def test_no_upward_import():
    graph = _import_graph()
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if _level(b) > _level(a))
    assert not upward
