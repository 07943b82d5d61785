"""The python module the promptfoo importer writes beside the eval file: adapters between the two calling styles.

promptfoo calls a python prompt with a context (``{vars, provider}``), a python assertion with ``(output,
context)`` reading a bool, a number or ``{pass, score, reason}``, and a python transform with ``(output,
context)``. promptlab calls a prompt function with the variables, a scorer with ``(output, case)`` and a
transform with the answer. `Shims` collects what a config needs and writes one small module of adapters; the
user's own python files are loaded by path from where they are, so they stay the one copy.
"""

from __future__ import annotations

import json
import os
import pprint
import re
import textwrap
from pathlib import Path
from typing import Any

from ._promptfoo_read import Source

_HEADER = '''"""Adapters written by `promptlab import promptfoo` for {config}.

promptfoo calls python prompts with a context ({{vars, provider}}), python assertions with (output, context) and
reads a bool, a number or {{pass, score, reason}}; promptlab calls prompt functions with the variables, scorers
with (output, case) and transforms with the answer. The functions below translate; edit them freely.
"""

from __future__ import annotations

import importlib.util
import json
import math  # noqa: F401 - promptfoo's inline python assertions may use json, math and re
import re  # noqa: F401
import sys
from functools import cache
from pathlib import Path

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from promptlab.evaluation import Score

_HERE = Path(__file__).resolve().parent
_JINJA = ImmutableSandboxedEnvironment(undefined=StrictUndefined)


@cache
def _module(relative_path):
    """A python file of the promptfoo project, loaded by path (its folder on sys.path for its own imports)."""
    path = (_HERE / relative_path).resolve()
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(f"promptfoo_user_{{abs(hash(str(path)))}}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _function(relative_path, name):
    return getattr(_module(relative_path), name)


def _context(case, config):
    """promptfoo's assertion context, from a promptlab case."""
    variables = dict(case.input) if isinstance(case.input, dict) else {{"input": case.input}}
    test = {{"vars": variables, "description": case.metadata.get("description"), "metadata": case.metadata}}
    return {{"vars": variables, "test": test, "prompt": None, "config": config, "provider": None,
            "providerResponse": None, "logProbs": None, "metadata": None}}


def _grade(result, threshold, negate):
    """promptfoo's reading of a python assertion's result (bool, number, {{pass, score, reason}}) as a Score."""
    if hasattr(result, "pass_"):
        result = {{"pass": result.pass_, "score": getattr(result, "score", None),
                  "reason": getattr(result, "reason", "")}}
    if isinstance(result, str):
        text = result.strip()
        result = text.lower() == "true" if text.lower() in ("true", "false") else (
            json.loads(text) if text.startswith("{{") else float(text))
    if isinstance(result, bool):
        passed, value, reason = result, float(result), f"python returned {{result}}"
    elif isinstance(result, (int, float)):
        passed = result > 0 if threshold is None else result >= threshold
        value, reason = float(result), f"python returned {{result}}" + (
            "" if threshold is None else f" (threshold {{threshold}})")
    elif isinstance(result, dict):
        passed = bool(result.get("pass", result.get("pass_")))
        value = float(result["score"]) if result.get("score") is not None else float(passed)
        reason = str(result.get("reason") or "")
        if threshold is not None and value < threshold:
            passed, reason = False, f"score {{value}} is below the threshold {{threshold}}: {{reason}}"
    else:
        raise TypeError(f"a python assertion returns a bool, a number or {{{{pass, score, reason}}}}, "
                        f"got {{result!r}}")
    if negate:
        passed, reason = not passed, f"negated (not-python): {{reason}}"
    return Score(value, passed, reason)


def _prompt(result):
    """A promptfoo prompt function's result (text, a JSON chat, messages, {{prompt}}) as promptlab's."""
    if isinstance(result, dict) and "prompt" in result:
        result = result["prompt"]
    if isinstance(result, str):
        try:
            messages = json.loads(result) if result.lstrip().startswith("[") else None
        except ValueError:
            messages = None
        return _messages(messages) if isinstance(messages, list) else result
    return _messages(result)


def _messages(messages):
    return [{{"role": m["role"], "content": m["content"]}} for m in messages]


def _render(messages, variables):
    return [{{"role": m["role"], "content": _JINJA.from_string(m["content"]).render(**variables)}}
            for m in messages]
'''


MODULE = "promptfoo_adapters"  # imported from the eval file's folder (a same-named one elsewhere does not shadow it)


class Shims:
    """The adapters one imported config needs, written as one module (`render`) named `module`."""

    def __init__(self, out_dir: Path, config: Path):
        self.out_dir = out_dir.resolve()
        self.config = config
        self.module = MODULE
        self._functions: list[str] = []
        self._names: set[str] = set()
        self._asserts: dict[str, str] = {}
        self._count = 0  # scorer adapters numbered in the order written: assert_1, assert_2 ...

    @property
    def empty(self) -> bool:
        """Whether no adapter was needed (no module is written then)."""
        return not self._functions

    def render(self) -> str:
        """The module's text."""
        body = "\n\n\n".join(self._functions)
        return _HEADER.format(config=self.config.name) + "\n\n" + body + "\n"

    def _name(self, stem: str) -> str:
        name = stem = ("_" if stem.startswith("_") else "") + _ident(stem)
        n = 1
        while name in self._names:
            n += 1
            name = f"{stem}_{n}"
        self._names.add(name)
        return name

    def _numbered(self) -> str:
        self._count += 1
        return self._name(f"assert_{self._count}")

    def _path(self, path: Path) -> str:
        return Path(os.path.relpath(path.resolve(), self.out_dir)).as_posix()

    def python_assert(self, value: str, config: dict[str, Any], threshold: Any, negate: bool,
                      src: Source) -> tuple[str | None, str]:
        """A scorer adapter for a python assertion (inline code or ``file://x.py[:fn]``): its ``module:function``."""
        key = json.dumps([value, config, threshold, negate], sort_keys=True, default=str)
        if key in self._asserts:
            return self._asserts[key], ""
        threshold = float(threshold) if isinstance(threshold, int | float) else None
        ref = src.ref(value.strip())
        if ref is not None:
            match = re.fullmatch(r"(.+?\.py)(?::(\w+))?", ref)
            paths = src.paths(match[1]) if match else []
            if not paths:
                return None, f"{value}: no such python file (paths are relative to the promptfoo config)"
            function = match[2] or "get_assert"
            load = f"    check = _function({self._path(paths[0])!r}, {function!r})\n"
            call, doc, extra = "check", f"{value.strip()} (function {function})", ""
        else:
            inner = self._name(f"_assert_{self._count + 1}_code")
            code = textwrap.dedent(value).strip("\n")
            lines = code if "\n" in code else f"return {code.strip()}"
            extra = f"\n\n\ndef {inner}(output, context):\n{textwrap.indent(lines, '    ')}"
            try:
                compile(extra, "<python assertion>", "exec")
            except SyntaxError as exc:
                return None, f"the python code does not compile (line {exc.lineno}: {exc.msg})"
            call, doc, load = inner, "python: " + " ".join(code.split())[:80], ""
        name = self._numbered()
        self._functions.append(
            f"def {name}(output, case):\n    {_docstring(doc)}\n{load}"
            f"    context = _context(case, {pprint.pformat(config, width=80)})\n"
            f"    return _grade({call}(output, context), threshold={threshold!r}, negate={negate!r})" + extra)
        self._asserts[key] = f"{self.module}:{name}"
        return self._asserts[key], ""

    def json_equals(self, value: Any, negate: bool) -> str:
        """A scorer adapter for promptfoo's ``equals`` with an object: the answer parses to an equal JSON value."""
        key = json.dumps(["equals", value, negate], sort_keys=True, default=str)
        if key not in self._asserts:
            name = self._numbered()
            self._functions.append(
                f"def {name}(output, case):\n    {_docstring('equals ' + json.dumps(value))}\n"
                f"    expected = {pprint.pformat(value, width=80)}\n"
                "    try:\n        same = json.loads(output) == expected\n    except ValueError:\n"
                "        same = False\n"
                f"    return _grade(same, threshold=None, negate={negate!r})")
            self._asserts[key] = f"{self.module}:{name}"
        return self._asserts[key]

    def no_verdict(self) -> str:
        """A scorer adapter for a test without assertions: the answer is kept, with no verdict (passed NA)."""
        if "no_assertions" not in self._asserts:
            name = self._name("no_assertions")
            self._functions.append(
                f"def {name}(output, case):\n    {_docstring('a promptfoo test without assertions')}\n"
                "    return Score(None, None, \"no assertions in promptfoo: the answer is recorded, with no verdict\")")
            self._asserts["no_assertions"] = f"{self.module}:{name}"
        return self._asserts["no_assertions"]

    def python_prompt(self, prompt_id: str, path: Path, function: str, source: str) -> str:
        """A prompt adapter calling a promptfoo python prompt function with ``{vars, provider}``."""
        name = self._name(f"prompt_{prompt_id}")
        self._functions.append(
            f"def {name}(variables):\n    {_docstring(source)}\n"
            f"    build = _function({self._path(path)!r}, {function!r})\n"
            "    context = {\"vars\": dict(variables), \"provider\": {\"id\": None, \"label\": None}}\n"
            "    return _prompt(build(context))")
        return f"{self.module}:{name}"

    def chat_prompt(self, prompt_id: str, messages: list[dict[str, str]], source: str) -> str:
        """A prompt adapter rendering a chat's messages (each a template) with the case's variables."""
        name = self._name(f"prompt_{prompt_id}")
        constant = "_" + name.upper()
        self._functions.append(
            f"{constant} = {pprint.pformat(messages, width=80, sort_dicts=False)}\n\n\n"
            f"def {name}(variables):\n    {_docstring(source)}\n    return _render({constant}, variables)")
        return f"{self.module}:{name}"

    def transform(self, path: Path, function: str) -> str:
        """A transform adapter calling a promptfoo python transform with ``(output, context)``."""
        name = self._name("transform")
        self._functions.append(
            f"def {name}(output):\n    {_docstring(f'{path.name} ({function})')}\n"
            f"    change = _function({self._path(path)!r}, {function!r})\n"
            f"    return str(change(output, {{\"vars\": {{}}, \"prompt\": {{}}}}))")
        return f"{self.module}:{name}"


def _ident(text: str) -> str:
    name = re.sub(r"\W+", "_", text.lower()).strip("_") or "x"
    return name if not name[0].isdigit() else f"_{name}"


def _docstring(text: str) -> str:
    return repr(" ".join(str(text).split())[:100])
