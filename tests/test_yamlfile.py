"""The one strict YAML reader (promptlab._yaml): alias bombs, repeated keys, size cap, binary files; and the one
validator: every problem of a file in one error, each with its line."""

from __future__ import annotations

import time

import pytest

from promptlab import _yaml as yamlfile
from promptlab._yaml import key_line, load_yaml, looks_tabular, node_at, node_line, read_text

BOMB = "\n".join(
    [f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]" for prev, name in zip("abcdefgh", "bcdefghi", strict=True)]
)
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + BOMB + "\nroot: *i\n"


class Bad(ValueError):
    pass


def test_an_alias_bomb_is_refused_in_well_under_a_second():
    assert len(BOMB) < 700
    started = time.perf_counter()
    with pytest.raises(Bad, match=r"f.yaml:\d+: YAML aliases expand to more than 1,000,000 nodes"):
        load_yaml(BOMB, "f.yaml", Bad)
    assert time.perf_counter() - started < 2.0


def test_a_few_honest_aliases_and_merge_keys_are_fine():
    text = "base: &base {model: m, temperature: 0}\nfast:\n  <<: *base\n  max_tokens: 5\nagain: *base\n"
    data = load_yaml(text, "f.yaml", Bad).data
    assert data["fast"] == {"model": "m", "temperature": 0, "max_tokens": 5} and data["again"] == data["base"]


def test_a_recursive_anchor_is_refused():
    with pytest.raises(Bad, match="recursive anchor"):
        load_yaml("a: &a [1, *a]\n", "f.yaml", Bad)


def test_a_repeated_key_names_both_lines():
    with pytest.raises(Bad, match=r"f.yaml:3: key 'x' appears twice in one mapping \(first at line 1\)"):
        load_yaml("x: 1\ny: 2\nx: 3\n", "f.yaml", Bad)


def test_the_size_cap_is_read_when_called(tmp_path, monkeypatch):
    path = tmp_path / "f.yaml"
    path.write_text("x: 1\n" * 100)
    monkeypatch.setattr(yamlfile, "MAX_FILE_BYTES", 100)
    with pytest.raises(Bad, match=r"data file '.*f.yaml' is 500 bytes, over the limit of 100"):
        read_text(path, Bad, "data file")


@pytest.mark.parametrize("content, fragment", [
    (b"PK\x03\x04rest of a workbook", "is a binary file (a ZIP archive, such as an Excel .xlsx workbook"),
    (b"\xd0\xcf\x11\xe0old excel", "an old Office file"),
    (b"%PDF-1.7", "a PDF document"),
    ("x: 1\n".encode("utf-16"), "is UTF-16 text"),
    (b"x: 1\x00\x00", "it contains NUL bytes"),
])
def test_binary_files_are_named_not_decoded(tmp_path, content, fragment):
    path = tmp_path / "f.yaml"
    path.write_bytes(content)
    with pytest.raises(Bad) as info:
        read_text(path, Bad, "data file", accepted="A data file is YAML.")
    assert fragment in str(info.value) and str(info.value).endswith("not UTF-8 text. A data file is YAML.")


def test_latin1_text_names_the_line_of_the_first_bad_byte(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_bytes("a: 1\nb: 2\nc: café\n".encode("latin-1"))
    with pytest.raises(Bad, match="byte 0xe9 at line 3 is not UTF-8"):
        read_text(path, Bad, "data file")


def test_a_utf8_bom_is_dropped(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_bytes(b"\xef\xbb\xbfx: 1\n")
    assert read_text(path, Bad, "data file") == "x: 1\n"


def test_lines_of_values_and_keys():
    node = load_yaml("a: 1\ncases:\n  - id: x\n    input:\n      subject: s\n", "f.yaml", Bad).node
    assert node_line(node, "cases", 0) == 3 and key_line(node, "cases", 0, "input") == 4
    assert node_line(node, "cases", 0, "input") == 5  # a block mapping starts below its key
    assert node_at(node, "cases", 0, "id").value == "x"
    assert node_line(node, "nope") is None and key_line(node, "cases", 5) is None


@pytest.mark.parametrize("text, kind", [
    ("id,input,expected\na,hello,positive\n", "CSV"),
    ("id\tinput\texpected\na\thello\tpositive\n", "TSV"),
    ("name: x\ncases: []\n", None),
    ("- a, b\n- c, d\n", None),
])
def test_looks_tabular(text, kind):
    assert looks_tabular(text) == kind


@pytest.mark.parametrize("loader, error", [
    ("promptlab.optimize._lockfile:load_lockfile", "LockfileError"),
    ("promptlab.optimize._routing:load_routing_table", "RoutingError"),
    ("promptlab.providers._prices:PriceTable.from_yaml", "PriceFileError"),
])
def test_every_yaml_reader_is_the_strict_one(tmp_path, loader, error):
    import importlib

    import promptlab.errors

    module, _, attribute = loader.partition(":")
    read = importlib.import_module(module)
    for part in attribute.split("."):
        read = getattr(read, part)
    exception = getattr(promptlab.errors, error)
    repeated = tmp_path / "repeated.yaml"
    repeated.write_text("version: 1\nversion: 2\n")
    with pytest.raises(exception, match=r"repeated.yaml:2: key 'version' appears twice"):
        read(repeated)
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    started = time.perf_counter()
    with pytest.raises(exception, match="aliases expand to more than"):
        read(bomb)
    assert time.perf_counter() - started < 2.0


# ---- one report of every problem (issue 13, item 4) ----------------------------------------------------------
# Each file has three problems: a misspelt key, a value of the wrong type, and a missing field (gates have no
# required field: an out-of-range value instead). One error must name all three, each with its line.
THREE_PROBLEMS = {
    "prompt": ("promptlab.authoring._prompt:load_prompt", "PromptFileError",
               "name: p\nversion: 1\nmodel: m\ntemprature: 0.5\nmax_tokens: many\nfew_shot_examples:\n"
               "  - input: hi\n",
               [":4: temprature: unknown key", "Did you mean 'temperature'?", ":5: max_tokens: Input should be a "
                "valid integer", "(got 'many')", ":7: few_shot_examples.0.output: required but missing"]),
    "suite": ("promptlab.authoring._suite:load_suite", "SuiteFileError",
              "name: s\ncases:\n  - id: a\n    input: hi\n    expcted: x\n  - id: b\n    input: hi\n"
              "    expected: x\n    tags: 5\n  - id: c\n    expected: x\n",
              [":5: case 'a': expcted: unknown key", "Did you mean 'expected'?", ":9: case 'b': tags: Input should "
               "be a valid tuple", "(got 5)", ":10: case 'c': input: required but missing"]),
    "gates": ("promptlab.registry._lifecycle:load_policy", "RegistryError",
              "defaults:\n  min_acuracy: 0.9\nprompts:\n  x:\n    min_cases: many\n    max_p95_latency_s: -1\n",
              [":2: defaults.min_acuracy: unknown key", "Did you mean 'min_accuracy'?", ":5: prompts.x.min_cases: "
               "Input should be a valid integer", ":6: prompts.x.max_p95_latency_s: Input should be greater than 0"]),
    "alert rules": ("promptlab.production._alertrules:load_alert_rules", "AlertConfigError",
                    "rules:\n  - name: a\n    metric: success_rate\n    mn: 0.9\n  - name: b\n"
                    "    metric: error_rate\n    max: lots\n  - metric: error_rate\n    max: 0.1\n",
                    [":4: rules.0.mn: unknown key", "Did you mean 'min'?", ":7: rules.1.max: Input should be a "
                     "valid number", "(got 'lots')", ":8: rules.2.name: required but missing"]),
    "routing": ("promptlab.optimize._routing:load_routing_table", "RoutingError",
                "version: 1\ngenerated: 2026-01-01\ntasks:\n  t:\n    threshold: high\n    confidnce: 0.9\n",
                [":6: tasks.t.confidnce: unknown key", "Did you mean 'confidence'?", ":5: tasks.t.threshold: Input "
                 "should be a valid number", ":4: tasks.t.model: required but missing"]),
    "lockfile": ("promptlab.optimize._lockfile:load_lockfile", "LockfileError",
                 "version: 1\nmodels:\n  m:\n    served: x\n    pined: true\n    first_seen: a\n    last_seen: b\n"
                 "    calls: many\n",
                 [":5: models.m.pined: unknown key", "Did you mean 'pinned'?", ":8: models.m.calls: Input should be "
                  "a valid integer", ":3: models.m.pinned: required but missing"]),
    "price file": ("promptlab.providers._prices:load_prices", "PriceFileError",
                   "as_of: 2026-01-01\nmodels:\n  m: {input: '1', outptu: '2'}\n  n: {input: cheap, output: '1'}\n",
                   [":3: models.m.outptu: unknown key", "Did you mean 'output'?", ":4: models.n.input: Input should "
                    "be a valid decimal", ":3: models.m.output: required but missing"]),
}


def _loader(spec: str):
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("kind", list(THREE_PROBLEMS))
def test_one_error_names_every_problem_with_its_line(tmp_path, kind):
    import promptlab.errors

    loader, error, text, fragments = THREE_PROBLEMS[kind]
    path = tmp_path / "file.yaml"
    path.write_text(text)
    with pytest.raises(getattr(promptlab.errors, error)) as info:
        _loader(loader)(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid ") and "(3 problems)" in message, message
    for fragment in fragments:
        fragment = f"{path}{fragment}" if fragment.startswith(":") else fragment
        assert fragment in message, f"{fragment!r} missing from: {message}"


def test_a_suite_with_many_bad_cases_lists_twenty_then_how_many_more(tmp_path):
    import promptlab as pl
    from promptlab.authoring._suite import load_suite

    cases = "".join(f"  - {{id: c{n}, input: hi, expected: x, difficulty: extreme}}\n" for n in range(1000))
    path = tmp_path / "big.yaml"
    path.write_text("name: big\ncases:\n" + cases)
    with pytest.raises(pl.SuiteFileError) as info:
        load_suite(path)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{path}: invalid suite file (1000 problems):"
    assert lines[1].startswith(f"  - {path}:3: case 'c0': difficulty:")
    assert lines[20].startswith(f"  - {path}:22: case 'c19'")
    assert lines[21] == "  - ... and 980 more (fix these and load again to see them)."


def test_a_union_mismatch_is_one_problem_and_choices_get_a_did_you_mean():
    from pydantic import BaseModel, ConfigDict

    from promptlab._yaml import check
    from promptlab.production._alertrules import RuleSpec

    class Doc(BaseModel):
        model_config = ConfigDict(extra="forbid")
        value: str | dict[str, int]

    _, problems = check(Doc, {"value": [1, 2]})
    assert len(problems) == 1 and problems[0].field == "value" and "(got [1, 2])" in problems[0].text
    _, problems = check(RuleSpec, {"name": "a", "metric": "success_rate", "min": 1, "severity": "critcal"})
    assert "Did you mean 'critical'?" in problems[0].text
