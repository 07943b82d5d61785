"""Structured output: the shared types (OutputConstraint, the new Request/Completion fields), the prompt file's
``output:`` block, validate-and-re-ask, FakeProvider and native enforcement on the wire."""

from __future__ import annotations

import hashlib
import json

import jsonschema
import pytest

from promptlab.errors import ArgumentError, ProviderError
from promptlab.providers import FakeProvider
from promptlab.providers._base import Completion, Message, OutputConstraint, Request
from promptlab.providers._structured import note_ignored, reask_request, strict_eligible, unwrap, wire_schema

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
    ('{"label": "neutral"}', "neutral"), ("`Mixed`", "Mixed"), ("**Negative!**", "negative"),
])
def test_label_check_reads_the_declared_spelling(text, parsed):
    c = OutputConstraint.from_labels(["positive", "negative", "neutral", "Mixed"])
    assert c.check(text) == (parsed, None)


@pytest.mark.parametrize("text", ["I think positive", "", "Output:", "banana", "positive, negative", "positive?"])
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


# ---- the pieces native enforcement shares ------------------------------------------------------------------------

LABELS = OutputConstraint.from_labels(["positive", "negative", "neutral"])


def test_a_label_set_travels_as_a_closed_enum_object():
    schema, key = wire_schema(LABELS)
    assert key == "label" and schema == {
        "type": "object", "properties": {"label": {"type": "string", "enum": ["positive", "negative", "neutral"]}},
        "required": ["label"], "additionalProperties": False}
    jsonschema.validate({"label": "neutral"}, schema)  # the reference: what the API will produce validates
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"label": "banana"}, schema)
    assert unwrap('{"label": "neutral"}', key) == "neutral" and unwrap("neutral", key) == "neutral"


def test_an_object_schema_is_sent_as_it_is_and_any_other_root_is_wrapped_with_its_defs_at_the_root():
    obj = OutputConstraint.from_schema(_SCHEMA)
    assert wire_schema(obj) == (_SCHEMA, None)
    listing = {"$defs": {"item": {"type": "integer"}}, "type": "array", "items": {"$ref": "#/$defs/item"}}
    schema, key = wire_schema(OutputConstraint.from_schema(listing))
    assert key == "value" and schema["$defs"] == listing["$defs"] and "$defs" not in schema["properties"]["value"]
    jsonschema.validate({"value": [1, 2]}, schema)  # the $ref still resolves from the wrapper's root
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"value": ["x"]}, schema)
    assert unwrap('{"value": [1, 2]}', key) == "[1, 2]"


@pytest.mark.parametrize("schema, eligible", [
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False},
     True),
    (_SCHEMA, False),  # score is optional and the object is open
    ({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {}}, "required": ["b"]}},
      "required": ["a"], "additionalProperties": False}, False),  # the nested object is open
    ({"type": "object", "properties": {"a": {"type": "array", "items": {"$ref": "#/$defs/x"}}}, "required": ["a"],
      "additionalProperties": False, "$defs": {"x": {"type": "object", "properties": {"y": {}}}}}, False),
    ({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}, "required": ["a"],
      "additionalProperties": False}, True),
])
def test_strict_mode_needs_every_object_closed_and_fully_required(schema, eligible):
    assert strict_eligible(schema) is eligible


def test_a_pydantic_model_schema_is_not_strict_eligible_until_closed():
    from pydantic import BaseModel, ConfigDict

    class Open(BaseModel):
        a: int

    class Closed(BaseModel):
        model_config = ConfigDict(extra="forbid")
        a: int
        b: str | None

    assert not strict_eligible(Open.model_json_schema()) and strict_eligible(Closed.model_json_schema())


def _run(provider, request):
    import asyncio

    return asyncio.run(provider.complete(request))


def _request(output, text="q", **fields):
    return Request(model="m", system="Classify.", messages=(Message("user", text),), output=output, **fields)


def test_fake_provider_re_asks_with_the_error_until_the_answer_conforms():
    fake = FakeProvider({"q": ["I think it's positive", "Positive."]})
    done = _run(fake, _request(LABELS))
    assert (done.text, done.parsed, done.format_ok, done.format_error) == ("positive", "positive", True, None)
    assert (done.enforced, done.format_attempts) == ("validated", 2)
    first, second = fake.calls
    assert second.messages[:-2] == first.messages  # the re-ask shows the answer and what was wrong
    assert second.messages[-2] == Message("assistant", "I think it's positive")
    assert "is not one of the labels ['positive', 'negative', 'neutral']" in second.messages[-1].content
    assert "positive, negative, neutral" in second.messages[-1].content
    # tokens of both attempts add up (FakeProvider counts words)
    assert done.output_tokens == len("I think it's positive".split()) + 1
    assert done.input_tokens == sum(len(r.system.split()) + sum(len(m.content.split()) for m in r.messages)
                                    for r in fake.calls)
    assert done.raw["attempt_texts"] == ["I think it's positive", "Positive."]


def test_after_the_last_retry_the_failure_is_recorded_not_raised():
    fake = FakeProvider({"q": "banana"})
    done = _run(fake, _request(OutputConstraint.from_labels(["a", "b"], retries=1)))
    assert (done.text, done.parsed, done.format_ok, done.format_attempts) == ("banana", None, False, 2)
    assert done.format_error == "answer 'banana' is not one of the labels ['a', 'b']"
    assert len(fake.calls) == 2
    none = FakeProvider({"q": "banana"})
    assert _run(none, _request(OutputConstraint.from_labels(["a", "b"], retries=0))).format_attempts == 1


def test_a_failed_call_during_a_re_ask_is_a_provider_error():
    fake = FakeProvider({"q": ["banana", ProviderError("down", error_type="server")]})
    with pytest.raises(ProviderError, match="down"):
        _run(fake, _request(LABELS))


def test_json_and_regex_answers_through_the_fake_provider():
    fenced = _run(FakeProvider('```json\n{"sentiment": "pos"}\n```'), _request(OutputConstraint.from_schema(_SCHEMA)))
    assert (fenced.text, fenced.parsed, fenced.format_ok) == ('{"sentiment": "pos"}', {"sentiment": "pos"}, True)
    regex = _run(FakeProvider("Order 12345 shipped"), _request(OutputConstraint.from_regex(r"\b(\d{5})\b")))
    assert (regex.text, regex.parsed, regex.format_ok, regex.enforced) == ("Order 12345 shipped", "12345", True,
                                                                           "validated")


def test_a_scripted_completion_with_its_own_verdict_is_returned_as_it_is():
    row = Completion(text="x", input_tokens=1, output_tokens=1, latency_s=0.0, model="fake:m", parsed={"a": 1},
                     format_ok=False, format_error="scripted", enforced="native")
    assert _run(FakeProvider({"q": row}), _request(LABELS)) is row
    plain = Completion(text="negative", input_tokens=1, output_tokens=1, latency_s=0.0, model="fake:m")
    checked = _run(FakeProvider({"q": plain}), _request(LABELS))
    assert (checked.parsed, checked.format_ok, checked.enforced) == ("negative", True, "validated")


def test_without_output_a_fake_answer_has_no_verdict():
    done = _run(FakeProvider("whatever"), _request(None))
    assert (done.parsed, done.format_ok, done.enforced, done.format_attempts) == (None, None, None, 1)


def test_a_cached_completion_keeps_its_verdict(tmp_path):
    from promptlab.evaluation._cache import ResponseCache

    done = _run(FakeProvider({"q": ["no", '{"sentiment": "neg"}']}), _request(OutputConstraint.from_schema(_SCHEMA)))
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put("k", "fake", done)
    again = cache.get("k")
    assert (again.parsed, again.format_ok, again.enforced, again.format_attempts) == ({"sentiment": "neg"}, True,
                                                                                      "validated", 2)


def test_ignored_params_are_recorded_and_warned_about_once():
    done = Completion(text="x", input_tokens=1, output_tokens=1, latency_s=0.0, model="p:m")
    with pytest.warns(UserWarning, match="the t15 provider has no seed, top_p"):
        noted = note_ignored(done, "t15", ["seed", "top_p"])
    assert noted.raw["ignored_params"] == ["seed", "top_p"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert note_ignored(done, "t15", ["seed"]).raw["ignored_params"] == ["seed"]  # warned already: no repeat


def test_reask_request_keeps_everything_but_the_turns():
    request = _request(LABELS, top_p=0.5, seed=3)
    again = reask_request(request, "bad", "why")
    assert (again.top_p, again.seed, again.output, again.system) == (0.5, 3, LABELS, "Classify.")
    assert again.messages[-1].content.startswith("That answer is not in the required format: why.")
