"""Output transforms: turn the model's answer into what the scorer reads, before scoring.

``run(..., transform=...)`` takes a `Transform` or any callable ``str -> str``. Rows keep the model's text in
``output_raw`` and the transformed text in ``output``; a transform that fails (no match, a function that raises)
makes the row a ``transform_error`` with the message, ``output_raw`` kept and no verdict. Built-ins::

    Transform.regex(r"Label: (\\w+)")        # group 1 of the first match, or the whole match without groups
    Transform.json_path("$.label")          # a value in the first JSON object/array of the answer
    Transform.python("my_module:clean")     # a function str -> str, imported from base_dir

In an eval file: ``transform: {regex: ...}``, ``{json_path: ...}`` or ``{python: "module:function"}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..authoring._callable import import_callable
from ..errors import ArgumentError
from ._scoring import _NO_JSON, find_json


class TransformFailed(Exception):  # noqa: N818 - a private signal, caught by the runner and recorded on the row
    """A built-in transform found nothing to return (the row records the message as a ``transform_error``)."""


class Transform:
    """An output transform (see the module docstring): call it with the answer's text.

    Args:
        fn: ``str -> str`` (any other value is written as JSON, None is a failure).
        description: how the run's meta names it (``regex 'Label: (\\w+)'``).
    """

    def __init__(self, fn: Callable[[str], Any], description: str):
        self.fn = fn
        self.description = description

    def __call__(self, text: str) -> str:
        value = self.fn(text)
        if value is None:
            raise TransformFailed(f"the transform ({self.description}) returned None")
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)

    def __repr__(self) -> str:
        return f"Transform({self.description})"

    # ---- the built-ins ----------------------------------------------------------------------------------------
    @classmethod
    def regex(cls, pattern: str, *, flags: int = 0) -> Transform:
        """Group 1 of the first match of ``pattern`` (the whole match when it has no group)."""
        try:
            compiled = re.compile(pattern, flags)
        except (re.error, TypeError) as exc:
            raise ArgumentError(f"transform regex {pattern!r} is not a valid regular expression ({exc}).") from None

        def extract(text: str) -> str:
            match = compiled.search(text)
            if match is None:
                raise TransformFailed(f"/{pattern}/ does not match the answer {_short(text)!r}")
            return match.group(1) if compiled.groups else match.group(0)

        return cls(extract, f"regex {pattern!r}")

    @classmethod
    def json_path(cls, path: str) -> Transform:
        """The value at ``path`` (``$.a.b[0]``, ``$['key with spaces']``) in the first JSON object or array of
        the answer (prose or a code fence around it is fine)."""
        steps = parse_json_path(path)

        def extract(text: str) -> Any:
            value = find_json(text)
            if value is _NO_JSON:
                raise TransformFailed(f"no JSON object or array in the answer {_short(text)!r} (for {path})")
            for step in steps:
                value = _step(value, step, path)
            return value

        return cls(extract, f"json_path {path!r}")

    @classmethod
    def python(cls, ref: str, *, base_dir: str | Path | None = None) -> Transform:
        """The function ``ref`` (``"module:function"``, ``str -> str``) names, imported from ``base_dir``."""
        return cls(import_callable(ref, base_dir=base_dir, what="transform"), f"python {ref.strip()}")


_TRANSFORM_KEYS = ("regex", "json_path", "python")


def as_transform(spec: Any, *, base_dir: str | Path | None = None) -> Transform | None:
    """A `Transform` from what users pass: a Transform, a callable, or a mapping with one of ``regex``,
    ``json_path`` or ``python`` (the eval file's form); None stays None.

    Raises:
        ArgumentError: anything else, or a mapping with other keys (with "did you mean").
    """
    if spec is None or isinstance(spec, Transform):
        return spec
    if isinstance(spec, Mapping):
        from .._yaml import did_you_mean

        if len(spec) != 1 or next(iter(spec)) not in _TRANSFORM_KEYS:
            stray = next((key for key in spec if key not in _TRANSFORM_KEYS), None)
            hint = did_you_mean(stray, _TRANSFORM_KEYS) if stray is not None else ""
            raise ArgumentError(f"a transform is one of {{regex: ...}}, {{json_path: ...}} or {{python: "
                                f"'module:function'}}, got {dict(spec)!r}.{hint}")
        kind, value = next(iter(spec.items()))
        if not isinstance(value, str):
            raise ArgumentError(f"transform {kind} takes text, got {value!r}.")
        if kind == "python":
            return Transform.python(value, base_dir=base_dir)
        return Transform.regex(value) if kind == "regex" else Transform.json_path(value)
    if callable(spec):
        name = getattr(spec, "__qualname__", None) or type(spec).__name__
        return Transform(spec, f"python {getattr(spec, '__module__', '?')}:{name}")
    raise ArgumentError(f"transform must be a Transform, a function str -> str, or {{regex|json_path|python: ...}}; "
                        f"got {type(spec).__name__} {spec!r}.")


# ---- JSON paths ----------------------------------------------------------------------------------------------------
_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(-?\d+)\]|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]")


def parse_json_path(path: str) -> list[str | int]:
    """``"$.a.b[0]"`` → ``["a", "b", 0]``: keys (``.name``, ``['name']``) and list indexes (``[0]``, ``[-1]``).

    Raises:
        ArgumentError: the path does not start with ``$`` or has a part outside that subset (wildcards, filters).
    """
    if not isinstance(path, str) or not path.strip().startswith("$"):
        raise ArgumentError(f"a JSON path starts with $, like '$.label' or '$.items[0].name'; got {path!r}.")
    text, steps, at = path.strip(), [], 1
    while at < len(text):
        match = _STEP.match(text, at)
        if match is None:
            raise ArgumentError(f"JSON path {path!r}: cannot read {text[at:]!r}. Write keys as .name or ['name'] and "
                                "indexes as [0]; wildcards and filters are not supported.")
        key, index, single, double = match.groups()
        steps.append(int(index) if index is not None else next(p for p in (key, single, double) if p is not None))
        at = match.end()
    return steps


def _step(value: Any, step: str | int, path: str) -> Any:
    if isinstance(step, int):
        if isinstance(value, list) and -len(value) <= step < len(value):
            return value[step]
        raise TransformFailed(f"{path}: no item [{step}] in {_short(value)}")
    if isinstance(value, dict) and step in value:
        return value[step]
    keys = f" (keys: {', '.join(map(str, value))})" if isinstance(value, dict) else ""
    raise TransformFailed(f"{path}: no key {step!r} in {_short(value)}{keys}")


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"
