"""Reading a promptfoo config's tests for the importer: inline tests, test files, CSV rows and ``defaultTest``.

A promptfoo test is ``{description, vars, assert, options, threshold, metadata}``; ``tests`` holds them inline,
or names files (``file://tests.csv``, YAML, JSON, JSONL, globs, folders). CSV rows follow promptfoo's special
columns (https://promptfoo.dev/docs/configuration/test-cases#csv-format): ``__expected``, ``__expected1..N``
(assertion shorthands such as ``contains: foo``), ``__description``, ``__metric``, ``__threshold``,
``__metadata:key`` (``key[]`` for a list) and ``__config:__expectedN:key``; every other column is a variable.
``defaultTest`` is merged into every test, and variables holding lists expand into every combination.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._promptfoo_asserts import assertion_from_string
from ._promptfoo_read import Source

_TEST_KEYS = {"description", "vars", "assert", "options", "threshold", "metadata"}
_TEST_FILES = {".csv", ".yaml", ".yml", ".json", ".jsonl", ".ndjson"}
_CSV_SPECIAL = ("__description", "__metric", "__threshold", "__prefix", "__suffix", "__providerOutput")


@dataclass
class ImportedTest:
    """One promptfoo test after merging ``defaultTest`` and expanding list variables."""

    where: str
    description: str | None
    vars: dict[str, Any]
    asserts: list[tuple[str, Any]]  # (where it was written, the promptfoo assertion)
    options: dict[str, Any] = field(default_factory=dict)
    threshold: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def read_tests(config: dict[str, Any], default: dict[str, Any], src: Source) -> list[ImportedTest]:
    """Every test of the config, ``default`` (its `default_test`) merged in, list variables expanded."""
    raw = config.get("tests")
    if raw is None:
        raw = []
    entries = raw if isinstance(raw, list) else [raw]
    tests: list[ImportedTest] = []
    for number, entry in enumerate(entries):
        for where, test in _test_entries(entry, f"tests[{number}]", src):
            tests += _expand(_merge(default, test, where, src), src)
    for number, scenario in enumerate(config.get("scenarios") or []):
        tests += _scenario(scenario, f"scenarios[{number}]", default, src)
    return tests


def default_test(raw: Any, src: Source) -> dict[str, Any]:
    """The config's ``defaultTest``: a mapping, or read from its ``file://`` YAML or JSON file."""
    if raw is None:
        return {}
    ref = src.ref(raw) if isinstance(raw, str) else None
    if ref is not None:
        paths = src.paths(ref)
        if not paths:
            src.log.skip(f"defaultTest {raw}", "no such file (paths are relative to the promptfoo config)")
            return {}
        raw = src.data(paths[0])
    if not isinstance(raw, dict):
        src.log.skip("defaultTest", f"must be a mapping, got {type(raw).__name__}")
        return {}
    return raw


def _test_entries(entry: Any, where: str, src: Source) -> list[tuple[str, dict[str, Any]]]:
    """A ``tests`` entry as (where, test mapping) pairs: a test, or every test of the files it names."""
    if isinstance(entry, dict) and "path" in entry and "vars" not in entry and "assert" not in entry:
        src.log.skip(f"{where}: {entry['path']}", "a test generator runs code when promptfoo loads it; run it "
                     "once and save its tests as CSV or YAML, then import again")
        return []
    if isinstance(entry, dict):
        return [(where, entry)]
    if not isinstance(entry, str):
        src.log.skip(where, f"a test must be a mapping or a file reference, got {entry!r}")
        return []
    if re.match(r"^[a-z][a-z0-9+.-]*://", entry) and not entry.startswith("file://"):
        src.log.skip(f"{where}: {entry}", "remote test sets (Google Sheets, Hugging Face, URLs) are not fetched; "
                     "download them as CSV and point `tests` at the file")
        return []
    ref = src.ref(entry) or entry
    if re.search(r"\.(py|js|ts|mjs|cjs)(:\w+)?$", ref):
        src.log.skip(f"{where}: {entry}", "a test generator runs code when promptfoo loads it; run it once and "
                     "save its tests as CSV or YAML, then import again")
        return []
    paths = src.paths(ref)
    if not paths:
        src.log.skip(f"{where}: {entry}", "no such file (paths are relative to the promptfoo config)")
        return []
    found = []
    for path in paths:
        found += _tests_in_file(path, src)
    return found


def _tests_in_file(path: Path, src: Source) -> list[tuple[str, dict[str, Any]]]:
    name, suffix = path.name, path.suffix.lower()
    if suffix in (".xlsx", ".xls"):
        src.log.skip(f"tests file {name}", "Excel workbooks are not read: save the sheet as CSV and import again")
        return []
    if suffix not in _TEST_FILES:
        src.log.skip(f"tests file {name}", f"promptfoo test files are CSV, YAML, JSON or JSONL, not {suffix!r}")
        return []
    if suffix == ".csv":
        return [(f"{name} row {i}", _csv_test(row, name, src)) for i, row in enumerate(src.csv_rows(path), 1)]
    data = src.data(path)
    items = data if isinstance(data, list) else [data]
    found = []
    for i, item in enumerate(items, 1):
        if isinstance(item, dict):
            found.append((f"{name} test {i}", item))
        else:
            src.log.skip(f"{name} test {i}", f"a test must be a mapping, got {item!r}")
    return found


def _csv_test(row: dict[str, str], name: str, src: Source) -> dict[str, Any]:
    """A CSV row as a promptfoo test (the special columns read as promptfoo reads them)."""
    test: dict[str, Any] = {"vars": {}, "assert": [], "metadata": {}, "options": {}}
    configs: dict[str, dict[str, Any]] = {}
    columns: dict[str, Any] = {}
    for key, value in row.items():
        column = key.split("#")[0]
        if column.startswith("__expected"):
            if value.strip():
                columns[key] = assertion_from_string(value, src.log)
        elif column.startswith("__config:"):
            _csv_config(column, value, configs, name, src)
        elif column.startswith("__metadata"):
            _csv_metadata(column, value, test["metadata"], name, src)
        elif column in _CSV_SPECIAL:
            _csv_special(column, value, test, name, src)
        else:
            if re.match(r"^_(expected|description|metric|threshold|prefix|suffix)", column):
                src.log.note(f"{name}: column {column!r} starts with one underscore, so it is a variable "
                             f"(as in promptfoo); did you mean {'_' + column!r}?")
            test["vars"][column] = value
    for key, assertion in columns.items():
        config = {**configs.get("__expected", {}), **configs.get(key.split("#")[0], {})}
        assertion.update({k: v for k, v in config.items() if k in ("threshold", "weight", "metric")})
        if test.get("__metric") and "metric" not in assertion:
            assertion["metric"] = test["__metric"]
        test["assert"].append(assertion)
    test.pop("__metric", None)
    return test


def _csv_config(column: str, value: str, configs: dict[str, dict[str, Any]], name: str, src: Source) -> None:
    parts = column.split(":")
    if len(parts) != 3 or not parts[1].startswith("__expected"):
        src.log.skip(f"{name}: column {column!r}", "write __config:__expected:<key> or __config:__expectedN:<key>")
        return
    if value.strip():
        configs.setdefault(parts[1], {})[parts[2]] = _number(value)


def _csv_metadata(column: str, value: str, metadata: dict[str, Any], name: str, src: Source) -> None:
    key = column.partition(":")[2]
    if not key:
        src.log.skip(f"{name}: column '__metadata'", "metadata needs a key: write __metadata:<key>")
        return
    if key.endswith("[]"):
        items = [part.replace("\\,", ",").strip() for part in re.split(r"(?<!\\),", value)]
        metadata[key[:-2]] = [item for item in items if item]
    elif value.strip():
        metadata[key] = value


def _csv_special(column: str, value: str, test: dict[str, Any], name: str, src: Source) -> None:
    if not value.strip():
        return
    if column == "__description":
        test["description"] = value
    elif column == "__metric":
        test["__metric"] = value
    elif column == "__threshold":
        test["threshold"] = _number(value)
    elif column in ("__prefix", "__suffix"):
        test["options"][column[2:]] = value
    else:
        src.log.skip(f"{name}: column {column!r}", "promptlab asks the model; recorded outputs are not imported")


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


# ---- defaultTest, list variables -------------------------------------------------------------------------------
def _merge(default: dict[str, Any], test: dict[str, Any], where: str, src: Source) -> ImportedTest:
    for key in sorted(set(test) - _TEST_KEYS):
        why = {"provider": "promptlab runs every case on every model; use a separate eval file for this test",
               "providers": "promptlab runs every case on every model", "prompts": "promptlab runs every case on "
               "every prompt", "providerOutput": "promptlab asks the model; recorded outputs are not imported",
               "assertScoringFunction": "promptlab's case verdict is: every scorer passes"}.get(key,
                                                                                                "not a test setting")
        src.log.skip(f"{where}: {key}", why)
    options = {**_dict(default, "options", "defaultTest", src), **_dict(test, "options", where, src)}
    # each assertion keeps where it was written, so a defaultTest assertion that cannot be converted is logged once
    asserts = [(f"{where}: assert[{i}]", raw) for i, raw in enumerate(_list(test.get("assert")))]
    if not _dict(test, "options", where, src).get("disableDefaultAsserts"):
        asserts = [(f"defaultTest: assert[{i}]", raw) for i, raw in enumerate(_list(default.get("assert")))] + asserts
    own = _vars(test.get("vars"), where, src)  # the test's own order first: list variables expand in that order
    vars_ = {**own, **{k: v for k, v in _vars(default.get("vars"), where, src).items() if k not in own}}
    threshold = test.get("threshold", default.get("threshold"))
    metadata = {**_dict(default, "metadata", "defaultTest", src), **_dict(test, "metadata", where, src)}
    return ImportedTest(where, test.get("description"), vars_, asserts, options, threshold, metadata)


def _dict(test: dict[str, Any], key: str, where: str, src: Source) -> dict[str, Any]:
    value = test.get(key)
    if value is None or isinstance(value, dict):
        return value or {}
    src.log.skip(f"{where}: {key}", f"must be a mapping, got {type(value).__name__} {value!r}")
    return {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [] if value is None else [value]


def _vars(raw: Any, where: str, src: Source) -> dict[str, Any]:
    """A test's variables: a mapping (``file://`` values read), or a ``file://`` YAML/JSON file of them."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        paths = src.paths(src.ref(raw) or raw)
        if len(paths) != 1:
            src.log.skip(f"{where}: vars {raw}", "name exactly one YAML or JSON file of variables")
            return {}
        raw = src.data(paths[0])
    if not isinstance(raw, dict):
        src.log.skip(f"{where}: vars", f"must be a mapping of variables, got {type(raw).__name__}")
        return {}
    return {str(key): _var_value(str(key), value, where, src) for key, value in raw.items()}


def _var_value(key: str, value: Any, where: str, src: Source) -> Any:
    ref = src.ref(value)
    if ref is None:
        return value
    paths = src.paths(ref)
    suffixes = {p.suffix.lower() for p in paths}
    if not paths or suffixes - {".txt", ".md", ".yaml", ".yml", ".json", ""}:
        why = ("no such file" if not paths else
               "only text, YAML and JSON files are read into variables (scripts, images and PDFs are not)")
        src.log.skip(f"{where}: var {key} = {value}", why)
        return value
    values = [src.data(p) if p.suffix.lower() in (".yaml", ".yml", ".json") else src.text(p) for p in paths]
    return values[0] if len(values) == 1 and not any(c in ref for c in "*?[") else values


def _expand(test: ImportedTest, src: Source) -> list[ImportedTest]:
    """One test per combination of list-valued variables (promptfoo's expansion), unless it is turned off."""
    if test.options.get("disableVarExpansion"):
        return [test]
    keys = [key for key, value in test.vars.items() if isinstance(value, list)]
    if not keys:
        return [test]
    tests = []
    for combination in itertools.product(*(test.vars[key] for key in keys)):
        values = {**test.vars, **dict(zip(keys, combination, strict=True))}
        tests.append(ImportedTest(test.where, test.description, values, test.asserts, test.options,
                                  test.threshold, test.metadata))
    return tests


def _scenario(scenario: Any, where: str, default: dict[str, Any], src: Source) -> list[ImportedTest]:
    """A scenario: every test of it run with every variable set of its ``config``."""
    if not isinstance(scenario, dict):
        src.log.skip(where, "a scenario must be a mapping with `config` and `tests` (file scenarios are not read)")
        return []
    tests = []
    for i, setting in enumerate(scenario.get("config") or [{}]):
        for j, test in enumerate(scenario.get("tests") or []):
            if not isinstance(test, dict):
                src.log.skip(f"{where}.tests[{j}]", "a scenario test must be a mapping")
                continue
            both = {**setting, **test, "vars": {**(setting.get("vars") or {}), **(test.get("vars") or {})},
                    "assert": list(setting.get("assert") or []) + list(test.get("assert") or [])}
            tests += _expand(_merge(default, both, f"{where}.config[{i}].tests[{j}]", src), src)
    return tests
