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

JSONL suite: one case object per line, the same keys, after an optional header line holding the header keys
(``{"name": "tickets", "labels": ["Billing Inquiries", "Claims Assistance"]}``), so a JSONL suite scores
exactly like the same data in YAML. Tables load too (CSV, TSV, JSON records, Parquet, a DataFrame), their columns
mapped onto these fields (`_tables`). Suites can also be built in a notebook, the article's way (`add_case`,
`add_edge_case`, `add_adversarial`), and saved with `save`.

Labels are matched ignoring case, spacing, hyphens, slashes and punctuation (`promptlab.evaluation._scoring.LabelSet`),
both when scoring and when checking that every ``expected`` is one of the declared labels.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .._yaml import Problem, check, key_line, load_yaml, looks_tabular, node_at, node_line, read_text, report, shorten
from ..errors import ArgumentError, SuiteFileError, UnknownNameError

if TYPE_CHECKING:  # pandas loads when a frame is asked for: loading a suite stays light
    import pandas as pd

CATEGORIES = ("happy_path", "edge_case", "adversarial")
Difficulty = Literal["easy", "medium", "hard"]


class Case(BaseModel):
    """One labelled input. ``input`` is the text, or the template variables for prompts with several."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # the descriptions say how to write each field; a file's error messages end with them
    id: str = Field(min_length=1, description="Write non-empty text")
    input: str | dict[str, Any] = Field(
        description="Write text, or a mapping of template variables (for example {subject: ..., body: ...})")
    expected: Any = None
    category: str = Field("happy_path", description="Write text such as happy_path, edge_case or adversarial")
    difficulty: Difficulty | None = Field(None, description="Use easy, medium or hard (or leave it out)")
    tags: tuple[str, ...] = Field((), description="Write a list of strings, for example [sarcasm, negation]")
    # a case may name its own scorer: a spec in the one grammar of `_labels` (names and keys are checked when a
    # file loads, with its line; `promptlab.evaluation.build_scorer` builds it)
    scorer: str | dict[str, Any] | list[str | dict[str, Any]] | None = Field(
        None, description="Name a built-in scorer (exact, contains, json ...), write {type: contains, value: ...}, "
                          "or list several")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Write a mapping")

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("scorer", mode="before")
    @classmethod
    def _scorer_shape(cls, value: Any) -> Any:
        # the shape only: a name, a mapping, or a list of those (one clear sentence instead of pydantic's three)
        items = value if isinstance(value, list) else [value]
        if value is not None and not all(isinstance(item, str | dict) for item in items):
            raise ValueError(f"a scorer is a built-in name (exact, contains ...), a mapping such as {{type: contains, "
                             f"value: refund}}, or a list of those; got {shorten(value)}")
        return value


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
        self._label_set = _label_set(name, self.labels)
        # where the cases came from, for a run's provenance: the file (path, sha256, cases in it) set by
        # `load_suite`, and how this suite was cut from it (a sample, a filter), both kept by `sample`/`filter`
        self.source: dict[str, Any] | None = None
        self.subset: list[dict[str, Any]] = []
        self._cases: dict[str, Case] = {}
        for case in cases:
            self._add(case)

    # ---- building -------------------------------------------------------------------------------------
    def _add(self, case: Case) -> Case:
        if case.id in self._cases:
            raise SuiteFileError(f"suite {self.name!r}: duplicate case id {case.id!r}. Give every case its own id.")
        problem = self._label_problem(case)
        if problem:
            raise SuiteFileError(f"suite {self.name!r}: {problem}")
        self._cases[case.id] = case
        return case

    def _label_problem(self, case: Case) -> str | None:
        """Why the case's ``expected`` is not one of the labels (when the case is scored against them), or None."""
        if self._label_set is None or case.expected is None or case.scorer not in (None, "exact"):
            return None
        if isinstance(case.expected, str) and self._label_set.canonical(case.expected) is not None:
            return None
        close = self._label_set.close_matches(case.expected) if isinstance(case.expected, str) else []
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return (f"case {case.id!r} expects {shorten(case.expected)}, which is not one of the labels.{hint} "
                f"Labels: {', '.join(self.labels or ())}. Fix `expected`, add the label to `labels`, or give the "
                "case its own scorer (`scorer: contains`).")

    def add_case(self, input: str | dict[str, Any], expected: Any, category: str = "happy_path", *,
                 id: str | None = None, **fields: Any) -> Case:
        """Add a case (the article's ``add_case``); the id defaults to ``<category>-<n>``."""
        case_id = id or self._next_id(category)
        case, problems = check(Case, dict(id=case_id, input=input, expected=expected, category=category, **fields))
        if case is None:
            raise SuiteFileError(report(f"suite {self.name!r}", f"case {case_id!r}", problems))
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

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, input: str | list[str] | dict[str, str] | None = None,
                   expected: str | bool | None = None, id: str | bool | None = None,
                   category: str | bool | None = None, difficulty: str | bool | None = None,
                   tags: str | bool | None = None, labels: list[str] | bool | None = None, name: str = "frame",
                   require_expected: bool = True) -> Suite:
        """A suite from a DataFrame, one case per row, columns mapped as `load_suite` maps a table's.

        The frame's values keep their types (read a CSV with ``dtype=str, keep_default_na=False`` so that labels
        such as "NA" stay text); problems name the row by its index label.
        """
        from ._tables import frame_table

        columns = dict(input=input, expected=expected, id=id, category=category, difficulty=difficulty, tags=tags)
        return _table_suite(frame_table(frame, name), columns, labels, name, require_expected)

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
            raise UnknownNameError(f"suite {self.name!r} has no case {case_id!r}") from None

    def counts(self) -> pd.Series:
        """Number of cases per category, in the order categories first appear."""
        import pandas as pd

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

        asked = {"category": sorted(categories), "tags": sorted(wanted_tags), "difficulty": difficulty,
                 "predicate": predicate is not None}
        cut = {"filter": {key: value for key, value in asked.items() if value}}
        return self._derive([case for case in self if keep(case)], cut)

    def sample(self, n: int, *, seed: int = 0) -> Suite:
        """A reproducible random sample of ``n`` cases, kept in suite order (all cases if ``n >= len``)."""
        if n < 0:
            raise ArgumentError(f"sample size must be >= 0, got {n!r}")
        cut = {"sample": {"n": n, "seed": seed, "of": len(self)}}
        if n >= len(self):
            return self._derive(self.cases, cut)
        chosen = set(random.Random(seed).sample(list(self._cases), n))
        return self._derive([case for case in self if case.id in chosen], cut)

    def _derive(self, cases: Iterable[Case], cut: dict[str, Any]) -> Suite:
        derived = Suite(self.name, cases, labels=self.labels, description=self.description)
        derived.source, derived.subset = self.source, [*self.subset, cut]
        return derived

    def to_frame(self) -> pd.DataFrame:
        """One row per case: id, input, expected, category, difficulty, tags."""
        rows = [case.model_dump(exclude={"metadata", "scorer"}) for case in self]
        columns = ["id", "input", "expected", "category", "difficulty", "tags"]
        import pandas as pd

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
        """Write the suite as YAML (``.yaml``/``.yml``) or JSONL (``.jsonl``, a header line first when the suite
        has labels or a description)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".jsonl":
            data = self.to_dict()
            header = {key: data[key] for key in ("name", "description", "labels") if key in data}
            objects = ([header] if len(header) > 1 else []) + data["cases"]
            lines = [json.dumps(item, ensure_ascii=False) for item in objects]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100),
                            encoding="utf-8")
        return path

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        return f"Suite({self.name!r}, {len(self)} cases: {counts})"

    def _repr_html_(self) -> str:
        from .._display import suite_html

        return suite_html(self)


def _label_set(name: str, labels: tuple[str, ...] | None) -> Any:
    """The suite's `LabelSet` (None without labels); ambiguous or empty labels are refused."""
    if labels is None:
        return None
    from ._labels import LabelSet

    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise SuiteFileError(f"suite {name!r}: label(s) {repeated!r} listed twice in `labels`. List each once.")
    try:
        return LabelSet(labels)
    except ValueError as exc:
        raise SuiteFileError(f"suite {name!r}: {exc}") from None


# ---- loading ----------------------------------------------------------------------------------------------
class _JsonlHeader(BaseModel):
    """The header of a suite file: the first line of a JSONL suite, the keys beside ``cases:`` in YAML."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    labels: list[str] | None = Field(None, description="List the answers, for example [positive, negative]")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name", "description", mode="before")
    @classmethod
    def _number_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class _YamlSuite(_JsonlHeader):
    """A YAML suite file: the header keys and the cases (checked one by one, as `Case`)."""

    cases: list[Any]


@dataclass
class _Parsed:
    """A suite file (or table) read but not yet checked case by case: the header, its problems, and the raw cases
    as ``(line, data, node)`` (a table's row is ``"row 5"`` where a file has a line)."""

    header: _JsonlHeader
    labels_line: int | None = None
    problems: list[Problem] = field(default_factory=list)
    items: list[tuple[int | str | None, Any, Any]] = field(default_factory=list)


_ACCEPTED = ("A suite file is YAML (.yaml, .yml) or JSONL (.jsonl) text, or a table: CSV (.csv), TSV (.tsv, .tab), "
             "JSON records (.json) or Parquet (.parquet).")


def load_suite(path: str | Path, *, input: str | list[str] | dict[str, str] | None = None,
               expected: str | bool | None = None, id: str | bool | None = None, category: str | bool | None = None,
               difficulty: str | bool | None = None, tags: str | bool | None = None,
               labels: list[str] | bool | None = None, name: str | None = None, require_expected: bool = True) -> Suite:
    """Load a suite from a suite file or a table; every problem is listed at once, each with its line (or row),
    field, value and fix.

    Args:
        path: a suite file, ``.yaml``/``.yml`` (a header and ``cases:``) or ``.jsonl``/``.ndjson`` (one case per
            line, optionally after a header line such as ``{"labels": [...]}``), or a table, one case per row:
            ``.csv``, ``.tsv``/``.tab``, ``.json`` (an array of records), ``.parquet``, or ``.jsonl``/``.ndjson``
            when a column argument is given. See ``suites/README.md``.
        input: the table's input: a column (the text), a list of columns (template variables named by their
            columns) or ``{variable: column}``. Default: the `input` column; with none, and promptfoo's
            ``__expected`` columns, every column not starting with ``__`` is a variable.
        expected: the column of the right answers (default `expected`, then promptfoo's `__expected`).
        id: the column of case ids (default `id`; absent, ids are ``row-<hash of the input>``, stable).
        category, difficulty, tags: their columns (default the column of that name; tags split on ``,``, ``;``
            or ``|``, or a JSON list). ``False`` for any of these: do not read a column.
        labels: the label set: a list (every expected answer must be one of them); None to keep the file's or,
            for a table, read them from the expected answers when those look like labels (with a warning); False
            for no label set.
        name: the suite's name (default: the file's, or its name without the extension).
        require_expected: every case needs ``expected`` unless it names a built-in scorer that needs none
            (``scorer: json``). Pass False for a suite you will score with your own scorer or a judge that
            reads no expected value.

    Raises:
        SuiteFileError: the file is missing, too large, binary, not UTF-8, not valid YAML/JSON, a table lacks a
            column named (with the columns it has and a "did you mean"), or cases or the header are invalid: a
            missing ``expected``, an ``expected`` outside the declared labels, an unknown key (with a "did you
            mean"), a key repeated in one mapping, a duplicate case id ... (the first `MAX_PROBLEMS_SHOWN`
            problems are listed, then how many more).
        ArgumentError: an argument of the wrong kind (``input=3``, ``labels="a,b"``), or a column argument for
            a YAML suite.
    """
    from ._tables import is_table, read_table, refuse_spreadsheet

    path = Path(path)
    refuse_spreadsheet(path)
    columns = dict(input=input, expected=expected, id=id, category=category, difficulty=difficulty, tags=tags)
    given = sorted(key for key, value in columns.items() if value is not None)
    if is_table(path, bool(given)):
        return _with_source(_table_suite(read_table(path), columns, labels, name, require_expected), path)
    if given:
        raise ArgumentError(f"{', '.join(given)}= map a table's columns, but {str(path)!r} is a suite file, whose "
                            "cases name their fields. Drop the column arguments, or load a table (.csv, .tsv, .json, "
                            ".jsonl, .parquet).")
    text = read_text(path, SuiteFileError, "suite file", accepted=_ACCEPTED)
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    parsed = _jsonl_items(path, text) if jsonl else _yaml_items(path, text)
    parsed.header.name = name or parsed.header.name or path.stem
    if labels is not None:
        parsed.header.labels = _declared(labels)
    return _with_source(_build(str(path), parsed, require_expected, _jsonl_table_hint(parsed) if jsonl else ""), path)


def _with_source(suite: Suite, path: Path) -> Suite:
    """The suite, recording the file it was read from: its path, the sha256 of its bytes, its number of cases."""
    import hashlib

    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    suite.source = {"path": str(path.resolve()), "sha256": digest, "cases": len(suite)}
    return suite


def _table_suite(table: Any, columns: dict[str, Any], labels: Any, name: str | None, require_expected: bool) -> Suite:
    """A suite from a table (`_tables.Table`), its cases checked as a suite file's are."""
    from ._tables import map_table

    mapped = map_table(table, columns, labels=labels, name=name, require_expected=require_expected)
    header = _JsonlHeader(name=mapped.name, labels=mapped.labels)
    parsed = _Parsed(header, items=[(place, data, None) for place, data in mapped.items])
    return _build(table.where, parsed, require_expected, mapped.note, "suite table")


def _declared(labels: Any) -> list[str] | None:
    """``labels=`` for a suite file: a list replaces the file's labels, False removes them."""
    if labels is False:
        return None
    if isinstance(labels, str) or not isinstance(labels, list | tuple):
        raise ArgumentError(f"labels= is a list of the answers (labels=['positive', 'negative']), or False for no "
                            f"label set; got {shorten(labels)}.")
    return [str(label) for label in labels]


def _jsonl_table_hint(parsed: _Parsed) -> str:
    """For JSONL lines that are records of a table (no `input` key): how to read them as one."""
    keys = [key for _, item, _ in parsed.items if isinstance(item, dict) for key in item]
    if not keys or "input" in keys:
        return ""
    shown = ", ".join(repr(key) for key in dict.fromkeys(keys))
    return (f"The lines look like records of a table (keys {shown}). Name its columns to read it as one: "
            "pl.load_suite(path, input='text', expected='label').")


def _jsonl_items(path: Path, text: str) -> _Parsed:
    """The header (an optional first line without `id` and `input`) and the case lines."""
    parsed = _Parsed(_JsonlHeader())
    from ._tables import jsonl_lines

    for number, item in jsonl_lines(path, text):
        if not _is_header(item):
            parsed.items.append((number, item, None))
        elif parsed.items or parsed.labels_line:
            raise SuiteFileError(f"{path}:{number}: a header line ({shorten(item)}) after the first case. "
                                 "Put the header (name, description, labels) on the first line.")
        else:
            header, problems = check(_JsonlHeader, item, line=number)
            parsed.header, parsed.labels_line = header or parsed.header, number
            parsed.problems += problems
    return parsed


def _is_header(item: Any) -> bool:
    return isinstance(item, dict) and "id" not in item and "input" not in item and bool(
        set(item) & set(_JsonlHeader.model_fields))


def _yaml_items(path: Path, text: str) -> _Parsed:
    document = load_yaml(text, str(path), SuiteFileError)
    data, node = document.data, document.node
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise SuiteFileError(f"{path}: a YAML suite must be a mapping with a `cases:` list, got "
                             f"{shorten(data)}. Put the cases under `cases:`.{_shape_hint(data, text)}")
    header, problems = check(_YamlSuite, data, node)
    items = [(node_line(node, "cases", i), item, node_at(node, "cases", i)) for i, item in enumerate(data["cases"])]
    return _Parsed(header or _JsonlHeader(), key_line(node, "labels"), problems, items)


def _shape_hint(data: Any, text: str) -> str:
    """A hint for files that are something else: a table, or a bare list of cases."""
    kind = looks_tabular(text)
    if kind:
        return (f" The file looks like {kind}: give it the .{kind.lower()} extension and load it as a table, "
                "pl.load_suite(path, input=..., expected=...), or save it as JSONL (one case object per line) or YAML.")
    if isinstance(data, list):
        return " A list of cases needs a header: `cases:` above it, or save one case per line as .jsonl."
    return ""


def _build(where: str, parsed: _Parsed, require_expected: bool, fix: str = "", what: str = "suite file") -> Suite:
    """The suite, once every case is checked; every problem of the file (or table) is raised at once."""
    suite, problems = _empty_suite(parsed)
    first_at: dict[str, int | str | None] = {}
    for at, item, node in parsed.items:
        found = _case_problems(suite, at, item, node, first_at, require_expected)
        problems += found
    if problems:
        raise SuiteFileError(report(where, what, problems, fix))
    return suite


def _empty_suite(parsed: _Parsed) -> tuple[Suite, list[Problem]]:
    """The suite with its header and no cases yet; labels that collide are a problem (the cases are still
    checked, against no labels)."""
    header, problems = parsed.header, list(parsed.problems)
    name, description = header.name or "suite", header.description or ""
    try:
        return Suite(name, labels=header.labels, description=description), problems
    except SuiteFileError as exc:
        text = str(exc).removeprefix(f"suite {name!r}: ")
        return Suite(name, description=description), [*problems, Problem(parsed.labels_line, "labels", text)]


def _case_problems(suite: Suite, at: int | str | None, item: Any, node: Any, first_at: dict[str, int | str | None],
                   require_expected: bool) -> list[Problem]:
    """Check one case and add it to ``suite`` when it has no problem; its problems otherwise. ``at`` is the case's
    line in a file, or its row in a table (``"row 5"``)."""
    line, row = (None, at) if isinstance(at, str) else (at, "")
    if not isinstance(item, dict):
        return [Problem(line, row, f"a case must be a mapping with `id`, `input`, `expected`, got {shorten(item)}.")]
    label = f"case {item.get('id', '?')!r}"
    case, problems = check(Case, item, node, line=line, label=f"{row}: {label}" if row else label)
    if case is None:
        return problems
    if case.id in first_at:
        first = first_at[case.id]
        seen = f" (first at {first if isinstance(first, str) else f'line {first}'})" if first else ""
        return [Problem(line, row, f"duplicate case id {case.id!r}{seen}. Give every case its own id.")]
    first_at[case.id] = at
    problem = _expected_problem(suite, case, require_expected)
    if problem is not None:
        where, text = problem
        return [Problem(key_line(node, "scorer") or line, ": ".join(filter(None, (row, where))), text)]
    suite._add(case)
    return []


def _expected_problem(suite: Suite, case: Case, require_expected: bool) -> tuple[str, str] | None:
    """``(field, text)`` when the case names an unknown scorer, lacks ``expected`` (and something reads it),
    or expects an answer outside the labels; else None."""
    from ._labels import builtin_needs_expected

    if case.scorer is not None:
        try:
            needs = builtin_needs_expected(case.scorer)
        except ValueError as exc:
            return f"case {case.id!r}: scorer", str(exc)
    else:
        needs = require_expected
    if case.expected is None and needs:
        why = f"its scorer {case.scorer!r} compares with it" if case.scorer else "the default scorer compares with it"
        return "", (f"case {case.id!r} has no `expected` ({why}). Add `expected: <the right answer>`. If the "
                    "scorer you run needs no expected value, name it on the case (`scorer: json`) or load with "
                    "pl.load_suite(path, require_expected=False).")
    problem = suite._label_problem(case)
    return ("", problem) if problem else None
