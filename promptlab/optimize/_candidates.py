"""The shared currency of the prompt search: `Candidate`, one prompt variant the search may try, and the one way
a generator turns a base candidate plus a change into a new candidate (`derive`).

Every generator (`_fewshot`, `_instructions`, `_moves`) takes a *base* `Candidate` and returns a list of new ones,
so moves compose: few-shot selection can run on top of the best instruction rewrite. Each new candidate carries a
new immutable `Prompt` whose version names the search and its content (``<start version>+search.<hash8>``, build
metadata in the semver sense: the registry's `export` keeps it when free, else picks the next minor version), a
changelog entry listing the moves, and ``metadata["search"]`` with the start version and the moves, so a
registered winner says where it came from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..authoring._prompt import ChangelogEntry, Prompt
from ..errors import ArgumentError

ORIGINS = ("start", "fewshot", "instruction", "proposer", "compression", "routing")
"""Where a candidate's last move came from."""

_SEARCH_TAG = "+search."


@dataclass(frozen=True)
class Candidate:
    """One prompt variant the search may try.

    Attributes:
        name: a short, unique, readable id, e.g. ``"fewshot:coverage:k4:s1"``.
        prompt: the complete prompt to run.
        model: ``None`` runs it on the search's model; a routing move names another model id.
        moves: the steps from the starting prompt, readable, in order.
        origin: what made the last move — one of `ORIGINS`.
    """

    name: str
    prompt: Prompt
    model: str | None = None
    moves: tuple[str, ...] = ()
    origin: str = "start"

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ArgumentError(f"Candidate origin {self.origin!r} is unknown; use one of {list(ORIGINS)!r}.")
        if not isinstance(self.prompt, Prompt):
            raise ArgumentError(f"Candidate {self.name!r} needs a promptlab Prompt, got {type(self.prompt).__name__}; "
                                 "load one with pl.load_prompt(path).")
        if not self.name:
            raise ArgumentError("a Candidate needs a non-empty name, e.g. 'fewshot:coverage:k4:s1'.")

    def __repr__(self) -> str:
        model = f", model={self.model!r}" if self.model else ""
        return (f"Candidate({self.name!r}, origin={self.origin!r}, moves={len(self.moves)}, "
                f"hash={self.prompt.content_hash!r}{model})")


def start_candidate(prompt: Prompt, model: str | None = None) -> Candidate:
    """The starting point of a search: the prompt as written, no moves (``name="start"``)."""
    return Candidate(name="start", prompt=prompt, model=model, moves=(), origin="start")


def start_version(prompt: Prompt) -> str:
    """The version the search started from: ``1.3.0+search.ab12cd34`` → ``1.3.0`` (a plain version unchanged)."""
    return prompt.version.split(_SEARCH_TAG, 1)[0]


def derive(base: Candidate, name: str, origin: str, move: str, *, model: str | None = None, pin: bool = False,
           **changes: Any) -> Candidate:
    """A new candidate: ``base`` with prompt fields replaced by ``changes`` and ``move`` appended to its moves.

    The new prompt gets version ``<start version>+search.<hash8>`` (hash8: its content hash), a changelog entry
    naming every move since the start, and ``metadata["search"]`` with the start version and the moves. With no
    prompt change, the prompt is kept as it is. ``model`` replaces the base's model when given; ``pin`` also pins
    the prompt to it (its ``model`` field), so an exported routing winner names the model it won on.
    """
    moves = (*base.moves, move)
    if pin and model is not None:
        changes = {**changes, "model": model}
    prompt = _new_version(base.prompt, moves, changes) if changes else base.prompt
    return Candidate(name=name, prompt=prompt, model=model if model is not None else base.model, moves=moves,
                     origin=origin)


def _new_version(base: Prompt, moves: tuple[str, ...], changes: dict[str, Any]) -> Prompt:
    try:
        changed = base.with_changes(**changes)
    except ValidationError as exc:  # e.g. pool examples whose inputs lack the template's variables
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ArgumentError(f"the move {moves[-1]!r} makes an invalid prompt from {base.ref}: {problems}. Check that "
                            "the pool's inputs have the variables the template uses, and the changed fields "
                            "are valid prompt fields.") from None
    start = start_version(base)
    version = f"{start}{_SEARCH_TAG}{changed.content_hash[:8]}"
    entry = ChangelogEntry(version=version, date=dt.date.today(), author="promptlab optimize",
                           changes=f"Found by the prompt search from {base.name}@{start}: " + "; ".join(moves) + ".")
    # Earlier search entries belong to intermediate candidates, not to a registered history: drop them.
    history = tuple(e for e in base.changelog if _SEARCH_TAG not in e.version)
    metadata = {**base.metadata, "search": {"from_version": start, "moves": list(moves)}}
    return changed.with_changes(version=version, changelog=(entry, *history), metadata=metadata)
