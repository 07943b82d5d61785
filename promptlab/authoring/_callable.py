"""Python in files: ``module:function`` references, imported from a file's folder, and prompts built by a function.

An eval file (or a suite's scorer) may name Python code as ``"module:function"``: a prompt builder, a scorer, an
output transform. `import_callable` imports it with the referring file's folder first on ``sys.path``; a module
that lives in that folder is imported afresh when its file changed (so an edit shows on the next load in a running
notebook), and a module of the same name imported earlier from another folder this way does not shadow it.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ArgumentError


def _local_source(folder: Path, module_name: str) -> Path | None:
    """The file in ``folder`` that holds ``module_name`` (``a/b.py`` or ``a/b/__init__.py``), if any."""
    base = folder.joinpath(*module_name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return None


@contextmanager
def _first_on_path(folder: Path) -> Iterator[None]:
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        try:
            sys.path.remove(entry)
        except ValueError:  # the user's module took it off itself
            pass


# modules this file imported from a folder: name -> (file, modification time, size), so an edited file (or another
# folder's module of the same name) is imported afresh, while modules imported by anyone else are left alone
_IMPORTED: dict[str, tuple[Path, int, int]] = {}


def _stamp(path: Path) -> tuple[Path, int, int]:
    stat = path.stat()
    return path, stat.st_mtime_ns, stat.st_size


def _import_module(module_name: str, folder: Path) -> Any:
    local = _local_source(folder, module_name)
    loaded = sys.modules.get(module_name)
    if local is not None and loaded is not None and module_name in _IMPORTED:
        if _IMPORTED[module_name] != _stamp(local):
            for name in [m for m in sys.modules if m == module_name or m.startswith(module_name + ".")]:
                del sys.modules[name]
    importlib.invalidate_caches()  # a file written moments ago (a test, a notebook cell) must be found
    module = importlib.import_module(module_name)
    if local is not None and getattr(module, "__file__", None) and Path(module.__file__).resolve() == local:
        _IMPORTED[module_name] = _stamp(local)
    return module


def import_callable(ref: str, *, base_dir: str | Path | None = None, error: type[Exception] = ArgumentError,
                    what: str = "python reference") -> Callable[..., Any]:
    """The function ``ref`` (``"module:function"``, dotted on either side) names, imported from ``base_dir``.

    Args:
        ref: ``"module:function"``; ``"pkg.mod:Class.method"`` works too.
        base_dir: the folder put first on ``sys.path`` while importing (the referring file's folder); default the
            current directory.
        error: the exception class to raise (the referring file's: `SuiteFileError`, ...).
        what: how to name the reference in messages ("scorer", "prompt 'built'" ...).

    Raises:
        error: the reference is malformed, the module cannot be imported (its own exception is named), or it has no
            such attribute (with "did you mean" and the functions it defines), or the attribute is not callable.
    """
    from ._labels import PYTHON_REF

    if not isinstance(ref, str) or not PYTHON_REF.fullmatch(ref.strip()):
        raise error(f"{what}: {ref!r} is not a 'module:function' reference. Write it like 'my_checks:is_polite' "
                    "(my_checks.py in the file's folder, is_polite a function in it).")
    module_name, _, attribute = ref.strip().partition(":")
    folder = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    with _first_on_path(folder):
        try:
            module = _import_module(module_name, folder)
        except Exception as exc:  # importing the user's module runs their code, which may raise anything
            raise error(f"{what}: cannot import module {module_name!r} (looked first in {str(folder)!r}): "
                        f"{type(exc).__name__}: {exc}. Check the module's name and that it imports cleanly.") from None
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            names = [n for n in dir(found) if not n.startswith("_") and callable(getattr(found, n, None))]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            listed = f" It defines: {', '.join(sorted(names)[:20])}." if names else ""
            raise error(f"{what}: {module_name!r} has no {part!r} ({ref!r}).{hint}{listed}")
        found = getattr(found, part)
    if not callable(found):
        raise error(f"{what}: {ref!r} is a {type(found).__name__}, not a function. Name a function.")
    return found
