"""Prompt files: the article's YAML format, loaded into an immutable, content-hashed `Prompt`.

A prompt file looks like this (every key but ``name``, ``version``, ``model`` and ``system`` is optional)::

    name: sentiment_classifier
    version: 2.1.0
    model: claude-3-5-sonnet-20241022   # pinned, dated id
    temperature: 0.0
    max_tokens: 10
    system: |
      You are a sentiment classifier ...
    template: "Text: {{ input }}"         # the user message; jinja2, sandboxed
    few_shot_examples:
      - input: "I love this product!"
        output: positive
    stop: ["\\n"]
    changelog:
      - version: 2.1.0
        date: 2024-01-15
        changes: Added handling for mixed sentiment
    metadata: {owner: growth-team}

Texts are normalised on load (trailing spaces on each line and blank lines at either end are dropped), so a
whitespace-only edit of the file changes neither the rendered request nor the content hash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import MissingVariablesError, PromptFileError, RenderError
from .providers.base import Message, Request

DEFAULT_TEMPLATE = "{{ input }}"

# One sandboxed environment for every prompt: templates can reach their variables, never Python internals.
_JINJA = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


@lru_cache(maxsize=256)
def _compiled(template: str) -> Any:
    """Compile a template once per process (rendering a suite reuses it for every case)."""
    return _JINJA.from_string(template)


def normalize_text(text: str) -> str:
    """Drop trailing whitespace on every line and blank lines at both ends (whitespace-only edits are no-ops)."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


class FewShotExample(BaseModel):
    """One demonstration: an input (text or template variables) and the answer the model should give."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str | dict[str, Any]
    output: str

    @field_validator("output")
    @classmethod
    def _normalize_output(cls, value: str) -> str:
        return normalize_text(value)


class ChangelogEntry(BaseModel):
    """One line of a prompt's history, newest first in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    date: dt.date | None = None
    author: str | None = None
    changes: str


class Prompt(BaseModel):
    """A versioned prompt: pinned model, parameters, system text, few-shot examples, template, changelog.

    Instances are immutable. `content_hash` covers what changes model behaviour (model, parameters, system,
    examples, template, stop sequences), not the name, version, changelog or metadata.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    model: str = Field(min_length=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=256, gt=0)
    system: str = ""
    template: str = DEFAULT_TEMPLATE
    few_shot_examples: tuple[FewShotExample, ...] = ()
    stop: tuple[str, ...] = ()
    changelog: tuple[ChangelogEntry, ...] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # YAML reads `version: 2.1` as a float; a version is a label, so keep its text.
        return str(value) if isinstance(value, (int, float)) else value

    @field_validator("system", "template")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return normalize_text(value)

    @field_validator("template")
    @classmethod
    def _template_compiles(cls, value: str) -> str:
        try:
            _JINJA.parse(value)
        except TemplateSyntaxError as exc:
            raise ValueError(f"template is not valid jinja2 (line {exc.lineno}: {exc.message})") from None
        return value

    # ---- identity -------------------------------------------------------------------------------------
    @property
    def ref(self) -> str:
        """``name@version``, the prompt's human-readable identity."""
        return f"{self.name}@{self.version}"

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the behaviour-defining fields, canonically serialised."""
        fields = self.model_dump(
            mode="json", include={"model", "temperature", "max_tokens", "system", "template",
                                  "few_shot_examples", "stop"}
        )
        canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @cached_property
    def variables(self) -> frozenset[str]:
        """The template variables the user message needs."""
        return frozenset(meta.find_undeclared_variables(_JINJA.parse(self.template)))

    # ---- rendering ------------------------------------------------------------------------------------
    def render_user(self, case_input: str | dict[str, Any]) -> str:
        """Render the user message for one input; raises `MissingVariablesError` listing every gap."""
        variables = case_input if isinstance(case_input, dict) else {"input": case_input}
        missing = self.variables - set(variables)
        if missing:
            raise MissingVariablesError(self.name, sorted(missing), list(variables))
        try:
            return _compiled(self.template).render(**variables)
        except Exception as exc:  # sandbox violations and template runtime errors alike
            raise RenderError(
                f"prompt {self.name!r} failed to render for input {case_input!r}: {exc}. "
                "Check the template: it may only use the case's variables and plain filters."
            ) from None

    def render(self, case_input: str | dict[str, Any], *, model: str | None = None) -> Request:
        """Build the provider-neutral request: system, few-shot turns, then the rendered user message."""
        messages: list[Message] = []
        for example in self.few_shot_examples:
            messages.append(Message("user", self.render_user(example.input)))
            messages.append(Message("assistant", example.output))
        messages.append(Message("user", self.render_user(case_input)))
        return Request(
            model=model or self.model,
            system=self.system,
            messages=tuple(messages),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stop=self.stop,
        )

    def with_changes(self, **changes: Any) -> Prompt:
        """A new `Prompt` with some fields replaced and validated (the original stays as it was)."""
        return Prompt.model_validate({**self.model_dump(), **changes})

    def to_yaml(self) -> str:
        """The prompt as YAML text in the file format (loads back to an equal prompt)."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        data = {"name": self.name, "version": self.version, "model": self.model, **data}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

    def save(self, path: str | Path) -> Path:
        """Write the prompt as a YAML file and return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path

    def __repr__(self) -> str:
        return (f"Prompt({self.ref!r}, model={self.model!r}, examples={len(self.few_shot_examples)}, "
                f"hash={self.content_hash!r})")

    def _repr_html_(self) -> str:
        from .display import prompt_html

        return prompt_html(self)


def load_prompt(path: str | Path) -> Prompt:
    """Load a prompt YAML file; errors name the file, the field, the offending value and the fix."""
    path = Path(path)
    data = _read_yaml_mapping(path)
    try:
        return Prompt.model_validate(data)
    except ValidationError as exc:
        raise PromptFileError(_describe_validation(path, exc, data)) from None


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptFileError(f"prompt file {str(path)!r} does not exist. Check the path.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptFileError(f"prompt file {str(path)!r} cannot be read ({exc}). Save it as UTF-8 text.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise PromptFileError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}). "
                              "Fix the YAML syntax (indentation, quotes, colons).") from None
    if not isinstance(data, dict):
        raise PromptFileError(f"{path}: a prompt file must be a YAML mapping of fields, got "
                              f"{type(data).__name__} {data!r}. Start the file with `name:`, `version:`, `model:`.")
    return data


def _describe_validation(path: Path, exc: ValidationError, data: dict[str, Any]) -> str:
    """One line per problem: the field path, the offending value and what would fix it."""
    lines = [f"{path}: invalid prompt file ({exc.error_count()} problem(s)):"]
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(file)"
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(Prompt.model_fields)
            lines.append(f"  - {field}: unknown key (value {error['input']!r}). Allowed keys: {allowed}.")
        elif error["type"] == "missing":
            lines.append(f"  - {field}: required but missing. Add `{field}:` to the file.")
        else:
            lines.append(f"  - {field}: {error['msg']} (got {error['input']!r}).")
    return "\n".join(lines)
