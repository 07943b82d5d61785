from __future__ import annotations

import json
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


# ---- the output declaration and sampling parameters (issue 15) --------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent

# (content_hash, definition_hash) of the bundled prompts, computed with main at 44dc3c9, before `output:` and the
# sampling parameters existed: the registry verifies both, so neither may move for a prompt that sets none of them.
BUNDLED = {
    "prompts/classification/sentiment.yaml": ("eb8d947e55d98b49", "5491dc5aa251eea6"),
    "prompts/classification/sentiment_terse.yaml": ("b77fc29aa5bfd106", "2aaf02639b68bb8c"),
    "prompts/classification/sentiment_v2.yaml": ("5966351068a2573f", "ac35a4a9afdaaf50"),
    "prompts/review/security_review.yaml": ("6753ff443741bede", "4e91ffe42a293115"),
    "prompts/support/ticket_intent.yaml": ("fb85dd9b9c96229f", "2d6ba578a8de2477"),
}


@pytest.mark.parametrize("path, hashes", BUNDLED.items())
def test_existing_prompts_keep_their_content_and_definition_hashes(path, hashes):
    from promptlab.registry._store import definition_hash

    prompt = load_prompt(ROOT / path)
    assert (prompt.content_hash, definition_hash(prompt)) == hashes
    assert prompt.output is None and (prompt.top_p, prompt.seed) == (None, None)
    assert "output" not in yaml.safe_load(prompt.to_yaml()) and "seed" not in prompt.model_dump()


LABELS = BASE + "output:\n  labels: [positive, negative, neutral, mixed]\n  retries: 1\n"


def test_output_labels_and_sampling_params_reach_the_request(tmp_path):
    text = LABELS + "top_p: 0.9\nseed: 7\nfrequency_penalty: 0.5\npresence_penalty: -0.5\n"
    request = load_prompt(write(tmp_path, text)).render("Meh.")
    assert request.output == pl.providers.OutputConstraint.from_labels(
        ["positive", "negative", "neutral", "mixed"], retries=1)
    assert (request.top_p, request.seed, request.frequency_penalty, request.presence_penalty) == (0.9, 7, 0.5, -0.5)


@pytest.mark.parametrize("extra", [
    "output:\n  labels: [positive, negative]\n", "output:\n  labels: [negative, positive]\n",
    "output:\n  labels: [positive, negative]\n  retries: 0\n", "output:\n  regex: '^(positive|negative)$'\n",
    "output:\n  json_schema: {type: string}\n", "top_p: 0.9\n", "seed: 0\n", "frequency_penalty: 0.0\n",
    "presence_penalty: 0.0\n",
])
def test_hash_changes_when_an_output_or_a_sampling_param_is_set(tmp_path, extra):
    hashes = {load_prompt(write(tmp_path, BASE, "a.yaml")).content_hash,
              load_prompt(write(tmp_path, BASE + extra, "b.yaml")).content_hash}
    assert len(hashes) == 2


def test_a_schema_file_is_read_relative_to_the_prompt_and_hashed_by_content(tmp_path, monkeypatch):
    schema = {"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative"]}},
              "required": ["sentiment"], "additionalProperties": False}
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "answer.json").write_text(json.dumps(schema), encoding="utf-8")
    (tmp_path / "schemas" / "copy.yaml").write_text(yaml.safe_dump(schema, sort_keys=False), encoding="utf-8")
    monkeypatch.chdir(ROOT)  # not the prompt's folder: the path must resolve from the file
    from_file = load_prompt(write(tmp_path, BASE + "output:\n  json_schema: schemas/answer.json\n", "a.yaml"))
    from_yaml = load_prompt(write(tmp_path, BASE + "output:\n  json_schema: schemas/copy.yaml\n", "b.yaml"))
    inline = load_prompt(write(tmp_path, BASE + f"output:\n  json_schema: {json.dumps(schema)}\n", "c.yaml"))
    assert from_file.output.json_schema == schema and from_file.render("x").output.schema == schema
    assert from_file.content_hash == from_yaml.content_hash == inline.content_hash  # the schema, not the path
    (tmp_path / "schemas" / "answer.json").write_text(json.dumps({**schema, "required": []}), encoding="utf-8")
    edited = load_prompt(tmp_path / "a.yaml")
    assert edited.content_hash != from_file.content_hash
    again = load_prompt(from_file.save(tmp_path / "elsewhere" / "saved.yaml"))  # the schema travels inline
    assert again == from_file and again.content_hash == from_file.content_hash


def test_a_pydantic_model_path_gives_its_json_schema(tmp_path):
    (tmp_path / "answer_models_t15.py").write_text(
        "from pydantic import BaseModel\n\nclass Answer(BaseModel):\n    reason: str\n    sentiment: str\n",
        encoding="utf-8")
    prompt = load_prompt(write(tmp_path, BASE + "output:\n  json_schema: 'answer_models_t15:Answer'\n"))
    schema = prompt.output.json_schema
    assert list(schema["properties"]) == ["reason", "sentiment"] and schema["required"] == ["reason", "sentiment"]
    assert prompt.render("x").output.check('{"reason": "r", "sentiment": "s"}') == (
        {"reason": "r", "sentiment": "s"}, None)


@pytest.mark.parametrize("block, line, message", [
    ("output:\n  labels: [yes, no]\n", 18, "read as booleans"),
    ("output:\n  label: [a, b]\n", 18, "output.label: unknown key (value ['a', 'b']). Did you mean 'labels'?"),
    ("output:\n  labels: [a, b]\n  regex: x\n", 17, "exactly one of labels, json_schema or regex (found ['labels', "
                                                      "'regex'])"),
    ("output:\n  retries: 2\n", 17, "(found none)"),
    ("output:\n  labels: [a, b, a]\n", 18, "['a'] appear more than once"),
    ("output:\n  regex: '('\n", 18, "does not compile"),
    ("output:\n  json_schema: {type: objet}\n", 18, "Output JSON Schema is invalid at type"),
    ("output:\n  json_schema: schemas/missing.json\n", 18, "missing.json' does not exist"),
    ("output:\n  json_schema: 'no_such_module_t15:Answer'\n", 18, "cannot import module 'no_such_module_t15'"),
    ("output:\n  json_schema: answer.txt\n", 18, "neither a schema file"),
    ("output:\n  labels: [a, b]\n  retries: 11\n", 19, "less than or equal to 10"),
    ("output: [a, b]\n", 17, "Write `output:` and under it"),
    ("top_p: 0\n", 17, "top_p: Input should be greater than 0"),
    ("seed: -1\n", 17, "seed: Input should be greater than or equal to 0"),
    ("presence_penalty: 3\n", 17, "presence_penalty: Input should be less than or equal to 2"),
    ("seeds: 3\n", 17, "Did you mean 'seed'?"),
])
def test_bad_output_blocks_are_refused_with_their_line(tmp_path, block, line, message):
    path = write(tmp_path, BASE + block)
    with pytest.raises(pl.errors.PromptFileError) as info:
        load_prompt(path)
    assert f"{path}:{line}:" in str(info.value) and message in str(info.value)


def test_an_ugly_prompt_file_with_an_output_block_loads(tmp_path):
    text = (LABELS.replace("[positive, negative, neutral, mixed]", "['très bien', \"say \\\"no\\\"\", 'a\\b', 1]")
            .replace("\n", "\r\n"))
    path = tmp_path / "ugly.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    prompt = load_prompt(path)
    assert prompt.output.labels == ("très bien", 'say "no"', "a\\b", "1")
    assert prompt.render("x").output.check("Très bien.") == ("très bien", None)


def test_params_grid_values_go_through_with_changes(tmp_path):
    prompt = load_prompt(write(tmp_path, LABELS))
    changed = prompt.with_changes(top_p=0.5, seed=3)
    assert (changed.render("x").top_p, changed.render("x").seed) == (0.5, 3)
    assert changed.output == prompt.output and changed.content_hash != prompt.content_hash
    with pytest.raises(ValidationError, match="top_p"):
        prompt.with_changes(top_p=2)


def test_in_code_an_output_may_be_a_constraint_a_mapping_or_inline_json_text():
    constraint = pl.providers.OutputConstraint.from_schema({"type": "object", "properties": {"b": {}, "a": {}}},
                                                           retries=1)
    from_constraint = Prompt(name="t", version="1", model="local:gemma-3-270m", output=constraint)
    from_mapping = Prompt(name="t", version="1", model="local:gemma-3-270m",
                          output={"json_schema": {"type": "object", "properties": {"b": {}, "a": {}}}, "retries": 1})
    from_text = Prompt(name="t", version="1", model="local:gemma-3-270m",
                       output={"json_schema": '{"type": "object", "properties": {"b": {}, "a": {}}}', "retries": 1})
    assert from_constraint.render("x").output == from_mapping.render("x").output == from_text.render("x").output \
        == constraint
    assert from_constraint.content_hash == from_mapping.content_hash == from_text.content_hash
    with pytest.raises(ValidationError, match="inline JSON but does not parse"):
        Prompt(name="t", version="1", model="local:gemma-3-270m", output={"json_schema": "{type: object"})


def test_diff_shows_a_declared_output_and_sampling_params_that_change_the_hash():
    free = pl.Prompt(name="p", version="1", model="fake:m")
    constrained = free.with_changes(output={"labels": ["yes", "no"]}, seed=7)
    assert free.content_hash != constrained.content_hash
    changed = pl.diff(free, constrained)
    assert changed.changed == ("params", "output")
    assert "seed: None → 7" in changed.text() and '"labels": ["yes", "no"]' in changed.text()
    assert pl.diff(constrained, constrained).changes == ()
