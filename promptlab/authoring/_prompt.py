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
    output:                               # the answer's shape, enforced by the provider (see `_output`)
      labels: [positive, negative, neutral, mixed]
    top_p: 0.9                            # sampling parameters, sent where the provider has them
    seed: 7
    frequency_penalty: 0.0
    presence_penalty: 0.0
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
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer

from .._yaml import load_yaml, looks_tabular, read_text, require_mapping, validate
from ..errors import PromptFileError, RenderError
from ..providers._base import Message, Request
from ._output import OutputSpec, schema_paths_relative_to
from ._templates import check_template, render_user, template_variables

DEFAULT_TEMPLATE = "{{ input }}"
# Fields added after prompts were first registered: each joins the dump and the content hash only when set, so
# every existing prompt keeps its content hash and its definition hash (the registry verifies both).
_OPTIONAL_FIELDS = ("output", "top_p", "seed", "frequency_penalty", "presence_penalty")


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
    examples, template, stop sequences; the declared output and sampling parameters when set), not the name,
    version, changelog or metadata.
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
    output: OutputSpec | None = None
    top_p: float | None = Field(default=None, gt=0.0, le=1.0, description="Nucleus sampling: a number in (0, 1]")
    seed: int | None = Field(default=None, ge=0, description="A whole number >= 0; providers that have one use it")
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0, description="A number in [-2, 2]")
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0, description="A number in [-2, 2]")
    changelog: tuple[ChangelogEntry, ...] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _without_unset_optional_fields(self, handler: Any) -> dict[str, Any]:
        # A prompt that sets none of the newer fields dumps exactly as before they existed.
        data = handler(self)
        return {key: value for key, value in data.items() if key not in _OPTIONAL_FIELDS or value is not None}

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # YAML reads `version: 2.1` as a float; a version is a label, so keep its text.
        return str(value) if isinstance(value, (int, float)) else value

    @field_validator("output", mode="before")
    @classmethod
    def _output_is_a_block(cls, value: Any) -> Any:
        if isinstance(value, list | str):
            raise ValueError(f"output must be a block with one of labels, json_schema or regex, got {value!r}. "
                             "Write `output:` and under it, indented, `labels: [a, b]` (or json_schema: / regex:)")
        return value

    @field_validator("system", "template")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return normalize_text(value)

    @field_validator("template")
    @classmethod
    def _template_compiles(cls, value: str) -> str:
        check_template(value)
        return value

    @field_validator("few_shot_examples")
    @classmethod
    def _examples_render(cls, value: tuple[FewShotExample, ...], info: ValidationInfo) -> tuple[FewShotExample, ...]:
        # Every request renders every few-shot example, so an example that cannot render fails every case:
        # refuse it now, when the prompt is built, rather than on each call of the run.
        template = info.data.get("template")
        if template is None:  # the template itself was refused; that error says enough
            return value
        for number, example in enumerate(value):
            try:
                render_user(str(info.data.get("name", "?")), template, example.input)
            except RenderError as exc:
                raise ValueError(f"example {number} does not render: {exc}") from None
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
                                  "few_shot_examples", "stop", "top_p", "seed", "frequency_penalty",
                                  "presence_penalty"}
        )
        if self.output is not None:  # the schema itself, never the path it was read from
            fields["output"] = self.output.identity()
        canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @cached_property
    def variables(self) -> frozenset[str]:
        """The template variables the user message needs."""
        return template_variables(self.template)

    # ---- rendering ------------------------------------------------------------------------------------
    def render_user(self, case_input: str | dict[str, Any]) -> str:
        """Render the user message for one input in the limited sandbox (`RENDER_LIMITS`).

        Raises:
            MissingVariablesError: the input lacks variables the template uses (all listed).
            TemplateLimitError: the render went past a size, loop or time limit.
            RenderError: anything else the template raised (a sandbox violation, a runtime error).
        """
        return render_user(self.name, self.template, case_input, self.variables)

    def _few_shot_turns(self) -> tuple[Message, ...]:
        """The few-shot turns, rendered once per prompt: they are the same for every case, and rendering them
        for each one was most of a suite's planning time. The memo is keyed by what the turns are made of, so a
        copy with other examples or another template (`model_copy` copies it along) renders its own."""
        key = (self.name, self.template, self.few_shot_examples)
        memo = self.__dict__.get("_few_shot_memo")
        if memo is not None and memo[0] == key:
            return memo[1]
        turns: list[Message] = []
        for example in self.few_shot_examples:
            turns += [Message("user", self.render_user(example.input)), Message("assistant", example.output)]
        self.__dict__["_few_shot_memo"] = (key, tuple(turns))  # beside cached_property's entries: not a field
        return tuple(turns)

    def render(self, case_input: str | dict[str, Any], *, model: str | None = None) -> Request:
        """Build the provider-neutral request: system, few-shot turns, then the rendered user message."""
        messages = (*self._few_shot_turns(), Message("user", self.render_user(case_input)))
        return Request(
            model=model or self.model,
            system=self.system,
            messages=messages,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stop=self.stop,
            output=self.output.constraint if self.output is not None else None,
            top_p=self.top_p,
            seed=self.seed,
            frequency_penalty=self.frequency_penalty,
            presence_penalty=self.presence_penalty,
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
        from .._display import prompt_html

        return prompt_html(self)


_PROMPT_FORMAT = "A prompt file is YAML text (.yaml, .yml) with name, version, model, system and template."
_TABLE_SUFFIXES = {".csv": "a CSV file", ".tsv": "a TSV file", ".xlsx": "an Excel workbook",
                   ".xls": "an Excel workbook", ".jsonl": "a JSONL file (a suite?)", ".parquet": "a Parquet file"}


def load_prompt(path: str | Path) -> Prompt:
    """Load a prompt YAML file; every problem is listed at once, each with its line, field, value and fix.

    The file is read strictly (`promptlab._yaml`: size cap, bounded YAML aliases, no repeated keys), and
    the template is checked when the prompt is built (syntax, a trial render within `_templates.RENDER_LIMITS`, every
    few-shot example rendered).
    """
    path = Path(path)
    kind = _TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is not None:
        raise PromptFileError(f"prompt file {str(path)!r} is {kind}, not a prompt. {_PROMPT_FORMAT} "
                              "Load suites with pl.load_suite.")
    text = read_text(path, PromptFileError, "prompt file", accepted=_PROMPT_FORMAT)
    document = load_yaml(text, str(path), PromptFileError)
    table = looks_tabular(text)
    hint = f"The file looks like {table}, not YAML. " if table else ""
    require_mapping(document.data, str(path), "prompt file", PromptFileError,
                    f"{hint}Start the file with `name:`, `version:`, `model:`.")
    with schema_paths_relative_to(path.parent.resolve()):  # an `output.json_schema` file path is the file's
        return validate(document, Prompt, str(path), PromptFileError, "prompt file")
