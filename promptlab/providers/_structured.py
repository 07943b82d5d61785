"""Structured output, shared by every provider: the one validate-and-re-ask loop, and the pieces native
enforcement needs (the object schema a JSON-constraining API is sent, strict-mode eligibility, unwrapping).

A request's `OutputConstraint` is met one of two ways, recorded in ``Completion.enforced``:

- ``"native"``: the provider constrained generation itself (OpenAI ``response_format``, Anthropic's forced tool,
  a llama.cpp grammar). The answer is still checked (`OutputConstraint.check`) — a truncated answer or a schema
  keyword the engine ignores shows as ``format_ok=False`` — but it is not re-asked.
- ``"validated"``: the provider cannot constrain this kind (a regex anywhere, `FakeProvider`, a schema the
  grammar converter refuses). `validate_and_reask` checks each answer and, while it fails, asks again up to
  ``retries`` times, showing the model its answer and what was wrong. Tokens and latency add up over the attempts;
  ``format_attempts`` counts them.

Sampling parameters a provider does not have are never silently dropped: `note_ignored` lists them in
``Completion.raw["ignored_params"]`` and warns once per provider and parameter.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ._base import Completion, Message, OutputConstraint, Request, json_answer_text

LABEL_KEY = "label"  # a label set travels as {"label": <one of the labels>}
VALUE_KEY = "value"  # a schema whose root is not an object travels as {"value": <the answer>}

Ask = Callable[[Request, int], Awaitable[Completion]]


def wire_schema(constraint: OutputConstraint) -> tuple[dict, str | None]:
    """The object schema to send an API that constrains JSON (APIs want an object at the root) and the key the
    answer is wrapped in (None when the user's schema is sent as it is)."""
    if constraint.kind == "labels":
        schema = {"type": "object", "properties": {LABEL_KEY: {"type": "string", "enum": list(constraint.labels)}},
                  "required": [LABEL_KEY], "additionalProperties": False}
        return schema, LABEL_KEY
    schema = constraint.schema
    if schema.get("type") == "object":
        return schema, None
    # `$defs` stay at the root, where the schema's "#/$defs/..." references point
    hoisted = {key: schema[key] for key in ("$defs", "definitions") if key in schema}
    inner = {key: value for key, value in schema.items() if key not in hoisted and key != "$schema"}
    return {"type": "object", "properties": {VALUE_KEY: inner}, "required": [VALUE_KEY],
            "additionalProperties": False, **hoisted}, VALUE_KEY


_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONE = ("items", "not", "additionalProperties", "contains", "if", "then", "else")


def strict_eligible(schema: Any) -> bool:
    """Whether OpenAI's strict mode accepts the schema's objects: each lists every property in ``required`` and
    sets ``additionalProperties: false`` (walked through properties, items, $defs and the combinators)."""
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False or set(schema.get("required", [])) != set(properties):
            return False
    children: list[Any] = []
    for key in _SCHEMA_MAPS:
        children += list((schema.get(key) or {}).values()) if isinstance(schema.get(key), dict) else []
    for key in _SCHEMA_LISTS:
        children += schema.get(key) or [] if isinstance(schema.get(key), list) else []
    children += [schema[key] for key in _SCHEMA_ONE if isinstance(schema.get(key), dict)]
    return all(strict_eligible(child) for child in children)


def unwrap(text: str, key: str | None) -> str:
    """The answer inside a wrapped object (``{"label": "x"}`` → ``x``; ``{"value": [1]}`` → ``[1]``); text that is
    not such an object is left as it is, for the check to refuse."""
    if key is None:
        return text
    try:
        value = json.loads(json_answer_text(text))
    except ValueError:
        return text
    if not isinstance(value, dict) or key not in value:
        return text
    inner = value[key]
    return inner if key == LABEL_KEY and isinstance(inner, str) else json.dumps(inner, ensure_ascii=False)


def conform(completion: Completion, constraint: OutputConstraint, *, enforced: str, attempts: int = 1,
            text: str | None = None, refusal: str | None = None) -> Completion:
    """The completion with its format verdict: parsed value, ``format_ok``, the error, how it was enforced.

    A conforming answer's ``text`` becomes its clean form (the label's declared spelling; the JSON without a code
    fence around it); a failing one keeps what the model said.
    """
    answer = completion.text if text is None else text
    if refusal:
        parsed, error = None, f"the model refused: {refusal}"
    else:
        parsed, error = constraint.check(answer)
    if error is not None and completion.finish_reason in ("length", "max_tokens"):
        error += " (the answer was cut at max_tokens: raise max_tokens)"
    clean = answer if error is not None else _clean_text(constraint, answer, parsed)
    return dataclasses.replace(completion, text=clean, parsed=parsed, format_ok=error is None, format_error=error,
                               enforced=enforced, format_attempts=attempts)


def _clean_text(constraint: OutputConstraint, answer: str, parsed: Any) -> str:
    if constraint.kind == "labels":
        return parsed
    if constraint.kind == "json_schema":
        return json_answer_text(answer)
    return answer.strip()


async def validate_and_reask(ask: Ask, request: Request) -> Completion:
    """Ask, check the answer against ``request.output``, and re-ask while it fails, up to ``retries`` times.

    Args:
        ask: ``(request, attempt) -> Completion``, the provider's unconstrained call (attempt 0 is the first).
        request: the request; its ``output`` must be set.

    Returns:
        The last answer with ``enforced="validated"``, its verdict, ``format_attempts``, and the tokens and
        latency of every attempt added up (tokens NA when any attempt's count is unknown).
    """
    constraint = request.output
    answers: list[Completion] = []
    current = request
    for attempt in range(constraint.retries + 1):
        completion = await ask(current, attempt)
        answers.append(completion)
        _, error = constraint.check(completion.text)
        if error is None:
            break
        current = reask_request(request, completion.text, error)
    merged = dataclasses.replace(
        answers[-1], input_tokens=_total(a.input_tokens for a in answers),
        output_tokens=_total(a.output_tokens for a in answers), latency_s=sum(a.latency_s for a in answers),
        raw={**answers[-1].raw, "attempt_texts": [a.text for a in answers]})
    return conform(merged, constraint, enforced="validated", attempts=len(answers))


def _total(counts: Iterable[int | None]) -> int | None:
    counts = list(counts)
    return None if any(count is None for count in counts) else sum(counts)


def reask_request(request: Request, answer: str, error: str) -> Request:
    """The request again, followed by the failed answer and a turn that says what was wrong and what is wanted."""
    correction = Message("user", f"That answer is not in the required format: {error}. {_wanted(request.output)}")
    return dataclasses.replace(request, messages=(*request.messages, Message("assistant", answer), correction))


def _wanted(constraint: OutputConstraint) -> str:
    if constraint.kind == "labels":
        return f"Answer with exactly one of these labels and nothing else: {', '.join(constraint.labels)}."
    if constraint.kind == "json_schema":
        return f"Answer with only JSON, no other text, valid against this JSON Schema: {constraint.schema_json}"
    return f"Answer with only text that matches the regular expression {constraint.pattern}."


def ignored_params(request: Request, supported: Iterable[str]) -> list[str]:
    """The sampling parameters the request sets that a provider does not have."""
    return sorted(set(request.sampling_params()) - set(supported))


_WARNED: set[tuple[str, str]] = set()


def note_ignored(completion: Completion, provider: str, ignored: list[str]) -> Completion:
    """Record ``ignored`` in ``raw["ignored_params"]`` and warn once per provider and parameter."""
    if not ignored:
        return completion
    fresh = [name for name in ignored if (provider, name) not in _WARNED]
    if fresh:
        _WARNED.update((provider, name) for name in fresh)
        warnings.warn(f"the {provider} provider has no {', '.join(fresh)}: the prompt's value is not sent (recorded in "
                      "Completion.raw['ignored_params']). Remove it from the prompt, or use a provider that has it.",
                      UserWarning, stacklevel=3)
    return dataclasses.replace(completion, raw={**completion.raw, "ignored_params": ignored})
