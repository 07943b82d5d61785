"""Test suites: labelled cases in YAML or JSONL, validated with errors that cite file, line, field and fix.

YAML suite::

    name: sentiment
    description: Product-review sentiment, four labels.
    labels: [positive, negative, neutral, mixed]     # optional: the answer set, used by scorers
    cases:
      - id: happy-001
        input: "I love this product!"                # text, or a dict of template variables
        expected: positive
        category: happy_path                         # happy_path | edge_case | adversarial | ...
        difficulty: easy                             # easy | medium | hard (optional)
        tags: [short]

JSONL suite: one case object per line, the same keys. Suites can also be built in a notebook, the article's
way (`add_case`, `add_edge_case`, `add_adversarial`), and saved with `save`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import SuiteFileError

CATEGORIES = ("happy_path", "edge_case", "adversarial")
Difficulty = Literal["easy", "medium", "hard"]


class Case(BaseModel):
    """One labelled input. ``input`` is the text, or the template variables for prompts with several."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    input: str | dict[str, Any]
    expected: Any = None
    category: str = "happy_path"
    difficulty: Difficulty | None = None
    tags: tuple[str, ...] = ()
    scorer: str | None = None  # a case may name its own scorer (see promptlab.scoring)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Suite:
    """An ordered collection of uniquely identified cases.

    Args:
        name: the suite's name.
        cases: the cases; ids must be unique.
        labels: the set of valid answers, if the task has one (classification).
        description: free text shown in the notebook.
    """

    def __init__(self, name: str, cases: Iterable[Case] = (), *, labels: Iterable[str] | None = None,
                 description: str = ""):
        self.name = name
        self.description = description
        self.labels = tuple(labels) if labels is not None else None
        self._cases: dict[str, Case] = {}
        for case in cases:
            self._add(case)

    # ---- building -------------------------------------------------------------------------------------
    def _add(self, case: Case) -> Case:
        if case.id in self._cases:
            raise SuiteFileError(f"suite {self.name!r}: duplicate case id {case.id!r}. Give every case its own id.")
        self._cases[case.id] = case
        return case

    def add_case(self, input: str | dict[str, Any], expected: Any, category: str = "happy_path", *,
                 id: str | None = None, **fields: Any) -> Case:
        """Add a case (the article's ``add_case``); the id defaults to ``<category>-<n>``."""
        case_id = id or self._next_id(category)
        try:
            case = Case(id=case_id, input=input, expected=expected, category=category, **fields)
        except ValidationError as exc:
            raise SuiteFileError(f"suite {self.name!r}: invalid case {case_id!r}: {exc}") from None
        return self._add(case)

    def add_edge_case(self, input: str | dict[str, Any], expected: Any, **fields: Any) -> Case:
        """Add an edge case: mixed feelings, negation, empty input, other languages ..."""
        return self.add_case(input, expected, "edge_case", **fields)

    def add_adversarial(self, input: str | dict[str, Any], expected: Any, **fields: Any) -> Case:
        """Add an adversarial case, such as a prompt injection."""
        return self.add_case(input, expected, "adversarial", **fields)

    def _next_id(self, category: str) -> str:
        n = sum(case.category == category for case in self._cases.values()) + 1
        while f"{category}-{n:03d}" in self._cases:
            n += 1
        return f"{category}-{n:03d}"

    # ---- reading --------------------------------------------------------------------------------------
    @property
    def cases(self) -> tuple[Case, ...]:
        """The cases in order."""
        return tuple(self._cases.values())

    def __len__(self) -> int:
        return len(self._cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self._cases.values())

    def __getitem__(self, case_id: str) -> Case:
        try:
            return self._cases[case_id]
        except KeyError:
            raise KeyError(f"suite {self.name!r} has no case {case_id!r}") from None

    def counts(self) -> pd.Series:
        """Number of cases per category, in the order categories first appear."""
        series = pd.Series([case.category for case in self], dtype="object")
        return series.value_counts(sort=False).rename("cases").rename_axis("category")

    def filter(self, predicate: Callable[[Case], bool] | None = None, *, category: str | Iterable[str] | None = None,
               tags: str | Iterable[str] | None = None, difficulty: str | None = None) -> Suite:
        """A new suite of the cases that match every given condition (tags: any of them)."""
        categories = {category} if isinstance(category, str) else set(category or ())
        wanted_tags = {tags} if isinstance(tags, str) else set(tags or ())

        def keep(case: Case) -> bool:
            return ((not categories or case.category in categories)
                    and (not wanted_tags or bool(wanted_tags & set(case.tags)))
                    and (difficulty is None or case.difficulty == difficulty)
                    and (predicate is None or predicate(case)))

        return self._derive([case for case in self if keep(case)])

    def sample(self, n: int, *, seed: int = 0) -> Suite:
        """A reproducible random sample of ``n`` cases, kept in suite order (all cases if ``n >= len``)."""
        if n < 0:
            raise ValueError(f"sample size must be >= 0, got {n!r}")
        if n >= len(self):
            return self._derive(self.cases)
        chosen = set(random.Random(seed).sample(list(self._cases), n))
        return self._derive([case for case in self if case.id in chosen])

    def _derive(self, cases: Iterable[Case]) -> Suite:
        return Suite(self.name, cases, labels=self.labels, description=self.description)

    def to_frame(self) -> pd.DataFrame:
        """One row per case: id, input, expected, category, difficulty, tags."""
        rows = [case.model_dump(exclude={"metadata", "scorer"}) for case in self]
        columns = ["id", "input", "expected", "category", "difficulty", "tags"]
        return pd.DataFrame(rows, columns=columns)

    # ---- saving ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The suite in the YAML file layout."""
        data: dict[str, Any] = {"name": self.name}
        if self.description:
            data["description"] = self.description
        if self.labels is not None:
            data["labels"] = list(self.labels)
        data["cases"] = [case.model_dump(mode="json", exclude_defaults=True) | {"id": case.id} for case in self]
        return data

    def save(self, path: str | Path) -> Path:
        """Write the suite as YAML (``.yaml``/``.yml``) or JSONL (``.jsonl``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".jsonl":
            lines = [json.dumps(case, ensure_ascii=False) for case in self.to_dict()["cases"]]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100),
                            encoding="utf-8")
        return path

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        return f"Suite({self.name!r}, {len(self)} cases: {counts})"

    def _repr_html_(self) -> str:
        from .display import suite_html

        return suite_html(self)


# ---- loading ----------------------------------------------------------------------------------------------
def load_suite(path: str | Path) -> Suite:
    """Load a suite from YAML or JSONL; every problem is reported with file, line, field, value and fix."""
    path = Path(path)
    text = _read_text(path)
    if path.suffix == ".jsonl":
        name, header, items = path.stem, {}, _jsonl_items(path, text)
    else:
        name, header, items = _yaml_items(path, text)
    return _build(path, name, header, items)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteFileError(f"suite file {str(path)!r} does not exist. Check the path.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteFileError(f"suite file {str(path)!r} cannot be read ({exc}). Save it as UTF-8 text.") from None


def _jsonl_items(path: Path, text: str) -> list[tuple[int, Any]]:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise SuiteFileError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}). "
                                 "Each line must be one JSON object.") from None
    return items


_HEADER_KEYS = {"name", "description", "labels", "cases", "metadata"}


def _yaml_items(path: Path, text: str) -> tuple[str, dict[str, Any], list[tuple[int, Any]]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise SuiteFileError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}). "
                             "Fix the YAML syntax (indentation, quotes, colons).") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise SuiteFileError(f"{path}: a YAML suite must be a mapping with a `cases:` list, got "
                             f"{_short(data)!r}. Put the cases under `cases:`.")
    unknown = set(data) - _HEADER_KEYS
    if unknown:
        raise SuiteFileError(f"{path}: unknown top-level key(s) {sorted(unknown)!r}. Allowed: {sorted(_HEADER_KEYS)}.")
    lines = _case_lines(node)
    items = [(lines[i] if i < len(lines) else None, item) for i, item in enumerate(data["cases"])]
    return str(data.get("name") or path.stem), data, items


def _case_lines(node: yaml.Node | None) -> list[int]:
    """1-based line of each item of the ``cases`` list, read from the YAML node tree."""
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if key.value == "cases" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _build(path: Path, name: str, header: dict[str, Any], items: list[tuple[int | None, Any]]) -> Suite:
    labels = header.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise SuiteFileError(f"{path}: `labels` must be a list of strings, got {labels!r}.")
    suite = Suite(name, labels=labels, description=str(header.get("description") or ""))
    first_line: dict[str, int | None] = {}
    for line, item in items:
        where = f"{path}:{line}" if line else str(path)
        case = _validate_case(where, item)
        if case.id in first_line:
            seen = f" (first at line {first_line[case.id]})" if first_line[case.id] else ""
            raise SuiteFileError(f"{where}: duplicate case id {case.id!r}{seen}. Give every case its own id.")
        first_line[case.id] = line
        suite._add(case)
    return suite


_FIELD_HINTS = {
    "input": "must be text, or a mapping of template variables (for example {subject: ..., body: ...})",
    "difficulty": "must be one of easy, medium, hard (or left out)",
    "tags": "must be a list of strings, for example [sarcasm, negation]",
    "id": "must be non-empty text",
    "category": "must be text such as happy_path, edge_case or adversarial",
}


def _validate_case(where: str, item: Any) -> Case:
    if not isinstance(item, dict):
        raise SuiteFileError(f"{where}: a case must be a mapping with `id`, `input`, `expected`, got {_short(item)!r}.")
    try:
        return Case.model_validate(item)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "(case)"
        case_id = item.get("id", "?")
        if error["type"] == "extra_forbidden":
            fix = f"unknown key. Allowed keys: {', '.join(Case.model_fields)}"
        elif error["type"] == "missing":
            fix = f"required but missing. Add `{field}:` to the case"
        else:
            fix = _FIELD_HINTS.get(field, error["msg"])
        value = item.get(field, item)
        raise SuiteFileError(f"{where}: case {case_id!r}, field {field!r} = {_short(value)!r}: {fix}.") from None


def _short(value: Any, limit: int = 80) -> Any:
    text = repr(value)
    return value if len(text) <= limit else text[:limit] + "..."
