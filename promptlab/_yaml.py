"""The one reader of YAML files users hand us: bounded, strict, and precise about where a problem is.

PyYAML's ``safe_load`` is safe from code execution but not from resource exhaustion or silent data loss:

- an *alias bomb* (a few hundred bytes of anchors that reference each other) expands to billions of nodes
  the moment anything walks the data; we measure the expanded size on the node graph (each anchored node
  counted once per use, memoised, so the check itself is linear) and refuse past `MAX_EXPANDED_NODES`;
- a key repeated in one mapping silently keeps the last value; we refuse it and name both lines;
- a huge file is refused by size before it is parsed (`MAX_FILE_BYTES`).

Callers pass the exception class their users catch (`SuiteFileError`, `PromptFileError`, ...), so every
message says which file, which line, what is wrong and how to fix it.

It is also the one validator of those files (prompts, suites, gates, fallbacks, alert rules, routing tables,
lockfiles, price files): `load_model` / `validate` run the file's pydantic model and report *every* problem in
one error, each as ``file:line: field: what is wrong (got value). fix`` with a "did you mean" for a misspelt key
or choice (`report` lists the first `MAX_PROBLEMS_SHOWN`, then how many more).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_EXPANDED_NODES = 1_000_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML document: its Python value and the node tree (for line numbers)."""

    data: Any
    node: yaml.Node | None


def read_text(path: str | Path, error: type[Exception], what: str, max_bytes: int | None = None, *,
              accepted: str = "") -> str:
    """A file's UTF-8 text, refused with ``error`` when missing, unreadable, binary, not UTF-8 or too large.

    Args:
        path: the file.
        error: the exception class to raise (it must take one message argument).
        what: how to name the file in messages ("suite file", "prompt file" ...).
        max_bytes: the size cap (default `MAX_FILE_BYTES`, read when called).
        accepted: one sentence naming the formats the caller reads, added to the binary-file message.
    """
    path = Path(path)
    limit = MAX_FILE_BYTES if max_bytes is None else max_bytes
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise error(f"{what} {str(path)!r} does not exist. Check the path.") from None
    except OSError as exc:
        raise error(f"{what} {str(path)!r} cannot be read ({exc}).") from None
    if size > limit:
        raise error(f"{what} {str(path)!r} is {size:,} bytes, over the limit of {limit:,}. "
                    "Split it into smaller files.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{what} {str(path)!r} cannot be read ({exc}).") from None
    return decode_text(data, str(path), error, what, accepted=accepted)


# First bytes of the binary formats users most often hand us by mistake (spreadsheets above all).
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive, such as an Excel .xlsx workbook"),
    (b"\xd0\xcf\x11\xe0", "an old Office file, such as an Excel .xls workbook"),
    (b"%PDF", "a PDF document"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG", "a PNG image"),
)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode_text(data: bytes, where: str, error: type[Exception], what: str, *, accepted: str = "") -> str:
    """Decode a file's bytes as UTF-8 (a leading BOM is dropped); binary or non-UTF-8 data is refused clearly."""
    kind = _binary_kind(data[:8192])
    if kind is not None:
        fix = f" {accepted}" if accepted else " Save it as UTF-8 text."
        raise error(f"{what} {where!r} is {kind}, not UTF-8 text.{fix}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise error(f"{what} {where!r} cannot be read as UTF-8: byte {data[exc.start]:#04x} at line {line} is not "
                    "UTF-8 (the file is probably Latin-1 or Windows-1252). Save it as UTF-8 text.") from None


def _binary_kind(head: bytes) -> str | None:
    """What a file's first bytes say it is, when that is not text (None for text, or what could be text)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return f"a binary file ({kind}, by its first bytes)"
    if head.startswith(_UTF16_BOMS):
        return "UTF-16 text (as Excel and Notepad save \"Unicode text\")"
    if b"\x00" in head:
        return "a binary file (it contains NUL bytes)"
    return None


def looks_tabular(text: str) -> str | None:
    """``"CSV"`` or ``"TSV"`` when the text's first lines look like a table with a header row, else None."""
    lines = [line for line in text.splitlines()[:5] if line.strip()]
    if len(lines) < 2 or lines[0].lstrip().startswith(("{", "[", "#", "-")):
        return None
    for separator, name in (("\t", "TSV"), (",", "CSV"), (";", "CSV")):
        columns = lines[0].count(separator)
        if columns >= 1 and ":" not in lines[0] and all(line.count(separator) >= columns for line in lines[1:]):
            return name
    return None


def load_yaml(text: str, where: str, error: type[Exception], max_nodes: int = MAX_EXPANDED_NODES) -> YamlDocument:
    """Parse one YAML document strictly: bounded alias expansion, no repeated keys, errors with ``where:line``.

    Args:
        text: the YAML text.
        where: how to name the source in messages (usually the file path).
        error: the exception class to raise (it must take one message argument).
        max_nodes: refuse documents whose aliases expand past this many nodes.
    """
    loader = _StrictLoader(text, where, error)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, where, error, max_nodes)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise error(f"{where}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc}). "
                    "Fix the YAML syntax (indentation, quotes, colons).") from None
    except RecursionError:
        raise error(f"{where}: the YAML nests too deeply to read. Flatten the structure.") from None
    finally:
        loader.dispose()
    return YamlDocument(data, node)


def _check_expansion(root: yaml.Node, where: str, error: type[Exception], max_nodes: int) -> None:
    """Refuse a node graph whose aliases expand past ``max_nodes`` nodes, or that refers to itself."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def expanded(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise error(f"{where}:{node.start_mark.line + 1}: an alias refers to the node that contains it "
                        "(a recursive anchor). Remove the self-reference.")
        in_progress.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(expanded(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(expanded(k) + expanded(v) for k, v in node.value)
        in_progress.discard(key)
        if total > max_nodes:
            raise error(f"{where}:{node.start_mark.line + 1}: YAML aliases expand to more than {max_nodes:,} "
                        "nodes (an alias bomb, or a file far larger than a prompt or suite should be). "
                        "Write the values out, or use fewer nested aliases.")
        sizes[key] = total
        return total

    expanded(root)


# libyaml's parser when PyYAML was built with it (the wheels are): about 8x faster on a suite than the pure
# Python one, which is time a user waits for before the first call. Construction stays in Python either way.
_BASE_LOADER = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader


class _StrictLoader(_BASE_LOADER):
    """SafeLoader that refuses a key repeated within one mapping (YAML 1.2 says keys are unique)."""

    def __init__(self, stream: str, where: str, error: type[Exception]):
        super().__init__(stream)
        self._where, self._error = where, error

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """Construct a mapping after checking that no key appears twice (merge keys aside)."""
        if isinstance(node, yaml.MappingNode):
            self._refuse_repeated_keys(node)
        return super().construct_mapping(node, deep=deep)

    def _refuse_repeated_keys(self, node: yaml.MappingNode) -> None:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:  # an unhashable key: PyYAML itself refuses it later with its own message
                continue
            if first != line:
                raise self._error(f"{self._where}:{line}: key {key!r} appears twice in one mapping (first at line "
                                  f"{first}); YAML keeps only the last, silently. Remove or rename one.")


def node_line(node: yaml.Node | None, *path: str | int) -> int | None:
    """The 1-based line of the value at ``path`` (mapping keys and sequence indexes) in a node tree."""
    found = _walk(node, path)
    return found[1].start_mark.line + 1 if found is not None else None


def node_at(node: yaml.Node | None, *path: str | int) -> yaml.Node | None:
    """The node of the value at ``path`` (mapping keys and sequence indexes), or None."""
    found = _walk(node, path)
    return found[1] if found is not None else None


def key_line(node: yaml.Node | None, *path: str | int) -> int | None:
    """The 1-based line of the *key* that ends ``path`` (a value may start lines below its key), else of the value.

    The line of the value, when the path ends in a sequence index."""
    found = _walk(node, path)
    if found is None:
        return None
    key, value = found
    return (key or value).start_mark.line + 1


def _walk(node: yaml.Node | None, path: tuple[str | int, ...]) -> tuple[yaml.Node | None, yaml.Node] | None:
    """The (key node, value node) at the end of ``path``; the key node is None for a sequence item."""
    key: yaml.Node | None = None
    for step in path:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            key, node = next(((k, v) for k, v in node.value if getattr(k, "value", None) == step), (None, None))
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            key, node = None, node.value[step]
        else:
            return None
    return (key, node) if node is not None else None


# ---- validation: every problem of a file, at once, with its line ---------------------------------------------
# Each file type users write is a pydantic model (extra="forbid"); `validate` runs it and turns *all* of its
# errors into `Problem`s: the line (from the node tree), the field path, the offending value and a fix ("did you
# mean" for a misspelt key or choice, the allowed keys, the field's description). One report lists them all.

MAX_PROBLEMS_SHOWN = 20
_Model = TypeVar("_Model", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    """One problem in a user's file: its line (None for the file as a whole), the field path, what is wrong and
    the fix."""

    line: int | None
    field: str
    text: str

    def render(self, where: str) -> str:
        """``where:line: field: text``."""
        at = f"{where}:{self.line}" if self.line else where
        return f"{at}: {self.field}: {self.text}" if self.field else f"{at}: {self.text}"


def load_model(path: str | Path, model: type[_Model], error: type[Exception], what: str, *, fix: str = "",
               missing_ok: bool = False) -> _Model:
    """Read the YAML file ``path`` strictly and validate it as ``model``; every problem raised at once as ``error``.

    Args:
        path: the file.
        model: the pydantic model of the file (``extra="forbid"``).
        error: the exception class users catch (it must take one message argument).
        what: how to name the file in messages ("lockfile", "gate thresholds file" ...).
        fix: one sentence on how to get a good file, added to every refusal.
        missing_ok: a missing (or empty) file is the model's defaults instead of an error.
    """
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return model()
        raise error(f"{what} {str(path)!r} does not exist. {fix or 'Check the path.'}")
    document = load_yaml(read_text(path, error, what), str(path), error)
    return validate(document, model, str(path), error, what, fix=fix, allow_empty=missing_ok)


def validate(document: YamlDocument, model: type[_Model], where: str, error: type[Exception], what: str, *,
             fix: str = "", prefix: tuple[str | int, ...] = (), allow_empty: bool = False) -> _Model:
    """Validate a parsed document (or its part at ``prefix``) as ``model``, raising every problem at once.

    Args:
        document: what `load_yaml` returned.
        model: the pydantic model.
        where: the source in messages (usually the file path).
        error: the exception class users catch.
        what: how to name the file in messages.
        fix: one sentence on how to get a good file.
        prefix: the path of the part to validate (``("alerts",)``), for line numbers.
        allow_empty: an empty document is the model's defaults.
    """
    data = document.data
    for step in prefix:
        data = data[step]
    if data is None and allow_empty:
        data = {}
    require_mapping(data, where, what, error, fix)
    value, problems = check(model, data, document.node, prefix=prefix)
    if problems:
        raise error(report(where, what, problems, fix))
    return value


def require_mapping(data: Any, where: str, what: str, error: type[Exception], fix: str = "") -> None:
    """Refuse a document that is not a mapping of keys (a list, a bare value, an empty file)."""
    if not isinstance(data, dict):
        raise error(f"{where}: the {what} must be a mapping of keys (YAML `key: value` lines), got "
                    f"{type(data).__name__} {shorten(data)}. {fix or 'Start the file with a key.'}")


def check(model: type[_Model], data: Any, node: yaml.Node | None = None, *, prefix: tuple[str | int, ...] = (),
          line: int | None = None, label: str = "") -> tuple[_Model | None, list[Problem]]:
    """Validate ``data`` as ``model``: ``(instance, [])``, or ``(None, problems)`` with every problem found.

    Args:
        node: the node tree the data came from (for line numbers), or None.
        prefix: where ``data`` sits in ``node``.
        line: the line of problems the node tree cannot place (a JSONL line, a case's first line).
        label: a name put before each field ("case 'b'").
    """
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        grouped: dict[tuple[Any, ...], list[Any]] = {}
        for found in exc.errors():
            grouped.setdefault(_data_path(data, found), []).append(found)
        return None, [_problem(model, loc, errors, node, prefix, line, label) for loc, errors in grouped.items()]


def report(where: str, what: str, problems: list[Problem], fix: str = "", limit: int = MAX_PROBLEMS_SHOWN) -> str:
    """One message for every problem of a file: a header, one line each (up to ``limit``, then how many more)."""
    count = len(problems)
    lines = [f"{where}: invalid {what} ({count} problem{'s' if count != 1 else ''}):"]
    lines += [f"  - {problem.render(where)}" for problem in problems[:limit]]
    if count > limit:
        lines.append(f"  - ... and {count - limit:,} more (fix these and load again to see them).")
    if fix:
        lines.append(fix)
    return "\n".join(lines)


def shorten(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut at ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def did_you_mean(word: Any, choices: Any) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices`` (difflib), or an empty string."""
    close = difflib.get_close_matches(str(word), [str(choice) for choice in choices], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def _data_path(data: Any, error: Any) -> tuple[Any, ...]:
    """The part of a pydantic error's location that exists in the data (pydantic adds steps such as union
    members, which the file does not have); a missing key keeps its name."""
    loc, path, value = tuple(error["loc"]), [], data
    for number, step in enumerate(loc):
        if isinstance(value, dict) and _hashable(step) and step in value:
            value = value[step]
        elif isinstance(value, list | tuple) and isinstance(step, int) and 0 <= step < len(value):
            value = value[step]
        elif error["type"] == "missing" and number == len(loc) - 1 and isinstance(value, dict):
            pass
        else:
            break
        path.append(step)
    return tuple(path)


def _hashable(step: Any) -> bool:
    return isinstance(step, str | int)


def _problem(model: type[BaseModel], loc: tuple[Any, ...], errors: list[Any], node: yaml.Node | None,
             prefix: tuple[str | int, ...], line: int | None, label: str) -> Problem:
    kind = errors[0]["type"]
    field = ".".join(map(str, loc))
    field = f"{label}: {field}" if label and field else label or field
    found = _line(node, (*prefix, *(loc[:-1] if kind == "missing" else loc)))
    if kind == "extra_forbidden":
        text = _unknown_key(model, loc, errors[0]["input"])
    elif kind == "missing":
        text = f"required but missing. Add `{loc[-1]}:`{' there' if len(loc) > 1 else ''}."
    else:
        text = _wrong_value(model, loc, errors)
    return Problem(found or line, field, text)


def _line(node: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """The line of the deepest part of ``path`` found in the node tree (None for the file as a whole)."""
    for end in range(len(path), 0, -1):
        found = key_line(node, *path[:end])
        if found is not None:
            return found
    return None


def _unknown_key(model: type[BaseModel], loc: tuple[Any, ...], value: Any) -> str:
    allowed = _keys(_owner(model, loc[:-1]))
    listed = f" Allowed keys: {', '.join(allowed)}." if allowed else ""
    return f"unknown key (value {shorten(value)}).{did_you_mean(loc[-1], allowed)}{listed}"


def _wrong_value(model: type[BaseModel], loc: tuple[Any, ...], errors: list[Any]) -> str:
    messages = list(dict.fromkeys(error["msg"].removeprefix("Value error, ") for error in errors))
    text = ", or ".join(messages)
    if all(error["type"] == "value_error" for error in errors):
        return text  # our own validators: the message names the value and the fix
    value = errors[0]["input"]
    hint = did_you_mean(value, _choices(_annotation(model, loc))) if isinstance(value, str) else ""
    return f"{text} (got {shorten(value)}).{hint}{_description(model, loc)}"


def _description(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """The field's own description (how to write it), when the model gives one."""
    owner = _owner(model, loc[:-1])
    field = owner.model_fields.get(loc[-1]) if owner is not None and loc and isinstance(loc[-1], str) else None
    return f" {field.description.rstrip('.')}." if field is not None and field.description else ""


def _keys(model: type[BaseModel] | None) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()] if model is not None else []


def _owner(model: type[BaseModel], path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose mapping sits at ``path`` (None when that part of the file is not a model)."""
    return _model_in(_annotation(model, path))


def _annotation(model: type[BaseModel], path: tuple[Any, ...]) -> Any:
    """The type annotation of the value at ``path`` (through models, lists, tuples, dicts and unions)."""
    annotation: Any = model
    for step in path:
        annotation = _child(annotation, step)
        if annotation is None:
            return None
    return annotation


def _child(annotation: Any, step: Any) -> Any:
    model = _model_in(annotation)
    if model is not None and isinstance(step, str):
        field = model.model_fields.get(step)
        return field.annotation if field is not None else None
    for member in _members(annotation):
        origin, args = get_origin(member), get_args(member)
        if origin in (list, tuple, set, frozenset) and isinstance(step, int) and args:
            return args[0]
        if origin is dict and len(args) == 2:
            return args[1]
    return None


def _members(annotation: Any) -> tuple[Any, ...]:
    """The members of a union (``X | None``), or the annotation itself."""
    return get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    return next((m for m in _members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)), None)


def _choices(annotation: Any) -> tuple[Any, ...]:
    """The values a ``Literal[...]`` (or an optional one) allows."""
    return tuple(value for member in _members(annotation) if get_origin(member) is Literal
                 for value in get_args(member))
