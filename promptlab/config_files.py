"""Reading the YAML files users and tools write (lockfiles, routing tables …) into pydantic models, with
errors that name the file, the field, the offending value and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def validation_problems(exc: ValidationError) -> str:
    """Every problem of a validation error as ``field: message (got value)``, joined by ``; ``."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']} (got {e['input']!r})"
                     for e in exc.errors())


def read_yaml(path: Path, what: str, error: type[Exception], fix: str) -> Any:
    """The parsed YAML of ``path``; a missing or unreadable file raises ``error`` naming ``what`` and ``fix``."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{what} {str(path)!r} does not exist. {fix}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise error(f"{what} {str(path)!r} cannot be read ({exc}). {fix}") from None


def load_model_file(path: str | Path, model: type[Model], what: str, error: type[Exception], fix: str) -> Model:
    """Read ``path`` and validate it as ``model``; any problem raises ``error`` with the field and the fix."""
    path = Path(path)
    data = read_yaml(path, what, error, fix)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(f"{path}: not a valid {what} ({validation_problems(exc)}). {fix}") from None
