"""Python in files: ``module:function`` references, imported from a file's folder, and prompts built by a function.

An eval file (or a suite's scorer) may name Python code as ``"module:function"``: a prompt builder, a scorer, an
output transform. `import_callable` imports it with the referring file's folder first on ``sys.path``; a module
that lives in that folder is imported afresh when its file changed (so an edit shows on the next load in a running
notebook), and a module of the same name imported earlier from another folder this way does not shadow it.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import inspect
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, RenderError
from ..providers._base import Message, Request


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


# ---- prompts built by a function ------------------------------------------------------------------------------------
_ROLES = ("system", "user", "assistant")


def _source_of(fn: Callable[..., Any]) -> str:
    """The source the content hash covers: the defining module's file (an edit to a helper it calls changes the
    hash too), else the function's own source, else its compiled code."""
    module = inspect.getmodule(fn)
    for target in (module, fn):
        try:
            return inspect.getsource(target) if target is not None else ""
        except (OSError, TypeError):
            continue
    code = getattr(fn, "__code__", None)
    return repr((code.co_code, code.co_consts)) if code is not None else repr(fn)


class CallablePrompt:
    """A prompt built by a Python function; the runner uses it as it uses a `Prompt`.

    The function gets the case's template variables (``{"input": text}`` for a text input) and returns the user
    message as text, or the messages as a list of ``{role, content}`` (``system`` first if any, then user and
    assistant turns, ending with a user turn).

    Attributes:
        name, version: the prompt's identity (``version`` defaults to the first 8 hex digits of the content hash).
        ref: ``"module:function"``, or ``name@version``-style identity through `ref`.
        model, temperature, max_tokens, stop, system: as on `Prompt` (``system`` is used when the function returns
            text or messages without a system turn).
        content_hash: SHA-256 (16 hex digits) of the source (the defining module's file), the reference and the
            request fields: an edit of the code changes it.
    """

    def __init__(self, name: str, fn: Callable[..., Any], *, model: str, source_ref: str | None = None,
                 version: str | None = None, temperature: float = 0.0, max_tokens: int = 256,
                 stop: tuple[str, ...] | list[str] = (), system: str = ""):
        if not callable(fn):
            raise ArgumentError(f"prompt {name!r}: {fn!r} is not a function. Pass the function that builds messages.")
        self.name, self.fn, self.model = str(name), fn, str(model)
        self.source_ref = source_ref or f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', '?')}"
        self.temperature, self.max_tokens, self.stop = float(temperature), int(max_tokens), tuple(stop)
        self.system = system
        self.content_hash = self._hash()
        self.version = str(version) if version is not None else self.content_hash[:8]

    def _hash(self) -> str:
        fields = {"kind": "python", "ref": self.source_ref, "source": _source_of(self.fn), "model": self.model,
                  "temperature": self.temperature, "max_tokens": self.max_tokens, "stop": list(self.stop),
                  "system": self.system}
        canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @property
    def ref(self) -> str:
        """``name@version``, the prompt's human-readable identity."""
        return f"{self.name}@{self.version}"

    def with_changes(self, **changes: Any) -> CallablePrompt:
        """A new prompt with some fields replaced (``temperature``, ``max_tokens``, ``stop``, ``model``, ``system``,
        ``name``, ``version``); the version stays unless given, and the content hash follows the fields."""
        fields = {"model": self.model, "source_ref": self.source_ref, "temperature": self.temperature,
                  "max_tokens": self.max_tokens, "stop": self.stop, "system": self.system, "name": self.name}
        unknown = sorted(set(changes) - set(fields) - {"version"})
        if unknown:
            raise ArgumentError(f"prompt {self.name!r}: cannot change {unknown!r}; a python prompt changes "
                                f"{sorted(fields)}.")
        merged = {**fields, "version": self.version, **changes}  # the version stays, as a prompt file's does
        return CallablePrompt(merged.pop("name"), self.fn, **merged)

    def render(self, case_input: str | dict[str, Any], *, model: str | None = None) -> Request:
        """Call the function with the case's variables and build the request.

        Raises:
            RenderError: the function raised, or returned something that is not text or a list of messages.
        """
        variables = dict(case_input) if isinstance(case_input, dict) else {"input": case_input}
        try:
            built = self.fn(variables)
        except Exception as exc:  # the user's function may raise anything; name it and the prompt
            raise RenderError(f"prompt {self.name!r} ({self.source_ref}) raised {type(exc).__name__}: {exc} for input "
                              f"{_short(case_input)}.") from None
        system, messages = self._messages(built)
        return Request(model=model or self.model, system=system, messages=messages, temperature=self.temperature,
                       max_tokens=self.max_tokens, stop=self.stop)

    def _messages(self, built: Any) -> tuple[str, tuple[Message, ...]]:
        if isinstance(built, str):
            return self.system, (Message("user", built),)
        fix = ("Return the user message as text, or a list of {role, content} with roles system (first), user and "
               "assistant, ending with a user turn.")
        if not isinstance(built, list | tuple) or not built:
            raise RenderError(f"prompt {self.name!r} ({self.source_ref}) returned {_short(built)}. {fix}")
        system, turns = [], []
        for number, item in enumerate(built):
            role = item.get("role") if isinstance(item, dict) else None
            content = item.get("content") if isinstance(item, dict) else None
            if role not in _ROLES or not isinstance(content, str) or (role == "system" and turns):
                raise RenderError(f"prompt {self.name!r} ({self.source_ref}): message {number} is {_short(item)}. "
                                  f"{fix}")
            (system if role == "system" else turns).append(Message(role, content) if role != "system" else content)
        if not turns or turns[-1].role != "user":
            raise RenderError(f"prompt {self.name!r} ({self.source_ref}) returned no final user turn. {fix}")
        return ("\n\n".join(system) if system else self.system), tuple(turns)

    def __repr__(self) -> str:
        return f"CallablePrompt({self.ref!r}, {self.source_ref}, model={self.model!r}, hash={self.content_hash!r})"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
