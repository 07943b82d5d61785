"""The one strict YAML reader (promptlab._yaml): alias bombs, repeated keys, size cap, binary files."""

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
    ("promptlab.providers._pinning:load_lockfile", "LockfileError"),
    ("promptlab.optimize._routing:load_routing_table", "RoutingError"),
    ("promptlab.evaluation._cost:PriceTable.from_yaml", "PriceFileError"),
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
