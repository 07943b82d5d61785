"""Suites from tables: CSV, TSV, JSON records, JSONL records, Parquet and DataFrames, mapped column by column onto
the fields of a case.

This module reads a table and maps its columns; it knows nothing of `Suite` or `Case`. `_suite` checks the cases it
returns exactly as it checks a YAML suite's (every problem at once, each with its row and fix), so a table and a
YAML file holding the same cases load to the same suite and score the same.

Reading rules, chosen so that a label never changes on the way in:

- Text files are read as text (UTF-8, a BOM dropped, CRLF read as LF) and every cell stays text: ``"NA"``,
  ``"None"``, ``"null"`` and ``"007"`` are kept as written (pandas' ``dtype=str`` without NA guessing). JSON,
  JSONL and Parquet keep the types their values declare; a DataFrame keeps its own.
- Blank rows are skipped; rows are numbered as a spreadsheet shows them (the header is row 1), so an error's
  row is the row a user finds in Excel. Quoted fields may hold separators and line breaks (RFC 4180).
- A ``.csv`` file is split on commas, or on semicolons or tabs when its header row has none of the commas but
  some of those (Excel's CSV in many European locales). The header alone decides, not pandas' ``sep=None``
  sniffer, which guesses from a whole line of data and can split a text on its commas.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._yaml import Problem, read_text, report, shorten
from ..errors import ArgumentError, SuiteFileError
from ._labels import label_words

if TYPE_CHECKING:  # pandas loads when a table is read: loading a YAML suite stays light
    import pandas as pd

# the fields of a case a column can fill, in the order they are looked for, with their default column names
FIELDS = ("input", "expected", "id", "category", "difficulty", "tags")
_DEFAULTS = {"input": ("input",), "expected": ("expected", "__expected"), "id": ("id",), "category": ("category",),
             "difficulty": ("difficulty",), "tags": ("tags",)}
# column names that often hold the answer or the text, offered when the default column is missing
_LOOKS_LIKE = {"input": ("text", "prompt", "question", "message", "body", "query", "content", "ticket"),
               "expected": ("label", "labels", "answer", "target", "gold", "truth", "ground_truth", "class",
                            "intent", "sentiment", "expected_output", "output")}
TABLE_SUFFIXES = {".csv": "CSV", ".tsv": "TSV", ".tab": "TSV", ".json": "JSON", ".jsonl": "JSONL",
                  ".ndjson": "JSONL", ".parquet": "Parquet"}
_SPREADSHEETS = {".xlsx", ".xls", ".xlsm", ".ods"}
MAX_INFERRED_LABELS = 30
_MAX_LABEL_CHARS = 60  # a longer answer reads as free text, not a label
_TAG_SPLIT = re.compile(r"[,;|]")
_CSV_ROWS = "Rows are numbered as a spreadsheet shows them: the header is row 1."
# promptfoo's `__expected` holds an assertion ("contains: Paris"); a plain value means `equals`
_PROMPTFOO_ASSERTION = re.compile(
    r"^(not-)?(equals|i?contains(-any|-all)?|starts-with|regex|is-json|contains-json|is-sql|is-xml|contains-xml|"
    r"javascript|python|llm-rubric|model-graded-[a-z-]+|similar|levenshtein|rouge-n|bleu|factuality|"
    r"answer-relevance|context-[a-z-]+|g-eval|classifier|moderation|cost|latency|perplexity[a-z-]*|webhook|"
    r"fn|eval|grade|grader)(\([\d.]+\))?(:|$)")


@dataclass
class Table:
    """A table as read: its column names (as written), its non-blank rows (values by position) and each row's
    place in messages (a file line, or ``"row 5"``, ``"record 5"``, ``"index 'a'"``)."""

    where: str
    name: str
    columns: list[str]
    rows: list[tuple[int | str, list[Any]]]
    note: str = ""  # how rows are numbered, said at the end of a report


@dataclass
class TableCases:
    """A table mapped onto cases: the raw case mappings with their places, and the label set (None: none)."""

    name: str
    labels: list[str] | None
    items: list[tuple[int | str, dict[str, Any]]] = field(default_factory=list)
    note: str = ""


def is_table(path: Path, columns_given: bool) -> bool:
    """Whether ``path`` is read as a table: by its extension (JSONL only when a column is named: without one a
    JSONL file is a suite file, one case object per line)."""
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    return kind is not None and (kind != "JSONL" or columns_given)


def refuse_spreadsheet(path: Path) -> None:
    """An Excel or LibreOffice workbook: say how to load it (no spreadsheet reader is a dependency)."""
    if path.suffix.lower() not in _SPREADSHEETS:
        return
    raise SuiteFileError(
        f"suite file {str(path)!r} is an Excel workbook; load_suite reads YAML, JSONL, CSV, TSV, JSON and Parquet. "
        "Save the sheet as CSV (File > Save As > CSV UTF-8) and load that, or read it with pandas and build the "
        f"suite from the frame: pl.Suite.from_frame(pd.read_excel({str(path)!r}, dtype=str, keep_default_na=False), "
        "input=..., expected=...).")


# ---- reading -------------------------------------------------------------------------------------------------
def read_table(path: Path) -> Table:
    """Read a table file by its extension; unreadable, empty or header-only files are refused clearly."""
    kind = TABLE_SUFFIXES[path.suffix.lower()]
    if kind == "Parquet":
        table = _read_parquet(path)
    else:
        text = read_text(path, SuiteFileError, "suite file",
                         accepted="A table is UTF-8 text (CSV, TSV, JSON, JSONL) or a Parquet file.")
        text = text.replace("\r\n", "\n").replace("\r", "\n")  # as Python's text mode reads it
        if not text.strip():
            raise SuiteFileError(f"suite file {str(path)!r} is empty. Write a header row (for example "
                                 "input,expected) and one row per case.")
        reader = {"CSV": _read_delimited, "TSV": _read_delimited, "JSON": _read_json, "JSONL": _read_jsonl}[kind]
        table = reader(path, text, kind)
    if not table.rows:
        raise SuiteFileError(f"suite file {str(path)!r} has no rows: only its columns "
                             f"({_listing(table.columns)}). Add one row per case.")
    return table


def _read_delimited(path: Path, text: str, kind: str) -> Table:
    import pandas as pd

    separator = "\t" if kind == "TSV" else _separator(text)
    try:  # no header: the first row is read as data so repeated column names are seen, not renamed "x.1"
        frame = pd.read_csv(io.StringIO(text), sep=separator, header=None, dtype=str, keep_default_na=False,
                            na_filter=False, skip_blank_lines=False, engine="c")
    except (pd.errors.ParserError, ValueError) as exc:
        raise SuiteFileError(f"suite file {str(path)!r} cannot be read as {kind}: {exc}. Check that every row has "
                             "as many fields as the header and that quotes are closed.") from None
    records = frame.values.tolist()
    start = next((i for i, row in enumerate(records) if not _blank(row)), None)
    if start is None:
        raise SuiteFileError(f"suite file {str(path)!r} has no header row, only empty fields. Write a header row "
                             "(for example input,expected) and one row per case.")
    columns = [str(cell).strip() for cell in records[start]]
    rows = [(f"row {number}", row) for number, row in enumerate(records[start + 1:], start=start + 2)
            if not _blank(row)]
    return Table(str(path), path.stem, columns, rows, _CSV_ROWS)


def _separator(text: str) -> str:
    """The separator of a ``.csv`` file, read from its header row (quoted names aside)."""
    header = next(line for line in text.split("\n") if line.strip())
    bare = re.sub(r'"[^"]*"', "", header)
    return next((sep for sep in (",", ";", "\t") if sep in bare), ",")


def _blank(row: list[Any]) -> bool:
    return all(_missing(cell) or (isinstance(cell, str) and not cell.strip()) for cell in row)


def jsonl_lines(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSON Lines file (suite or table).

    Split on ``\\n`` only: ``str.splitlines`` would also split on U+2028 and other separators that JSON allows
    raw inside strings.

    Raises:
        SuiteFileError: a line is not JSON (file, line number and column).
    """
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise SuiteFileError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}). "
                                 "Each line must be one JSON object.") from None


def _read_jsonl(path: Path, text: str, kind: str) -> Table:
    records = []
    for number, item in jsonl_lines(path, text):
        if not isinstance(item, dict):
            raise SuiteFileError(f"{path}:{number}: a record must be a JSON object ({{\"column\": value}}), got "
                                 f"{shorten(item)}.")
        records.append((number, item))
    return _from_records(str(path), path.stem, records)


def _read_json(path: Path, text: str, kind: str) -> Table:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SuiteFileError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}).") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        got = f"an object with keys {_listing(data)}" if isinstance(data, dict) else shorten(data)
        raise SuiteFileError(
            f"suite file {str(path)!r}: a JSON table is an array of records ([{{\"input\": ..., \"expected\": ...}}, "
            f"...]), got {got}. Save a frame with df.to_json(path, orient='records'); a suite file (name, labels, "
            "cases) is YAML, which JSON also is: give it the .yaml extension.")
    return _from_records(str(path), path.stem, [(f"record {i}", item) for i, item in enumerate(data, start=1)])


def _from_records(where: str, name: str, records: list[tuple[int | str, dict[str, Any]]]) -> Table:
    """A table of JSON records: the columns in order of first appearance, a missing key a missing value."""
    columns = list(dict.fromkeys(key for _, item in records for key in item))
    rows = [(place, [item.get(column) for column in columns]) for place, item in records]
    return Table(where, name, columns, [(place, row) for place, row in rows if not _blank(row)])


def _read_parquet(path: Path) -> Table:
    import pandas as pd

    if not path.exists():
        raise SuiteFileError(f"suite file {str(path)!r} does not exist. Check the path.")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several kinds (ArrowInvalid, OSError ...) for a file it cannot read
        raise SuiteFileError(f"suite file {str(path)!r} cannot be read as Parquet ({type(exc).__name__}: {exc}). "
                             "Write it with df.to_parquet(path), or save the table as CSV.") from None
    return _frame_rows(frame, str(path), path.stem, lambda i, _: f"record {i}")


def frame_table(frame: Any, name: str) -> Table:
    """A DataFrame as a table; a row's place is its index label (what ``df.loc`` takes)."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise ArgumentError(f"Suite.from_frame needs a pandas DataFrame, got {type(frame).__name__}. Read the "
                            "table with pandas first (pd.read_csv(path, dtype=str, keep_default_na=False)).")
    table = _frame_rows(frame, f"frame {name!r}", name, lambda _, label: f"index {label!r}")
    if not table.rows:
        raise SuiteFileError(f"frame {name!r} has no rows (columns: {_listing(table.columns)}). Add one row per case.")
    return table


def _frame_rows(frame: pd.DataFrame, where: str, name: str, place: Any) -> Table:
    records = zip(frame.index, frame.itertuples(index=False, name=None), strict=True)
    rows = [(place(i, label), list(values)) for i, (label, values) in enumerate(records, start=1)]
    return Table(where, name, [str(column) for column in frame.columns], [row for row in rows if not _blank(row[1])])


# ---- values ---------------------------------------------------------------------------------------------------
def _missing(value: Any) -> bool:
    """None, NaN, NA or NaT (a scalar that pandas counts as missing)."""
    if value is None:
        return True
    if isinstance(value, str | bytes | list | tuple | dict) or hasattr(value, "__len__"):
        return False
    import pandas as pd

    return bool(pd.isna(value))


def _plain(value: Any) -> Any:
    """A value as Python data: numpy scalars and arrays unwrapped, missing values None, timestamps as text."""
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if _missing(value):
        return None
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)  # a timestamp, a Decimal: as the user reads it


def _text(value: Any) -> str | None:
    """A cell as text for an optional field (id, category ...): None when missing or blank."""
    value = _plain(value)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _tags(value: Any) -> list[str] | None:
    """Tags from a cell: a list, a JSON list (``["a", "b"]``), or text split on ``,``, ``;`` or ``|``."""
    value = _plain(value)
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    parts = value if isinstance(value, list) else _TAG_SPLIT.split(str(value)) if value is not None else []
    tags = [str(part).strip() for part in parts if part is not None and str(part).strip()]
    return tags or None


# ---- columns --------------------------------------------------------------------------------------------------
def _key(name: str) -> str:
    """How a column name is matched when not written exactly: case, spaces, hyphens and underscores ignored."""
    return re.sub(r"[\s_\-]+", "", name).casefold()


@dataclass
class _Columns:
    """Finds columns by name: exactly, else by `_key` when that names one column; collects what went wrong."""

    table: Table
    problems: list[str] = field(default_factory=list)

    def find(self, name: str) -> int | None:
        columns = self.table.columns
        exact = [i for i, column in enumerate(columns) if column == name]
        found = exact or [i for i, column in enumerate(columns) if column and _key(column) == _key(name)]
        if len(found) > 1:
            where = " and ".join(str(i + 1) for i in found)
            self.problems.append(f"column {name!r} appears {len(found)} times in the header (columns {where}); "
                                 "a case cannot tell which to read. Rename one.")
        return found[0] if found else None

    def named(self, argument: str, name: Any) -> int | None:
        """The column an argument names; a problem (with the columns that exist) when there is none."""
        if not isinstance(name, str) or not name:
            raise ArgumentError(f"{argument}= names a column: give its name as text, got {shorten(name)}.")
        found = self.find(name)
        if found is None:
            hint = _close(name, self.table.columns)
            self.problems.append(f"{argument}={name!r}: no column {name!r}.{hint} Columns: "
                                 f"{_listing(self.table.columns)}.")
        return found

    def default(self, field_name: str) -> int | None:
        return next((i for name in _DEFAULTS[field_name] if (i := self.find(name)) is not None), None)


def _close(name: str, columns: list[str]) -> str:
    """" Did you mean 'x'?" for the closest column; promptfoo's special ``__`` columns only for a ``__`` name."""
    by_key = {_key(column): column for column in columns
              if column and (name.startswith("__") or not column.startswith("__"))}
    close = difflib.get_close_matches(_key(name), list(by_key), n=1, cutoff=0.6)
    return f" Did you mean {by_key[close[0]]!r}?" if close else ""


def _listing(columns: Any) -> str:
    return ", ".join(repr(column) for column in columns if column != "") or "none"


def _resolve(table: Table, arguments: dict[str, Any], require_expected: bool) -> tuple[Any, dict[str, int]]:
    """The input (a column position, or template variable → position) and the position of each other field;
    every column problem raised at once."""
    columns = _Columns(table)
    fields: dict[str, int] = {}
    for name in FIELDS[1:]:
        given = arguments.get(name)
        if given is False:
            continue
        position = columns.named(name, given) if given is not None else columns.default(name)
        if position is not None:
            fields[name] = position
    before = len(columns.problems)
    source = _input(columns, arguments.get("input"), set(fields.values()))
    columns.problems[:] = columns.problems[before:] + columns.problems[:before]  # the input's problems first
    if "expected" not in fields and arguments.get("expected") is None and require_expected:
        columns.problems.append(_missing_default("expected", table))
    if columns.problems:
        problems = [Problem(None, "columns", text) for text in dict.fromkeys(columns.problems)]
        raise SuiteFileError(report(table.where, "suite table", problems))
    return source, fields


def _input(columns: _Columns, given: Any, taken: set[int]) -> int | dict[str, int] | None:
    """Where a case's input comes from: one text column, or template variables (a list of columns named by
    themselves, or a mapping ``{variable: column}``); by default the `input` column, or promptfoo's convention."""
    if isinstance(given, str):
        return columns.named("input", given)
    if isinstance(given, list | tuple) and given and all(isinstance(name, str) for name in given):
        return _variables(columns, {name: name for name in given})
    if isinstance(given, dict) and given:
        return _variables(columns, given)
    if given is not None:
        raise ArgumentError(f"input= names the column of the input text, a list of columns (template variables named "
                            f"by their columns) or a mapping {{variable: column}}; got {shorten(given)}.")
    found = columns.default("input")
    if found is not None:
        return found
    table = columns.table
    if any(column.startswith("__") for column in table.columns):  # promptfoo: every other column is a variable
        names = {column: column for i, column in enumerate(table.columns)
                 if column and not column.startswith("__") and i not in taken}
        if names:
            return _variables(columns, names)
    columns.problems.append(_missing_default("input", table))
    return None


def _variables(columns: _Columns, mapping: dict[Any, Any]) -> dict[str, int]:
    found = {}
    for variable, column in mapping.items():
        if not isinstance(variable, str) or not variable.isidentifier():
            suggestion = {re.sub(r"\W+", "_", str(variable)).strip("_").lower() or "text": column}
            columns.problems.append(
                f"input: {variable!r} cannot be a template variable (a name of letters, digits and underscores). "
                f"Name the variable yourself: input={suggestion!r}.")
            continue
        position = columns.named(f"input[{variable!r}]", column)
        if position is not None:
            found[variable] = position
    return found


def _missing_default(field_name: str, table: Table) -> str:
    """No column for ``input`` or ``expected``: the columns that exist, those that look right, and the fix."""
    defaults = " or ".join(f"`{name}`" for name in _DEFAULTS[field_name])
    hint = _close(field_name, table.columns)
    assertions = [column for column in table.columns if re.fullmatch(r"__expected\d+", column)]
    if field_name == "expected" and assertions:
        hint = (f" promptfoo's {', '.join(map(repr, assertions))} hold assertions (scorers), not answers: convert "
                "the promptfoo config with `promptlab import promptfoo`, or load with require_expected=False.")
    likely = [column for column in table.columns if _key(column) in {_key(name) for name in _LOOKS_LIKE[field_name]}]
    if likely and not hint:
        hint = f" Did you mean {likely[0]!r}?"
    if field_name == "input":
        fix = ("Name the column the prompt reads: input='text' for one text, input=['subject', 'body'] for template "
               "variables named by their columns, or input={'subject': 'Ticket Subject'} to name them yourself.")
    else:
        fix = ("Name the column of the right answers: expected='label'; or pass require_expected=False when your "
               "scorer reads no expected answer.")
    return f"no {defaults} column.{hint} Columns: {_listing(table.columns)}. {fix}"


# ---- cases ----------------------------------------------------------------------------------------------------
def map_table(table: Table, arguments: dict[str, Any], *, labels: Any, name: str | None,
              require_expected: bool) -> TableCases:
    """The table's rows as case mappings (ids generated stably where absent) and its label set."""
    source, fields = _resolve(table, arguments, require_expected)
    used = set(fields.values()) | ({source} if isinstance(source, int) else set((source or {}).values()))
    counts = Counter(table.columns)  # a repeated column no field reads is left out, not kept as metadata
    used |= {i for i, column in enumerate(table.columns) if counts[column] > 1}
    items = [(place, _case(row, source, fields, table.columns, used)) for place, row in table.rows]
    _generate_ids(items)
    expected_column = table.columns[fields["expected"]] if "expected" in fields else None
    if expected_column == "__expected":
        _warn_promptfoo_assertions(table.where, items)
    return TableCases(name or table.name, _labels(table.where, expected_column, items, labels), items, table.note)


def _case(row: list[Any], source: Any, fields: dict[str, int], columns: list[str], used: set[int]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if isinstance(source, int):
        value = _plain(row[source])
        if value is not None:  # a missing input is reported by the case's check; an empty cell is empty text
            data["input"] = value if isinstance(value, dict) else str(value)
    elif source:
        data["input"] = {variable: _variable(row[i]) for variable, i in source.items()}
    readers = {"expected": _expected, "id": _text, "category": _text, "difficulty": _difficulty, "tags": _tags}
    for name, position in fields.items():
        value = readers[name](row[position])
        if value is not None:
            data[name] = value
    metadata = {column: value for i, column in enumerate(columns)
                if i not in used and column and (value := _plain(row[i])) not in (None, "")}
    if metadata:
        data["metadata"] = metadata
    return data


def _variable(value: Any) -> Any:
    value = _plain(value)
    return "" if value is None else value


def _expected(value: Any) -> Any:
    """The expected answer: text as written (blank is missing), other values as their type declares."""
    value = _plain(value)
    return None if isinstance(value, str) and not value.strip() else value


def _difficulty(value: Any) -> str | None:
    text = _text(value)
    return text.lower() if text else None  # a fixed vocabulary: "Easy" in an export means easy


def _generate_ids(items: list[tuple[int | str, dict[str, Any]]]) -> None:
    """``row-<10 hex of sha256 of the input's canonical JSON>`` for rows without an id; ``-2``, ``-3`` ... for
    repeats of the same input, in table order. Stable: the same input gets the same id in every file."""
    seen: Counter[str] = Counter()
    for _, data in items:
        if "id" in data:
            continue
        canonical = json.dumps(data.get("input"), sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                               default=str)
        base = f"row-{hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:10]}"
        seen[base] += 1
        data["id"] = base if seen[base] == 1 else f"{base}-{seen[base]}"


# ---- labels ---------------------------------------------------------------------------------------------------
def _labels(where: str, column: str | None, items: list[tuple[int | str, dict[str, Any]]], labels: Any) -> Any:
    """The label set: declared (a list), none (False), or read from the expected answers (None)."""
    if labels is False:
        return None
    if labels is None:
        return _infer_labels(where, column, [data["expected"] for _, data in items if "expected" in data])
    if isinstance(labels, str) or not isinstance(labels, list | tuple) or not all(
            isinstance(label, str | int | float) and not isinstance(label, bool) for label in labels):
        raise ArgumentError(f"labels= is a list of the answers (labels=['positive', 'negative']), None to read them "
                            f"from the expected answers, or False for no label set; got {shorten(labels)}.")
    return [str(label) for label in labels]


def _infer_labels(where: str, column: str | None, values: list[Any]) -> list[str] | None:
    """The expected answers as a label set, when they read as labels: text, at most `MAX_INFERRED_LABELS`
    distinct answers, one repeated. Spellings that read the same (``billing`` and ``Billing``) are one label,
    written as most rows write it; the labels sorted alphabetically."""
    if not values or not all(isinstance(value, str) for value in values):
        return None
    if any(len(value) > _MAX_LABEL_CHARS or "\n" in value or not label_words(value) for value in values):
        return None
    groups: dict[str, Counter[str]] = {}
    for value in values:
        groups.setdefault("".join(label_words(value)), Counter())[value] += 1
    if len(groups) > MAX_INFERRED_LABELS or len(groups) == len(values):
        return None
    chosen = {key: spellings.most_common(1)[0][0] for key, spellings in groups.items()}
    merged = [f"{other!r} as {chosen[key]!r}" for key, spellings in groups.items()
              for other in spellings if other != chosen[key]]
    labels = sorted(chosen.values(), key=lambda label: (label.casefold(), label))  # stable under row order
    more = " ..." if len(merged) > 3 else ""
    note = f" Spellings read as one label: {', '.join(merged[:3])}{more}." if merged else ""
    _warn(f"{where}: no labels were declared, so the {len(labels)} distinct answers of column {column!r} are taken as "
          f"the label set: {', '.join(labels)}.{note} Answers are read as one of these labels (any case or "
          "punctuation). Declare them with labels=[...] to silence this warning (answers outside the list are then "
          "refused), or pass labels=False to compare whole answers without a label set.")
    return labels


def _warn_promptfoo_assertions(where: str, items: list[tuple[int | str, dict[str, Any]]]) -> None:
    """promptfoo reads ``__expected`` as an assertion ("contains: Paris"); here it is the expected answer."""
    found = [(place, data["expected"]) for place, data in items
             if isinstance(data.get("expected"), str) and _PROMPTFOO_ASSERTION.match(data["expected"].strip())]
    if found:
        shown = ", ".join(f"{place} ({value!r})" for place, value in found[:3]) + (", ..." if len(found) > 3 else "")
        _warn(f"{where}: {len(found)} value(s) of `__expected` look like promptfoo assertions: {shown}. load_suite "
              "reads `__expected` as the expected answer (promptfoo's plain `equals`), so they would be compared as "
              "text. Convert a promptfoo config with `promptlab import promptfoo`, which turns its assertions into "
              "scorers.")


def _warn(message: str) -> None:
    """A UserWarning pointing at the user's line (the first frame outside promptlab)."""
    package = str(Path(__file__).resolve().parent.parent)
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)
