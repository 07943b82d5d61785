"""The provider extension point: one abstract method, `async complete(Request) -> Completion`.

`Request` is provider-neutral (system text, alternating user/assistant turns, parameters); each provider maps
it to its wire format. `Completion` carries what every row of the results needs: the text, token counts
(None when the provider did not report them), latency, the model that actually answered, the finish reason,
and — when the request declared an `OutputConstraint` — the parsed answer, whether it kept the format and how
the format was enforced ("native": the provider constrained generation; "validated": checked after the fact
and re-asked up to ``retries`` times).
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..errors import ArgumentError


@dataclass(frozen=True)
class Message:
    """One chat turn."""

    role: str  # "user" or "assistant"
    content: str


_KINDS = ("labels", "json_schema", "regex")


@dataclass(frozen=True)
class OutputConstraint:
    """What shape an answer must have: exactly one of a label set, a JSON Schema, or a regex.

    Build one with `OutputConstraint.from_labels`, `.from_schema` or `.from_regex` (or let a prompt file's
    ``output:`` block build it). ``schema_json`` is the schema's compact JSON text, so the constraint is hashable
    and compares by content; `schema` gives it back as a dict. Keys keep their order: the order of ``properties``
    is the order a constrained model writes the fields in (a "reasoning" field before the "answer" is a choice).
    """

    kind: Literal["labels", "json_schema", "regex"]
    labels: tuple[str, ...] = ()
    schema_json: str | None = None
    pattern: str | None = None
    retries: int = 2  # re-asks when the provider cannot enforce the kind natively

    def __post_init__(self):
        if isinstance(self.labels, str):
            raise ArgumentError(f"Output labels must be a list of labels, not one string: {self.labels!r}.")
        object.__setattr__(self, "labels", tuple(self.labels))  # a list would make the constraint unhashable
        _validate_constraint(self)

    @classmethod
    def from_labels(cls, labels, *, retries: int = 2) -> OutputConstraint:
        """A closed label set: the answer must be exactly one of `labels`."""
        return cls(kind="labels", labels=tuple(labels), retries=retries)

    @classmethod
    def from_schema(cls, schema: dict, *, retries: int = 2) -> OutputConstraint:
        """A JSON Schema (a dict) the answer's JSON must validate against."""
        return cls(kind="json_schema", schema_json=schema_json_text(schema), retries=retries)

    @classmethod
    def from_regex(cls, pattern: str, *, retries: int = 2) -> OutputConstraint:
        """A regular expression the (stripped) answer must match (`re.search`: anchor it with ^...$)."""
        return cls(kind="regex", pattern=pattern, retries=retries)

    @property
    def schema(self) -> dict | None:
        """The JSON Schema as a dict (None unless ``kind == "json_schema"``)."""
        return None if self.schema_json is None else json.loads(self.schema_json)

    def check(self, text: str) -> tuple[Any, str | None]:
        """Read `text` against the constraint: ``(parsed value, None)`` when it conforms, else
        ``(None, what is wrong)``. For labels the value is the declared label's exact spelling; for a
        JSON Schema the decoded JSON; for a regex the whole match, or group 1 when the pattern has groups."""
        if self.kind == "labels":
            return _check_label(self.labels, text)
        if self.kind == "json_schema":
            return _check_json(self.schema, text)
        return _check_regex(self.pattern, text)

    def identity(self) -> dict[str, Any]:
        """The constraint as plain data (for fingerprints and content hashes): only the fields of its kind."""
        body: dict[str, Any] = {"kind": self.kind, "retries": self.retries}
        if self.kind == "labels":
            body["labels"] = list(self.labels)
        elif self.kind == "json_schema":
            body["schema"] = self.schema_json
        else:
            body["pattern"] = self.pattern
        return body


def schema_json_text(schema: Any) -> str:
    """A schema's compact JSON text: no spaces, unicode kept, keys in their order."""
    try:
        return json.dumps(schema, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"Output JSON Schema cannot be written as JSON: {exc}.") from None


def _validate_constraint(c: OutputConstraint) -> None:
    """Refuse a constraint that cannot be enforced, naming the field and how to fix it."""
    if c.kind not in _KINDS:
        raise ArgumentError(f"OutputConstraint kind {c.kind!r} is not one of {list(_KINDS)}.")
    if isinstance(c.retries, bool) or not isinstance(c.retries, int) or not 0 <= c.retries <= 10:
        raise ArgumentError(f"OutputConstraint retries must be a whole number from 0 to 10, got {c.retries!r}.")
    given = {"labels": bool(c.labels), "json_schema": c.schema_json is not None, "regex": c.pattern is not None}
    extra = [name for name, present in given.items() if present and name != c.kind]
    if extra or not given[c.kind]:
        raise ArgumentError(f"An OutputConstraint of kind {c.kind!r} needs its {c.kind} and nothing else "
                            f"(also given: {extra}). Use OutputConstraint.from_labels/from_schema/from_regex.")
    if c.kind == "labels":
        bad = [label for label in c.labels if not isinstance(label, str) or not label.strip()]
        if bad:
            raise ArgumentError(f"Output labels must be non-empty strings; got {bad!r} in {list(c.labels)!r}.")
        dupes = sorted({label for label in c.labels if c.labels.count(label) > 1})
        if dupes:
            raise ArgumentError(f"Output labels must be distinct; {dupes!r} appear more than once.")
    elif c.kind == "json_schema":
        _checked_schema(c.schema_json)
    else:
        try:
            re.compile(c.pattern)
        except (re.error, TypeError) as exc:
            raise ArgumentError(f"Output regex {c.pattern!r} does not compile: {exc}. Fix the pattern.") from None


def _checked_schema(schema_json: str) -> dict:
    import jsonschema  # imported on use: `import promptlab` stays fast

    try:
        schema = json.loads(schema_json)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"Output JSON Schema is not JSON text: {exc}.") from None
    if not isinstance(schema, dict):
        raise ArgumentError(f"Output JSON Schema must be an object (a mapping), got {schema!r}.")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(top)"
        raise ArgumentError(f"Output JSON Schema is invalid at {where}: {exc.message}. Fix the schema.") from None
    return schema


# What may wrap a bare label: quotes, backticks, Markdown bold, a closing full stop or exclamation mark (the answer
# ``"Positive"!`` is the label). Not a question mark: "positive?" is not an answer.
_LABEL_WRAP = " \t\r\n\"'`*.!"


def _check_label(labels: tuple[str, ...], text: str) -> tuple[Any, str | None]:
    """The declared label the answer is: exactly, else ignoring case and wrapping quotes, or read from a
    ``{"label": ...}`` object (the shape native enforcement asks for). Free text around a label is not one."""
    candidate = text.strip()
    if candidate.startswith("{"):
        try:
            value = json.loads(candidate)
        except ValueError:
            value = None
        if isinstance(value, dict) and isinstance(value.get("label"), str):
            candidate = value["label"]
    if candidate in labels:
        return candidate, None
    bare = candidate.strip(_LABEL_WRAP)
    if bare in labels:
        return bare, None
    folded = [label for label in labels if label.casefold() == bare.casefold()]
    if len(folded) == 1:
        return folded[0], None
    shown = text if len(text) <= 80 else text[:77] + "..."
    return None, f"answer {shown!r} is not one of the labels {list(labels)!r}"


_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n(.*?)\n?```$", re.DOTALL)


def json_answer_text(text: str) -> str:
    """The JSON text in an answer: stripped, without a Markdown code fence around it."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    return fenced.group(1).strip() if fenced else stripped


def _check_json(schema: dict, text: str) -> tuple[Any, str | None]:
    import jsonschema

    try:
        value = json.loads(json_answer_text(text))
    except ValueError as exc:
        return None, f"answer is not JSON ({exc})"
    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(schema).iter_errors(value))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "(top)"
        return None, f"JSON does not match the schema at {where}: {error.message}"
    return value, None


def _check_regex(pattern: str, text: str) -> tuple[Any, str | None]:
    match = re.search(pattern, text.strip())
    if match is None:
        shown = text if len(text) <= 80 else text[:77] + "..."
        return None, f"answer {shown!r} does not match the regex {pattern!r}"
    return (match.group(1) if match.re.groups else match.group(0)), None


# `json.dumps(..., sort_keys=True, ensure_ascii=False, separators=(",", ":"))`, built once: fingerprints are taken on
# every call's path.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))

# Sampling parameters a Request may carry beyond temperature; each joins the fingerprint only when set.
SAMPLING_PARAMS = ("top_p", "seed", "frequency_penalty", "presence_penalty")


@dataclass(frozen=True)
class Request:
    """A provider-neutral model request, built by `Prompt.render`."""

    model: str
    system: str
    messages: tuple[Message, ...]
    temperature: float = 0.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    output: OutputConstraint | None = None
    top_p: float | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None

    def fingerprint(self) -> str:
        """A stable SHA-256 of everything that defines the call (used as the cache key's core).

        The output constraint and the sampling parameters join only when set, so a request without them has
        the key it had before they existed (caches filled earlier stay valid).
        """
        # Built by hand rather than with dataclasses.asdict (5x faster); the JSON, and so the key, is the same.
        fields = {"max_tokens": self.max_tokens, "messages": [{"content": m.content, "role": m.role}
                                                               for m in self.messages],
                  "model": self.model, "stop": list(self.stop), "system": self.system,
                  "temperature": self.temperature}
        if self.output is not None:
            fields["output"] = self.output.identity()
        fields.update(self.sampling_params())
        canonical = _CANONICAL_JSON.encode(fields)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def sampling_params(self) -> dict[str, float | int]:
        """The sampling parameters that are set (top_p, seed, penalties), by name."""
        return {name: getattr(self, name) for name in SAMPLING_PARAMS if getattr(self, name) is not None}

    def prefix_key(self) -> tuple[str, tuple[Message, ...]]:
        """What consecutive calls must share for a prefix cache to help: system and few-shot turns."""
        return self.system, self.messages[:-1]


@dataclass(frozen=True)
class Completion:
    """A model's answer and the facts about the call."""

    text: str
    input_tokens: int | None
    output_tokens: int | None
    latency_s: float
    model: str  # the model id that actually answered, as the provider reports it
    finish_reason: str | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    parsed: Any = None  # the label (str) or the JSON value, when the request had `output`
    format_ok: bool | None = None  # None when the request declared no output
    format_error: str | None = None
    enforced: str | None = None  # "native", "validated", or None (no constraint)
    format_attempts: int = 1  # answers asked for, re-asks included
    served_by: str | None = None  # which server (normalised base URL) answered; None for single-endpoint providers


class Provider(ABC):
    """A source of completions. Subclasses implement `complete`; the rest are hooks with defaults.

    Attributes:
        name: the provider prefix of model ids (``local``, ``fake``, ``openai``, ``anthropic``).
        max_concurrency: how many calls the runner keeps in flight against this provider.
    """

    name: str = "provider"
    max_concurrency: int = 8

    @abstractmethod
    async def complete(self, request: Request) -> Completion:
        """Answer one request, or raise `ProviderError` with an ``error_type``.

        A request may carry an `OutputConstraint` (``request.output``): constrain generation natively and return
        ``_structured.conform(completion, request.output, enforced="native")``, or — when the provider cannot —
        return ``await _structured.validate_and_reask(ask, request)``, which checks and re-asks. A provider that
        ignores ``output`` returns no format verdict (``format_ok`` None)."""

    def model_id(self, model: str) -> str:
        """The full ``provider:model`` id for a bare model name."""
        return f"{self.name}:{model}"

    def cache_identity(self) -> dict[str, Any]:
        """What, besides the request, decides this provider's answers: the response cache keys on it, so
        two providers with different identities never share a cached answer.

        The default is the provider's name and class. Subclasses add their endpoint and every option that
        changes answers (an API version, a header that selects a deployment) — and never a secret: the
        identity is hashed into cache keys and the endpoint is stored beside each entry.
        """
        cls = type(self)
        return {"provider": self.name, "class": f"{cls.__module__}.{cls.__qualname__}"}

    async def aclose(self) -> None:  # noqa: B027 - a hook with a default, not an abstract method
        """Release connections; the default holds none."""


_DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters that carry credentials (Azure-style ``?api-key=``, signed URLs): left out of identities.
_SECRET_PARAM = re.compile(r"key|token|secret|sig|password|passwd|auth|credential", re.IGNORECASE)


def normalise_endpoint(url: str) -> str:
    """One spelling per endpoint, with no credentials in it: scheme and host lower-cased, the default port,
    a trailing slash, the fragment, ``user:password@`` and secret-looking query parameters dropped; the
    remaining query parameters (``api-version=...`` changes answers) sorted.

    ``"HTTP://User:pw@LocalHost:80/v1/"`` → ``"http://localhost/v1"``.
    """
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None  # a malformed port is left to the HTTP client to refuse; the identity just omits it
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _SECRET_PARAM.search(k))
    endpoint = f"{scheme}://{host}{parts.path.rstrip('/')}"
    return endpoint + (f"?{urlencode(query)}" if query else "")
