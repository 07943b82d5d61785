"""Reading a promptfoo config for the importer: the files it points at, its prompts and its providers.

promptfoo (https://promptfoo.dev/docs/configuration/reference) writes most things several ways: a prompt is an
inline string, a ``file://`` path (a glob, a ``.txt`` holding several prompts between ``---`` lines, a JSON chat,
``file://x.py:fn``), or a mapping ``{id, label, raw, config}``; providers are strings, ``{id, label, config}``
mappings, ``{"openai:gpt-4o": {...}}`` records or ``file://`` YAML files. This module reads every spelling into
a few plain records; what promptlab cannot express is logged on `Log` with the reason, never dropped silently.
"""

from __future__ import annotations

import ast
import csv
import glob
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._yaml import load_yaml, read_text
from ..errors import ArgumentError

_FILE = "file://"
_TEXT_SUFFIXES = {".txt", ".md", ".j2", ".jinja", ".jinja2", ".prompt", ""}
_SEPARATOR = re.compile(r"^---\s*$", re.MULTILINE)  # promptfoo's delimiter between prompts in one text file
_SECRET_KEY = re.compile(r"(?i)(api_?key|token|secret|password|authorization|headers)")


@dataclass
class Log:
    """What the importer could not convert (``skipped``: what, why) and where it converted with a difference."""

    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, what: str, why: str) -> None:
        """Record something not converted, once."""
        if (what, why) not in self.skipped:
            self.skipped.append((what, why))

    def note(self, text: str) -> None:
        """Record a conversion that behaves differently from promptfoo, once."""
        if text not in self.notes:
            self.notes.append(text)


@dataclass
class Source:
    """Reads the files a config refers to, relative to the config's folder."""

    root: Path
    log: Log

    def ref(self, value: Any) -> str | None:
        """The path in a ``file://`` reference (``None`` for anything else)."""
        if isinstance(value, str) and value.startswith(_FILE):
            return value[len(_FILE):].strip()
        return None

    def paths(self, pattern: str) -> list[Path]:
        """The files a path or glob names, in sorted order (a folder gives the files in it)."""
        full = pattern if Path(pattern).is_absolute() else str(self.root / pattern)
        if glob.has_magic(full):
            return [Path(p) for p in sorted(glob.glob(full, recursive=True)) if Path(p).is_file()]
        path = Path(full)
        if path.is_dir():
            return sorted(p for p in path.iterdir() if p.is_file())
        return [path] if path.is_file() else []

    def text(self, path: Path) -> str:
        """A file's text: UTF-8 (a byte-order mark is fine), line ends made ``\\n``."""
        return read_text(path, ArgumentError, "file").replace("\r\n", "\n").replace("\r", "\n")

    def data(self, path: Path) -> Any:
        """A YAML, JSON or JSONL file's data (JSONL: a list, blank lines skipped)."""
        text = self.text(path)
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            rows = []
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise ArgumentError(f"{path}:{number}: not valid JSON ({exc.msg}). Fix the line.") from None
            return rows
        return load_yaml(text, str(path), ArgumentError).data  # JSON is YAML

    def csv_rows(self, path: Path) -> list[dict[str, str]]:
        """A CSV file's rows as ``{column: text}`` (blank rows skipped; a repeated column keeps its last value)."""
        reader = csv.reader(self.text(path).splitlines(keepends=True))
        header = next(reader, None)
        if not header:
            return []
        header = [name.strip() for name in header]
        for name in sorted({n for n in header if header.count(n) > 1 and not n.startswith("__expected")}):
            self.log.skip(f"{path.name}: column {name!r}", "the column appears more than once; the last one is used")
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            cells = cells + [""] * (len(header) - len(cells))
            if len(cells) > len(header):
                self.log.skip(f"{path.name}: line {reader.line_num}", "more cells than the header has columns; "
                              "the extra cells are ignored")
            row: dict[str, str] = {}
            for number, (name, cell) in enumerate(zip(header, cells, strict=False)):
                key = f"{name}#{number}" if name.startswith("__expected") and name in row else name
                row[key] = cell
            rows.append(row)
        return rows


# ---- prompts ------------------------------------------------------------------------------------------------
@dataclass
class ImportedPrompt:
    """One prompt variant: a template (with optional system text), a chat to render, or a python function."""

    id: str
    source: str
    template: str = ""
    system: str = ""
    messages: list[dict[str, str]] | None = None  # a chat that a prompt file cannot hold (vars in system, turns)
    python: tuple[Path, str] | None = None  # (file, function) of a promptfoo python prompt
    params: dict[str, Any] = field(default_factory=dict)


def read_prompts(raw: Any, src: Source) -> list[ImportedPrompt]:
    """Every prompt of the config's ``prompts`` (a string, a list, or a ``{path: label}`` mapping)."""
    if isinstance(raw, str):
        raw = [raw]
    elif isinstance(raw, dict):  # the old {file://path: label} form
        raw = [{"id": key, "label": value} for key, value in raw.items()]
    if not isinstance(raw, list):
        raise ArgumentError(f"`prompts` must be a string, a list or a mapping, got {type(raw).__name__}. "
                            "Write `prompts: [file://prompt.txt]` or a list of prompt texts.")
    prompts: list[ImportedPrompt] = []
    for number, entry in enumerate(raw, 1):
        prompts += _prompt_entry(entry, number, src)
    return _unique_ids(prompts)


def _prompt_entry(entry: Any, number: int, src: Source) -> list[ImportedPrompt]:
    label, params, where = None, {}, f"prompts[{number - 1}]"
    if isinstance(entry, dict):
        label = entry.get("label")
        params = _prompt_params(entry.get("config") or {}, label or where, src.log)
        for key in sorted(set(entry) - {"id", "raw", "label", "config"}):
            src.log.skip(f"{where}.{key}", "promptlab prompts have no such setting")
        entry = entry.get("raw") if entry.get("raw") is not None else entry.get("id")
    if not isinstance(entry, str) or not entry.strip():
        src.log.skip(where, f"a prompt must be text or a file reference, got {entry!r}")
        return []
    path = src.ref(entry) or _bare_path(entry, src)
    found = _from_file(path, label, src) if path else [ImportedPrompt(label or f"prompt-{number}", where, entry)]
    for prompt in found:
        prompt.params = {**params, **prompt.params}
    return found


def _bare_path(entry: str, src: Source) -> str | None:
    """Old configs list prompt files without ``file://``: take a one-line entry naming an existing file."""
    if "\n" in entry or "{{" in entry or "{%" in entry:
        return None
    return entry.strip() if src.paths(entry.strip().split(":")[0]) else None


def _from_file(ref: str, label: str | None, src: Source) -> list[ImportedPrompt]:
    function = None
    match = re.fullmatch(r"(.+\.py):(\w+)", ref)
    if match:
        ref, function = match[1], match[2]
    paths = src.paths(ref)
    if not paths:
        src.log.skip(f"prompt file://{ref}", "no such file (paths are relative to the promptfoo config)")
        return []
    prompts = []
    for path in paths:
        name = label if label and len(paths) == 1 else path.stem
        prompts += _prompts_in(path, name, function, src)
    return prompts


def _prompts_in(path: Path, name: str, function: str | None, src: Source) -> list[ImportedPrompt]:
    suffix, where = path.suffix.lower(), f"prompt file://{_rel(path, src.root)}"
    if suffix == ".py":
        return _python_prompt(path, name, function or "", where, src)
    if suffix in (".js", ".cjs", ".mjs", ".ts"):
        src.log.skip(where, "a JavaScript prompt function: convert by hand to a python function "
                     "(`{id, python: module:function}` in promptlab.yaml, called with the vars)")
        return []
    if suffix in (".json", ".yaml", ".yml"):
        return _chat_prompt(path, name, where, src)
    if suffix == ".csv":
        rows = src.csv_rows(path)
        return [ImportedPrompt(row.get("label") or f"{name}-{i}", where, row.get("prompt", ""))
                for i, row in enumerate(rows, 1) if row.get("prompt", "").strip()]
    if suffix not in _TEXT_SUFFIXES:
        src.log.note(f"{where}: read as plain text (promptfoo reads {suffix} files the same way)")
    parts = [part.strip("\n") for part in _SEPARATOR.split(src.text(path)) if part.strip()]
    if len(parts) == 1:
        return [ImportedPrompt(name, where, parts[0])]
    return [ImportedPrompt(f"{name}-{i}", f"{where} (prompt {i})", part) for i, part in enumerate(parts, 1)]


def _python_prompt(path: Path, name: str, function: str, where: str, src: Source) -> list[ImportedPrompt]:
    if not function:
        src.log.skip(where, "a python prompt file without a function name: write file://x.py:function")
        return []
    try:
        tree = ast.parse(src.text(path), str(path))
    except SyntaxError as exc:
        src.log.skip(f"{where}:{function}", f"the file is not valid python (line {exc.lineno}: {exc.msg})")
        return []
    if not any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function
               for node in tree.body):
        src.log.skip(f"{where}:{function}", f"the file defines no function {function!r}")
        return []
    return [ImportedPrompt(name, f"{where}:{function}", python=(path, function))]


def _chat_prompt(path: Path, name: str, where: str, src: Source) -> list[ImportedPrompt]:
    try:
        data = src.data(path)
    except ArgumentError as exc:
        src.log.skip(where, f"not a chat prompt promptlab can read: {exc} (templates outside JSON strings "
                     "are not converted; write the messages as a JSON list)")
        return []
    if isinstance(data, dict) and {"role", "content"} <= set(data):
        data = [data]
    if not (isinstance(data, list) and data and all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                    and m.get("role") in ("system", "user", "assistant")
                                                    for m in data)):
        src.log.skip(where, "a chat prompt must be a list of {role: system|user|assistant, content: text} "
                     "(content lists with images or tool messages are not converted)")
        return []
    return [chat_to_prompt(name, where, [{"role": m["role"], "content": m["content"]} for m in data])]


def chat_to_prompt(name: str, where: str, messages: list[dict[str, str]]) -> ImportedPrompt:
    """A chat as a prompt file when it is ``[system?, user]`` with a fixed system text, else as messages."""
    system = messages[0]["content"] if messages[0]["role"] == "system" else None
    rest = messages[1:] if system is not None else messages
    if len(rest) == 1 and rest[0]["role"] == "user" and (system is None or not _has_template(system)):
        return ImportedPrompt(name, where, rest[0]["content"], system=system or "")
    return ImportedPrompt(name, where, messages=messages)


def _has_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def _prompt_params(config: Any, where: str, log: Log) -> dict[str, Any]:
    params, _ = request_params(config, f"prompt {where}", log)
    return params


def _unique_ids(prompts: list[ImportedPrompt]) -> list[ImportedPrompt]:
    seen: dict[str, int] = {}
    for prompt in prompts:
        count = seen[prompt.id] = seen.get(prompt.id, 0) + 1
        if count > 1:
            prompt.id = f"{prompt.id}-{count}"
    return prompts


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# ---- providers ----------------------------------------------------------------------------------------------
@dataclass
class ImportedModel:
    """One promptfoo provider as a promptlab model: id, label, request params and an endpoint."""

    id: str
    label: str | None
    params: dict[str, Any]
    base_url: str | None = None
    transform: str | None = None


_PARAM_KEYS = {"temperature": "temperature", "max_tokens": "max_tokens", "max_completion_tokens": "max_tokens",
               "max_tokens_to_sample": "max_tokens", "maxTokens": "max_tokens", "stop": "stop",
               "stop_sequences": "stop"}
_ENDPOINT_KEYS = ("apiBaseUrl", "apiHost", "baseUrl", "basePath")
_IGNORED_KEYS = {"apiKeyEnvar", "organization", "cost", "showThinking"}


def request_params(config: Any, where: str, log: Log) -> tuple[dict[str, Any], str | None]:
    """The request params promptlab passes (temperature, max_tokens, stop) and a base URL from a config."""
    if not isinstance(config, dict):
        return {}, None
    params: dict[str, Any] = {}
    base_url = None
    for key, value in config.items():
        if key in _PARAM_KEYS:
            params[_PARAM_KEYS[key]] = list(value) if isinstance(value, list | tuple) else value
        elif key in _ENDPOINT_KEYS:
            base_url = value if key != "apiHost" or "://" in str(value) else f"https://{value}/v1"
        elif _SECRET_KEY.search(key):  # never copied, never shown
            log.skip(f"{where}: config.{key}", "secrets are not written to files: promptlab reads the key from "
                     "the environment (OPENAI_API_KEY, ANTHROPIC_API_KEY)")
        elif key in _IGNORED_KEYS:
            log.skip(f"{where}: config.{key}", "not needed: promptlab reads keys from the standard environment "
                     "variables and prices from its own table")
        else:
            log.skip(f"{where}: config.{key}", "promptlab passes only temperature, max_tokens and stop to models")
    return params, base_url


def read_providers(raw: Any, src: Source) -> list[ImportedModel]:
    """Every provider of ``providers`` (or ``targets``) that promptlab can call; the rest is logged."""
    if raw is None:
        return []
    entries = raw if isinstance(raw, list) else [raw]
    models = []
    for number, entry in enumerate(entries):
        for item in _provider_items(entry, number, src):
            model = _provider(item, src)
            if model is not None:
                models.append(model)
    return models


def _provider_items(entry: Any, number: int, src: Source) -> list[dict[str, Any]]:
    """A provider entry as ``{id, label, config, ...}`` mappings (files read, records unfolded)."""
    if isinstance(entry, str):
        ref = src.ref(entry)
        if ref and Path(ref).suffix.lower() in (".yaml", ".yml", ".json"):
            paths = src.paths(ref)
            if not paths:
                src.log.skip(f"provider {entry}", "no such file (paths are relative to the promptfoo config)")
            found = []
            for path in paths:
                data = src.data(path)
                found += [d for d in (data if isinstance(data, list) else [data]) if isinstance(d, dict)]
            return found
        return [{"id": entry}]
    if isinstance(entry, dict) and "id" not in entry and len(entry) == 1:
        (key, value), = entry.items()
        return [{"id": key, **(value if isinstance(value, dict) else {})}]
    if isinstance(entry, dict):
        return [entry]
    src.log.skip(f"providers[{number}]", f"a provider must be an id or a mapping, got {entry!r}")
    return []


def _provider(item: dict[str, Any], src: Source) -> ImportedModel | None:
    pid = item.get("id")
    shown = f"provider {pid}" if isinstance(pid, str) else f"provider {item.get('label', '?')}"
    if not isinstance(pid, str):
        src.log.skip(shown, "a custom provider object (callApi) cannot be imported; give it an id")
        return None
    model_id, why = model_id_of(pid)
    if model_id is None:
        src.log.skip(shown, why)
        return None
    params, base_url = request_params(item.get("config") or {}, shown, src.log)
    if pid.startswith("ollama:"):
        base_url = base_url or "http://localhost:11434/v1"
        src.log.note(f"{shown}: runs through ollama's OpenAI-compatible endpoint {base_url} (set OPENAI_API_KEY "
                     "to any text)")
    for key in sorted(set(item) - {"id", "label", "config", "transform"}):
        why = ("promptlab runs every prompt on every model; use separate eval files to pair them"
               if key == "prompts" else "promptlab models have no such setting")
        src.log.skip(f"{shown}: {key}", why)
    return ImportedModel(model_id, item.get("label"), params, base_url, item.get("transform"))


_OPENAI_KINDS = {"chat", "responses"}
_UNSUPPORTED_KINDS = {"embedding", "embeddings", "moderation", "image", "realtime", "assistant", "audio",
                      "transcription"}


def model_id_of(pid: str) -> tuple[str | None, str]:
    """The promptlab model id of a promptfoo provider id, or None and why not."""
    parts = pid.split(":")
    vendor = parts[0]
    if vendor in ("openai", "anthropic", "ollama") and len(parts) >= 2:
        kind = parts[1]
        if kind in _UNSUPPORTED_KINDS:
            return None, f"a {kind} endpoint, not a text model promptlab evaluates"
        model = ":".join(parts[2:]) if kind in (_OPENAI_KINDS | {"messages", "completion"}) else ":".join(parts[1:])
        if not model:
            return None, f"{pid!r} names no model: write it as {vendor}:<model>"
        if kind == "completion":
            return None, "a legacy completions endpoint; promptlab calls chat models (use openai:<model>)"
        return f"{'openai' if vendor == 'ollama' else vendor}:{model}", ""
    return None, (f"promptlab has no {vendor!r} provider (it calls openai, anthropic and the local model); "
                  "give `--model` to run these prompts on one of those")
