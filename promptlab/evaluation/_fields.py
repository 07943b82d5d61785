"""`JsonField`: a scorer that reads one field of a JSON answer — promptfoo's ``output.sentiment === vars.sentiment``
in one line: ``JsonField("sentiment")``, or ``{type: json_field, path: sentiment}`` in a file.

The answer is the JSON text a prompt with a declared ``output: {json_schema: ...}`` returns (the ``parsed``
column holds the same value); a free-text answer is read as JSON too, prose or a code fence around it allowed.
Paths are dotted keys and list indexes: ``sentiment``, ``a.b[0]``, ``items[-1].name``, ``['key with spaces']``
(a leading ``$`` as in `Transform.json_path` is accepted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..authoring._labels import LabelSet
from ..errors import ArgumentError
from ._scoring import _NO_JSON, Score, _parse_json, _require_expected, _shorten, find_json
from ._transforms import TransformFailed, _step, parse_json_path

if TYPE_CHECKING:
    from ..authoring._suite import Case


class _Unset:
    """No ``value`` given: the field is compared with the case's ``expected``."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def json_steps(path: Any) -> list[str | int]:
    """``"a.b[0]"`` → ``["a", "b", 0]``.

    Raises:
        ArgumentError: the path is not text, is empty, or has a part outside keys and indexes.
    """
    if not isinstance(path, str) or not path.strip() or path.strip() == "$":
        raise ArgumentError(f"a JSON field path names a key, such as 'sentiment' or 'items[0].name'; got {path!r}.")
    text = path.strip()
    if not text.startswith("$"):
        text = "$" + (text if text.startswith("[") else "." + text)
    try:
        return parse_json_path(text)
    except ArgumentError:
        raise ArgumentError(f"JSON field path {path!r} cannot be read: write keys separated by dots and list "
                            "indexes in brackets, such as 'sentiment', 'a.b[0]' or \"['key with spaces']\"; "
                            "wildcards and filters are not supported.") from None


@dataclass(frozen=True)
class JsonField:
    """Passes when the field at ``path`` of the answer's JSON equals the expected value.

    Args:
        path: where the field is: ``"sentiment"``, ``"a.b[0]"``, ``"items[-1].name"``.
        value: compare with this instead of the case's ``expected`` (any JSON value).
        labels: a label set (the run passes the suite's): a text field is read as the label it names, as
            `ExactMatch` reads answers ("Positive." is the label "positive"); without one, text must be equal.

    Numbers equal numbers (``1 == 1.0``), and a number or boolean equals its text (``"3"``, ``"true"``), since a
    CSV suite's ``expected`` is text; ``true`` never equals ``1``. A missing field, or an answer that is not
    JSON, fails with the reason.
    """

    path: str
    value: Any = UNSET
    labels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_steps", json_steps(self.path))
        if self.labels:
            if isinstance(self.labels, str):
                raise ArgumentError(f"labels={self.labels!r} must be a list of labels, not one text.")
            object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "_label_set", LabelSet(self.labels) if self.labels else None)

    @property
    def needs_expected(self) -> bool:
        """Without its own ``value`` the scorer compares with the case's ``expected``."""
        return self.value is UNSET

    def __call__(self, case: Case, output: Any) -> Score:
        want = _require_expected(case, "json_field") if self.value is UNSET else self.value
        document = _document(output)
        if document is _NO_JSON:
            return Score(0.0, False, f"no JSON in the answer {_shorten(str(output))!r} to read {self.path!r} from")
        try:
            got = self._field(document)
        except TransformFailed as exc:
            return Score(0.0, False, str(exc))
        if self._label_set is not None and isinstance(got, str):
            return self._score_label(got, want)
        same = _equal(got, want)
        shown = f"{self.path} = {_text(got)}"
        return Score(1.0 if same else 0.0, same, f"{shown}, as expected" if same else
                     f"{shown}, expected {_text(want)}")

    def _field(self, document: Any) -> Any:
        value = document
        for step in self._steps:
            value = _step(value, step, self.path)
        return value

    def _score_label(self, got: str, want: Any) -> Score:
        read = self._label_set.read(got).label
        expected = self._label_set.canonical(want)
        if expected is None:
            return Score(0.0, False, f"expected {want!r} is not one of the labels; {self.path} = {got!r}")
        if read is None:
            return Score(0.0, False, f"{self.path} = {got!r} names no single label (labels: "
                                     f"{', '.join(self._label_set.labels)})")
        same = read == expected
        return Score(1.0 if same else 0.0, same, f"{self.path} reads label {read!r}" +
                     ("" if same else f", expected {expected!r}"))


def _document(output: Any) -> Any:
    """The JSON value of an answer: already parsed, whole JSON text (a fenced block too), or the first JSON
    object or array inside prose; `_NO_JSON` when there is none."""
    if not isinstance(output, str):
        return output
    try:
        return _parse_json(output)
    except json.JSONDecodeError:
        return find_json(output)


def _equal(got: Any, want: Any) -> bool:
    """JSON equality with the coercions a text ``expected`` needs (``"3"`` is 3, ``"true"`` is true)."""
    if isinstance(got, bool) or isinstance(want, bool):
        return _as_bool(got) is not None and _as_bool(got) == _as_bool(want)
    if isinstance(got, int | float) or isinstance(want, int | float):
        number_got, number_want = _as_number(got), _as_number(want)
        return number_got is not None and number_got == number_want
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(_equal(got[k], want[k]) for k in got)
    if isinstance(got, list) and isinstance(want, list | tuple):
        return len(got) == len(want) and all(_equal(a, b) for a, b in zip(got, want, strict=True))
    if isinstance(got, str) and isinstance(want, str):
        return got.strip() == want.strip()
    return got is None and want is None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    return _shorten(json.dumps(value, ensure_ascii=False, default=str), 80)
