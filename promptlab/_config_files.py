"""Reading the YAML files users and tools write (lockfiles, routing tables …) into pydantic models, with
errors that name the file, the field, the offending value and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ._yaml import load_yaml, read_text

Model = TypeVar("Model", bound=BaseModel)


def validation_problems(exc: ValidationError) -> str:
    """Every problem of a validation error as ``field: message (got value)``, joined by ``; ``."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']} (got {e['input']!r})"
                     for e in exc.errors())


def read_yaml(path: Path, what: str, error: type[Exception], fix: str) -> Any:
    """The parsed YAML of ``path``, read strictly (`promptlab._yaml`: size cap, bounded aliases, no repeated
    keys); a missing file raises ``error`` naming ``what`` and ``fix``, any other problem its own fix."""
    path = Path(path)
    if not path.exists():
        raise error(f"{what} {str(path)!r} does not exist. {fix}")
    return load_yaml(read_text(path, error, what), str(path), error).data


def load_model_file(path: str | Path, model: type[Model], what: str, error: type[Exception], fix: str) -> Model:
    """Read ``path`` and validate it as ``model``; any problem raises ``error`` with the field and the fix."""
    path = Path(path)
    data = read_yaml(path, what, error, fix)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(f"{path}: not a valid {what} ({validation_problems(exc)}). {fix}") from None
