"""The one reader of YAML files users hand us: bounded, strict, and precise about where a problem is.

PyYAML's ``safe_load`` is safe from code execution but not from resource exhaustion or silent data loss:

- an *alias bomb* (a few hundred bytes of anchors that reference each other) expands to billions of nodes
  the moment anything walks the data; we measure the expanded size on the node graph (each anchored node
  counted once per use, memoised, so the check itself is linear) and refuse past `MAX_EXPANDED_NODES`;
- a key repeated in one mapping silently keeps the last value; we refuse it and name both lines;
- a huge file is refused by size before it is parsed (`MAX_FILE_BYTES`).

Callers pass the exception class their users catch (`SuiteFileError`, `PromptFileError`, ...), so every
message says which file, which line, what is wrong and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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


class _StrictLoader(yaml.SafeLoader):
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
