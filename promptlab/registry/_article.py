"""The article's ``PromptRegistry``: its calls (register a config, get a version, promote) as a thin face over
`promptlab.registry._registry.Registry`. Mapped by `promptlab.compat`; new code uses `Registry`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._yaml import check, report
from ..authoring._prompt import Prompt
from ..errors import RegistryError
from ._lifecycle import HistoryEvent
from ._registry import Registry


class PromptRegistry:
    """The article's ``PromptRegistry`` calls, as a thin face over `Registry`.

    Args:
        prompts_dir: the ``prompts/`` folder; its parent is the repository root, beside ``configs/``.
    """

    def __init__(self, prompts_dir: str | Path = "prompts"):
        self.registry = Registry(Path(prompts_dir).resolve().parent)

    def register(self, name: str, config: Prompt | dict[str, Any], version: str | None = None) -> Prompt:
        """Register ``config`` (a `Prompt` or the prompt file's fields as a dict) as a version of ``name``."""
        data = config.model_dump() if isinstance(config, Prompt) else dict(config)
        data.update(name=name, **({"version": version} if version else {}))
        prompt, problems = check(Prompt, data)
        if problems:
            raise RegistryError(report(f"{name!r}", "prompt config", problems,
                                       "The fields are those of a prompt file (see prompts/ for examples)."))
        return self.registry.register(prompt)

    def get(self, name: str, version: str = "latest") -> Prompt:
        """A version of ``name``: a version number, ``"latest"``, ``"staging"`` or ``"production"``."""
        return self.registry.get(name, version)

    def promote(self, name: str, version: str, environment: str = "production", **options: Any) -> HistoryEvent:
        """Move ``name@version`` to ``environment`` (any lifecycle state) through its gate (`Registry.promote`)."""
        return self.registry.promote(f"{name}@{version}", environment, **options)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({n for n, _ in self.registry.store.scan()[0]}))

    def __repr__(self) -> str:
        return f"PromptRegistry({str(self.registry.prompts_dir)!r})"
