"""Structured output: the shared types (OutputConstraint, the new Request/Completion fields), the prompt file's
``output:`` block, validate-and-re-ask, FakeProvider and native enforcement on the wire."""

from __future__ import annotations

import hashlib
import json

import jsonschema
import pytest

from promptlab.errors import ArgumentError
from promptlab.providers._base import Completion, Message, OutputConstraint, Request

# ---- the shared types -----------------------------------------------------------------------------------------

_OLD_REQUEST = Request(model="local:gemma-3-270m", system="Classify. é",
                       messages=(Message("user", "hi"), Message("assistant", "x"), Message("user", "Review: great")),
                       temperature=0.7, max_tokens=64, stop=("\n\n",))


def test_fingerprint_of_a_request_without_the_new_fields_is_what_it_was():
    # Digests computed with main at 44dc3c9 (before the new fields existed): every cache key stays valid.
    assert _OLD_REQUEST.fingerprint() == "780935b6f44148815892f8fe6bf77af59f3d15a2a4ec67f38c32695ba869e668"
    plain = Request(model="fake:m", system="", messages=(Message("user", "q"),))
    assert plain.fingerprint() == "e952dc8bf4d843672c6b56c5f7ea65b872aec2ba52b543aec3b7eab6653bfb20"
    # ... and it is the old formula, byte for byte
    old = {"max_tokens": 64, "messages": [{"content": "hi", "role": "user"}, {"content": "x", "role": "assistant"},
                                          {"content": "Review: great", "role": "user"}],
           "model": "local:gemma-3-270m", "stop": ["\n\n"], "system": "Classify. é", "temperature": 0.7}
    text = json.dumps(old, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert _OLD_REQUEST.fingerprint() == hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize("change", [
    {"output": OutputConstraint.from_labels(["a", "b"])}, {"top_p": 0.9}, {"seed": 7}, {"seed": 0},
    {"frequency_penalty": 0.0}, {"presence_penalty": 0.5},
])
def test_each_new_field_changes_the_fingerprint_when_set(change):
    import dataclasses
    assert dataclasses.replace(_OLD_REQUEST, **change).fingerprint() != _OLD_REQUEST.fingerprint()


def test_constraints_that_differ_give_different_fingerprints():
    import dataclasses
    keys = {dataclasses.replace(_OLD_REQUEST, output=c).fingerprint() for c in [
        OutputConstraint.from_labels(["a", "b"]), OutputConstraint.from_labels(["b", "a"]),
        OutputConstraint.from_labels(["a", "b"], retries=0), OutputConstraint.from_regex("^a$"),
        OutputConstraint.from_schema({"type": "string"})]}
    assert len(keys) == 5


def test_completion_defaults_say_no_constraint():
    c = Completion(text="x", input_tokens=1, output_tokens=1, latency_s=0.0, model="fake:m")
    assert (c.parsed, c.format_ok, c.format_error, c.enforced, c.format_attempts) == (None, None, None, None, 1)


def test_constraint_is_hashable_and_compares_by_content_keeping_the_order_of_properties():
    a = OutputConstraint.from_schema({"type": "object", "properties": {"why": {}, "answer": {}}})
    b = OutputConstraint.from_schema({"type": "object", "properties": {"why": {}, "answer": {}}})
    c = OutputConstraint.from_schema({"type": "object", "properties": {"answer": {}, "why": {}}})
    assert a == b and hash(a) == hash(b) and list(a.schema["properties"]) == ["why", "answer"]
    assert a != c  # a constrained model writes the fields in this order: a different order is a different prompt
    assert OutputConstraint(kind="labels", labels=["x", "y"]).labels == ("x", "y")


@pytest.mark.parametrize("text, parsed", [
    ("positive", "positive"), (" Positive.\n", "positive"), ('"negative"', "negative"),
    ('{"label": "neutral"}', "neutral"), ("`Mixed`", "Mixed"),
])
def test_label_check_reads_the_declared_spelling(text, parsed):
    c = OutputConstraint.from_labels(["positive", "negative", "neutral", "Mixed"])
    assert c.check(text) == (parsed, None)


@pytest.mark.parametrize("text", ["I think positive", "", "Output:", "banana", "positive, negative"])
def test_label_check_refuses_free_text(text):
    parsed, error = OutputConstraint.from_labels(["positive", "negative"]).check(text)
    assert parsed is None and "is not one of the labels ['positive', 'negative']" in error


def test_label_check_with_labels_differing_only_in_case_needs_the_exact_spelling():
    c = OutputConstraint.from_labels(["Yes", "yes"])
    assert c.check("yes") == ("yes", None) and c.check("Yes") == ("Yes", None)
    assert c.check("YES")[0] is None


_SCHEMA = {"type": "object", "properties": {"sentiment": {"enum": ["pos", "neg"]}, "score": {"type": "number"}},
           "required": ["sentiment"]}


def test_json_check_decodes_and_validates_like_jsonschema():
    c = OutputConstraint.from_schema(_SCHEMA)
    assert c.check('```json\n{"sentiment": "pos", "score": 0.5}\n```') == ({"sentiment": "pos", "score": 0.5}, None)
    parsed, error = c.check('{"sentiment": "meh"}')
    with pytest.raises(jsonschema.ValidationError) as reference:  # the outside reference: jsonschema.validate
        jsonschema.validate({"sentiment": "meh"}, _SCHEMA)
    assert parsed is None and error == f"JSON does not match the schema at .sentiment: {reference.value.message}"
    assert c.check("not json")[1].startswith("answer is not JSON")
    assert c.check('{"score": 1}')[1] == "JSON does not match the schema at (top): 'sentiment' is a required property"


def test_regex_check_gives_group_one_or_the_whole_match():
    assert OutputConstraint.from_regex(r"^(yes|no)$").check("yes\n") == ("yes", None)
    assert OutputConstraint.from_regex(r"\d+").check("it is 42") == ("42", None)
    refused = OutputConstraint.from_regex(r"^(yes|no)$").check("maybe")
    assert refused == (None, "answer 'maybe' does not match the regex '^(yes|no)$'")


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "labels"}, "needs its labels"),
    ({"kind": "labels", "labels": ("a", "a")}, "['a'] appear more than once"),
    ({"kind": "labels", "labels": ("a", " ")}, "non-empty strings"),
    ({"kind": "labels", "labels": "ab"}, "not one string"),
    ({"kind": "labels", "labels": ("a",), "pattern": "x"}, "also given: ['regex']"),
    ({"kind": "regex", "pattern": "("}, "does not compile"),
    ({"kind": "json_schema", "schema_json": '{"type": "strnig"}'}, "Output JSON Schema is invalid at type"),
    ({"kind": "json_schema", "schema_json": "[1]"}, "must be an object"),
    ({"kind": "yaml"}, "is not one of ['labels', 'json_schema', 'regex']"),
    ({"kind": "regex", "pattern": "x", "retries": -1}, "from 0 to 10"),
])
def test_bad_constraints_are_refused_clearly(kwargs, message):
    with pytest.raises(ArgumentError, match=None) as err:
        OutputConstraint(**kwargs)
    assert message in str(err.value)
