from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

import promptlab as pl
from promptlab.authoring._prompt import Prompt, load_prompt

FIXTURES = Path(__file__).parent / "fixtures"
BASE = """\
name: sentiment_classifier
version: 1.0.0
model: claude-3-5-sonnet-20241022
temperature: 0.0
max_tokens: 5
system: |
  Classify the sentiment of the text.
  Answer with one word.
template: "Text: {{ input }}"
few_shot_examples:
  - input: I love it
    output: positive
changelog:
  - version: 1.0.0
    date: 2024-01-15
    changes: first version
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name, expected", yaml.safe_load((FIXTURES / "bad_prompts/EXPECTED.yaml").read_text()).items())
def test_bad_prompt_files_give_specific_errors(name, expected):
    with pytest.raises(pl.PromptFileError) as info:
        load_prompt(FIXTURES / "bad_prompts" / name)
    message = str(info.value)
    assert name in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from: {message}"


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(pl.PromptFileError, match="does not exist"):
        load_prompt(tmp_path / "nope.yaml")


def test_loads_the_article_format(tmp_path):
    prompt = load_prompt(write(tmp_path, BASE))
    assert prompt.ref == "sentiment_classifier@1.0.0"
    assert prompt.system == "Classify the sentiment of the text.\nAnswer with one word."
    assert prompt.few_shot_examples[0].output == "positive"
    assert str(prompt.changelog[0].date) == "2024-01-15"


def test_numeric_version_is_kept_as_text(tmp_path):
    prompt = load_prompt(write(tmp_path, BASE.replace("version: 1.0.0\nmodel", "version: 2.1\nmodel")))
    assert prompt.version == "2.1"


def test_hash_ignores_whitespace_and_comments(tmp_path):
    original = load_prompt(write(tmp_path, BASE, "a.yaml"))
    edited = BASE.replace("Answer with one word.", "Answer with one word.   ") \
        .replace("name: sentiment_classifier", "# a comment\nname: sentiment_classifier   ") + "\n\n# trailing\n"
    edited = edited.replace("system: |\n", "\n\nsystem: |\n")
    assert load_prompt(write(tmp_path, edited, "b.yaml")).content_hash == original.content_hash


def test_hash_ignores_changelog_and_metadata(tmp_path):
    original = load_prompt(write(tmp_path, BASE, "a.yaml"))
    other = original.with_changes(metadata={"owner": "x"}, version="1.0.1")
    assert other.content_hash == original.content_hash


@pytest.mark.parametrize("change", [
    {"system": "Classify the sentiment of the text."},
    {"template": "Review: {{ input }}"},
    {"model": "claude-3-5-haiku-20241022"},
    {"temperature": 0.7},
    {"max_tokens": 6},
    {"stop": ["\n"]},
    {"few_shot_examples": [{"input": "I love it", "output": "negative"}]},
    {"few_shot_examples": []},
])
def test_hash_changes_with_every_semantic_field(tmp_path, change):
    original = load_prompt(write(tmp_path, BASE))
    assert original.with_changes(**change).content_hash != original.content_hash


def test_render_builds_system_examples_and_user_turns(tmp_path):
    request = load_prompt(write(tmp_path, BASE)).render("Meh.")
    assert request.system.startswith("Classify")
    assert [(m.role, m.content) for m in request.messages] == [
        ("user", "Text: I love it"), ("assistant", "positive"), ("user", "Text: Meh.")]
    assert request.max_tokens == 5 and request.model == "claude-3-5-sonnet-20241022"


def test_render_lists_all_missing_variables_at_once():
    prompt = Prompt(name="t", version="1", model="local:gemma-3-270m",
                    template="{{ subject }} / {{ body }} / {{ lang }}")
    with pytest.raises(pl.errors.MissingVariablesError) as info:
        prompt.render({"subject": "hi"})
    assert info.value.missing == ["body", "lang"]
    assert "['body', 'lang']" in str(info.value) and "given: ['subject']" in str(info.value)


def test_render_is_sandboxed():
    prompt = Prompt(name="t", version="1", model="local:gemma-3-270m",
                    template="{{ input.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(pl.RenderError, match="failed to render"):
        prompt.render("x")


def test_sandbox_blocks_attribute_escape_via_filters():
    prompt = Prompt(name="t", version="1", model="local:gemma-3-270m",
                    template="{{ (input|attr('__init__')).__globals__ }}")
    with pytest.raises(pl.RenderError):
        prompt.render("x")


def test_prompt_is_immutable(tmp_path):
    prompt = load_prompt(write(tmp_path, BASE))
    with pytest.raises(ValidationError, match="frozen"):
        prompt.system = "changed"


def test_yaml_round_trip_keeps_the_hash(tmp_path):
    prompt = load_prompt(write(tmp_path, BASE))
    again = load_prompt(prompt.save(tmp_path / "copy.yaml"))
    assert again == prompt and again.content_hash == prompt.content_hash


def test_repr_and_html_escape(tmp_path):
    prompt = load_prompt(write(tmp_path, BASE)).with_changes(system="<script>alert(1)</script>")
    assert repr(prompt).startswith("Prompt('sentiment_classifier@1.0.0'")
    html = prompt._repr_html_()
    assert "<script>alert" not in html and "&lt;script&gt;" in html


# ---- bad files refused fast, with the fix (issue 12, items 5 and 6) ----------------------------------------
def test_a_yaml_alias_bomb_is_refused_fast():
    started = time.perf_counter()
    with pytest.raises(pl.PromptFileError, match="aliases expand to more than"):
        load_prompt(FIXTURES / "bad_prompts" / "alias_bomb.yaml")
    assert time.perf_counter() - started < 2.0


def test_a_prompt_file_over_the_size_cap_is_refused(tmp_path, monkeypatch):
    from promptlab import _yaml as yamlfile

    monkeypatch.setattr(yamlfile, "MAX_FILE_BYTES", 200)
    with pytest.raises(pl.PromptFileError, match=r"is \d{3} bytes, over the limit of 200. Split it"):
        load_prompt(write(tmp_path, BASE))


def test_type_errors_carry_the_line_of_the_offending_value(tmp_path):
    text = BASE.replace("max_tokens: 5", "max_tokens: lots")
    with pytest.raises(pl.PromptFileError, match=r"p.yaml:5: max_tokens: Input should be a valid integer"):
        load_prompt(write(tmp_path, text))


def test_templates_past_a_resource_limit_are_refused_when_the_prompt_loads(tmp_path):
    text = BASE.replace('template: "Text: {{ input }}"', "template: \"{{ 'ab' * 10**9 }}{{ input }}\"")
    started = time.perf_counter()
    with pytest.raises(pl.PromptFileError, match=r"p.yaml:9: template: .*'ab' \* 1000000000"):
        load_prompt(write(tmp_path, text))
    assert time.perf_counter() - started < 1.0


def test_a_few_shot_example_that_cannot_render_is_refused_at_load():
    with pytest.raises(pl.PromptFileError, match="few_shot_examples: example 1 does not render"):
        load_prompt(FIXTURES / "bad_prompts" / "example_does_not_render.yaml")


def test_a_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert load_prompt(path).name == "sentiment_classifier"
