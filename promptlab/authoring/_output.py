"""The ``output:`` block of a prompt file: the shape its answers must have, read into an `OutputConstraint`.

::

    output:                 # exactly one of labels / json_schema / regex
      labels: [positive, negative, neutral, mixed]
      # json_schema: {type: object, properties: {...}, required: [...]}
      # json_schema: schemas/answer.json          (a JSON or YAML file, relative to the prompt file)
      # json_schema: "mypkg.models:Answer"        (a pydantic model: its model_json_schema())
      # regex: "^(yes|no)$"
      retries: 2            # re-asks when the provider cannot enforce the shape natively

A schema file or a pydantic model is read when the prompt loads; the prompt keeps (and hashes) the schema itself,
so editing the file makes a different prompt, and a registered prompt written back out carries its schema inline.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._yaml import load_yaml, read_text
from ..errors import ArgumentError, PromptFileError
from ..providers._base import OutputConstraint
from ._labels import PYTHON_REF

# The folder a schema path is relative to: the prompt file's while `load_prompt` validates it, else the current
# directory. A context variable, because the strict file reader validates the whole file in one pydantic call.
_SCHEMA_BASE: ContextVar[Path | None] = ContextVar("promptlab_schema_base", default=None)
_KINDS = ("labels", "json_schema", "regex")


@contextlib.contextmanager
def schema_paths_relative_to(folder: Path) -> Iterator[None]:
    """Resolve ``json_schema`` file paths (and import pydantic models) from ``folder`` while this block runs."""
    token = _SCHEMA_BASE.set(folder)
    try:
        yield
    finally:
        _SCHEMA_BASE.reset(token)


class OutputSpec(BaseModel):
    """A prompt's declared output: exactly one of ``labels``, ``json_schema`` or ``regex``, and ``retries``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: tuple[str, ...] | None = Field(default=None, description="The answer must be exactly one of these")
    json_schema: dict[str, Any] | None = Field(
        default=None, description="A JSON Schema: inline, a .json/.yaml file path, or 'package.module:PydanticModel'")
    regex: str | None = Field(default=None, description="A regular expression the answer matches (anchor it: ^...$)")
    retries: int = Field(default=2, ge=0, le=10, description="Re-asks when the provider cannot enforce the shape")

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(f"labels must be a list, got the one string {value!r}. Write labels: [{value}, ...]")
        if not isinstance(value, list | tuple):
            return value
        booleans = [label for label in value if isinstance(label, bool)]
        if booleans:  # YAML 1.1 reads yes/no/on/off/true/false unquoted as booleans: say so rather than "not a str"
            raise ValueError(f"labels {booleans!r} were read as booleans: YAML reads yes, no, on, off, true and false "
                             "unquoted as true/false. Quote them: labels: ['yes', 'no']")
        return tuple(str(label) if isinstance(label, int | float) else label for label in value)

    @field_validator("json_schema", mode="before")
    @classmethod
    def _schema_from_reference(cls, value: Any) -> Any:
        if isinstance(value, str):
            return resolve_schema(value, _SCHEMA_BASE.get() or Path.cwd())
        return value

    # Each kind is checked by building its constraint, so a file and `OutputConstraint` refuse the same things
    # (duplicate labels, an invalid schema, a regex that does not compile), each at its own line.
    @field_validator("labels")
    @classmethod
    def _labels_usable(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return value if value is None else _checked(OutputConstraint.from_labels, value).labels

    @field_validator("json_schema")
    @classmethod
    def _schema_usable(cls, value: dict | None) -> dict | None:
        if value is not None:
            _checked(OutputConstraint.from_schema, value)
        return value

    @field_validator("regex")
    @classmethod
    def _regex_usable(cls, value: str | None) -> str | None:
        return value if value is None else _checked(OutputConstraint.from_regex, value).pattern

    @model_validator(mode="after")
    def _one_kind(self) -> OutputSpec:
        given = [kind for kind in _KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            found = f"found {given}" if given else "found none"
            raise ValueError(f"output needs exactly one of labels, json_schema or regex ({found}). Keep one.")
        return self

    @property
    def kind(self) -> str:
        """``labels``, ``json_schema`` or ``regex``."""
        return next(kind for kind in _KINDS if getattr(self, kind) is not None)

    @cached_property
    def constraint(self) -> OutputConstraint:
        """The `OutputConstraint` requests of this prompt carry."""
        if self.labels is not None:
            return OutputConstraint.from_labels(self.labels, retries=self.retries)
        if self.json_schema is not None:
            return OutputConstraint.from_schema(self.json_schema, retries=self.retries)
        return OutputConstraint.from_regex(self.regex, retries=self.retries)

    def identity(self) -> dict[str, Any]:
        """What the prompt's content hash covers: the constraint's own identity (the schema, never its path)."""
        return self.constraint.identity()


def _checked(build: Any, value: Any) -> OutputConstraint:
    # An ArgumentError is a ValueError: pydantic reports it, and the strict reader shows it with the file's line.
    return build(value)


def resolve_schema(reference: str, base: Path) -> dict:
    """The JSON Schema a string names: ``"package.module:Model"`` (a pydantic model) or a JSON / YAML file
    (relative to ``base``). Raises ValueError (an `ArgumentError`) with what is wrong and how to fix it."""
    reference = reference.strip()
    if PYTHON_REF.fullmatch(reference):
        return _pydantic_schema(reference, base)
    path = Path(reference).expanduser()
    path = path if path.is_absolute() else base / path
    if path.suffix.lower() not in (".json", ".yaml", ".yml"):
        raise ArgumentError(f"json_schema {reference!r} is neither a schema file (.json, .yaml) nor a pydantic model "
                            "reference ('package.module:Model'). Give one of those, or write the schema inline.")
    try:
        text = read_text(path, PromptFileError, "JSON Schema file")
    except PromptFileError as exc:
        raise ArgumentError(f"json_schema {reference!r}: {exc} (paths are relative to the prompt file)") from None
    try:
        schema = json.loads(text) if path.suffix.lower() == ".json" else load_yaml(text, str(path),
                                                                                     PromptFileError).data
    except (ValueError, PromptFileError) as exc:
        raise ArgumentError(f"json_schema file {str(path)!r} is not valid {path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(schema, dict):
        raise ArgumentError(f"json_schema file {str(path)!r} holds {type(schema).__name__}, not a schema object.")
    return schema


def _pydantic_schema(reference: str, base: Path) -> dict:
    from ._callable import import_callable  # also imports user code from the prompt file's folder first

    found = import_callable(reference, base_dir=base, error=ArgumentError, what="json_schema model")
    if not (isinstance(found, type) and issubclass(found, BaseModel)):
        raise ArgumentError(f"json_schema {reference!r} names {found!r}, which is not a pydantic model class. "
                            "Name a class that subclasses pydantic.BaseModel.")
    return found.model_json_schema()
