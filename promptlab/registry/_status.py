"""The status view of a registry: every version with its state and where it is live, the integrity problems and
the state of the history's hash chain — as text for terminals, a one-line repr and a notebook card."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..providers._pinning import pin_status
from ._lifecycle import ENVIRONMENTS
from ._store import HistoryChain, Problem, View


class RegistryStatus:
    """Every version with its state and where it is live, plus every integrity problem found.

    Attributes:
        versions: one row per version (see `Registry.versions`).
        problems: `Problem` records (hand-edited or missing files, alias files that disagree with history …).
        live: ``{environment: {prompt: version}}`` from the alias files.
        chain: the state of the history's hash chain (`HistoryChain`).
    """

    def __init__(self, versions: pd.DataFrame, problems: tuple[Problem, ...], live: dict[str, dict[str, str]],
                 chain: HistoryChain | None = None):
        self.versions, self.problems, self.live = versions, tuple(problems), live
        self.chain = chain or HistoryChain()

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems

    def text(self) -> str:
        """Plain text for terminals and CI logs."""
        cols = ["prompt", "version", "state", "live", "file", "pinned"]
        table = self.versions[cols].to_string(index=False) if len(self.versions) else "(no prompt files)"
        problems = [f"  {p.kind}: {p.message}" for p in self.problems] or ["  none"]
        return "\n".join([table, "", f"history: {self.chain.describe()}", f"problems ({len(self.problems)}):",
                          *problems])

    def __repr__(self) -> str:
        live = "; ".join(f"{env}: " + (", ".join(f"{n}@{v}" for n, v in names.items()) or "nothing")
                         for env, names in self.live.items())
        prompts = self.versions["prompt"].nunique() if len(self.versions) else 0
        return (f"RegistryStatus({len(self.versions)} versions of {prompts} prompts; {live}; "
                f"{len(self.problems)} problems)")

    def _repr_html_(self) -> str:
        from .._display import status_html

        return status_html(self)


def _version_row(key: tuple[str, str], view: View, live: dict[str, dict[str, str]]) -> dict[str, Any]:
    event, found = view.ledger.registered.get(key), view.files.get(key)
    model = found.prompt.model if found else None
    return {"prompt": key[0], "version": key[1], "state": view.ledger.state(*key) or "unregistered",
            "live": ", ".join(env for env in ENVIRONMENTS if live[env].get(key[0]) == key[1]),
            "file": found.path if found else None, "model": model,
            "pinned": pin_status(model).pinned if model else None,
            "content_hash": found.prompt.content_hash if found else event.content_hash,
            "registered_by": event.actor if event else None, "registered_at": event.at if event else None}
