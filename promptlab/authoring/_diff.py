"""`diff(a, b)`: what changed between two prompt versions, section by section, for reviews and changelogs.

Sections (`DIFF_SECTIONS`): ``system`` and ``template`` (unified text diffs), ``examples`` (few-shot examples
added and removed, in order), ``model``, ``params`` (temperature, max_tokens, stop) and ``changelog`` (entries
the newer version adds). A `PromptDiff` shows itself in a notebook and as text in a terminal.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .._display import card, esc, paragraph, table, truncate
from ._prompt import Prompt


# ---- the diff ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """One difference between two prompt versions."""

    section: str
    field: str
    old: Any
    new: Any


DIFF_SECTIONS = ("system", "examples", "template", "model", "params", "output", "changelog")


class PromptDiff:
    """What changed between two prompt versions: system, examples, template, model, params, changelog.

    Args:
        a: the older version.
        b: the newer version.
    """

    def __init__(self, a: Prompt, b: Prompt):
        self.a, self.b = a, b
        self.changes = tuple(_text_changes(a, b) + _example_changes(a, b) + _param_changes(a, b)
                             + _changelog_changes(a, b))

    @property
    def changed(self) -> tuple[str, ...]:
        """The sections that differ, in `DIFF_SECTIONS` order."""
        return tuple(s for s in DIFF_SECTIONS if any(c.section == s for c in self.changes))

    def to_frame(self) -> pd.DataFrame:
        """One row per change: section, field, old, new."""
        return pd.DataFrame([vars(c) for c in self.changes], columns=["section", "field", "old", "new"])

    def text(self) -> str:
        """A readable diff: unified diffs for texts, ``old → new`` for the rest."""
        lines = [f"--- {self.a.ref}", f"+++ {self.b.ref}"]
        for c in self.changes:
            if c.section in ("system", "template"):
                lines.append(f"@@ {c.section} @@")
                lines += unified(c.old, c.new)
            elif c.section in ("examples", "changelog"):
                lines.append(f"{c.section} {c.field}: {c.new if c.old is None else c.old}")
            else:
                lines.append(f"{c.field}: {c.old!r} → {c.new!r}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        what = ", ".join(self.changed) + " changed" if self.changes else "no difference"
        return f"PromptDiff({self.a.ref} → {self.b.ref}: {what})"

    def _repr_html_(self) -> str:
        return diff_html(self)


def unified(old: str, new: str) -> list[str]:
    """Unified-diff lines (no header) between two texts."""
    return [line for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)][2:]


def _text_changes(a: Prompt, b: Prompt) -> list[Change]:
    return [Change(f, f, getattr(a, f), getattr(b, f)) for f in ("system", "template")
            if getattr(a, f) != getattr(b, f)]


def _example_changes(a: Prompt, b: Prompt) -> list[Change]:
    old = [(e.input, e.output) for e in a.few_shot_examples]
    new = [(e.input, e.output) for e in b.few_shot_examples]
    matcher = difflib.SequenceMatcher(a=[_key(x) for x in old], b=[_key(x) for x in new], autojunk=False)
    changes = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        changes += [Change("examples", f"removed #{i + 1}", _example(old[i]), None) for i in range(i1, i2)]
        changes += [Change("examples", f"added #{j + 1}", None, _example(new[j])) for j in range(j1, j2)]
    return changes


def _key(pair: tuple[Any, str]) -> str:
    return json.dumps(pair, sort_keys=True, default=str)


def _example(pair: tuple[Any, str]) -> str:
    return f"{pair[0]!r} → {pair[1]!r}"


# every behaviour-defining field besides the texts and examples: a change to any of them changes the hash
_PARAMS = ("temperature", "max_tokens", "stop", "top_p", "seed", "frequency_penalty", "presence_penalty")


def _param_changes(a: Prompt, b: Prompt) -> list[Change]:
    changes = [Change("model", "model", a.model, b.model)] if a.model != b.model else []
    changes += [Change("params", f, getattr(a, f), getattr(b, f)) for f in _PARAMS if getattr(a, f) != getattr(b, f)]
    if a.output != b.output:
        changes.append(Change("output", "output", _output(a), _output(b)))
    return changes


def _output(prompt: Prompt) -> str | None:
    """The declared output as the prompt file writes it (None: free text)."""
    if prompt.output is None:
        return None
    return json.dumps(prompt.output.model_dump(exclude_none=True), ensure_ascii=False, sort_keys=True)


def _changelog_changes(a: Prompt, b: Prompt) -> list[Change]:
    known = {e.version for e in a.changelog}
    return [Change("changelog", f"added {e.version}", None, e.changes) for e in b.changelog if e.version not in known]


def diff(a: Prompt, b: Prompt) -> PromptDiff:
    """What changed from prompt ``a`` to prompt ``b`` (for registered refs use `Registry.diff`)."""
    return PromptDiff(a, b)


# ---- the HTML of a diff: its one home --------------------------------------------------------------------
def diff_html(diff: Any) -> str:
    """The card of a `PromptDiff`: unified diffs for system and template, rows for examples and parameters."""
    if not diff.changes:
        return card(f"Diff {diff.a.ref} → {diff.b.ref}", paragraph("no difference", "pl-muted"))
    texts = "".join(f"<b>{esc(c.section)}</b><pre>{_diff_lines(c.old, c.new)}</pre>" for c in diff.changes
                    if c.section in ("system", "template"))
    others = [[c.section, c.field, truncate(c.old, 120), truncate(c.new, 120)] for c in diff.changes
              if c.section not in ("system", "template")]
    rows = table(["section", "change", "before", "after"], others) if others else ""
    return card(f"Diff {diff.a.ref} → {diff.b.ref}", paragraph(f"changed: {', '.join(diff.changed)}", "pl-muted"),
                texts, rows)


def _diff_lines(old: str, new: str) -> str:
    css = {"+": "pl-good", "-": "pl-bad"}
    return "\n".join(f"<span class='{css[line[0]]}'>{esc(line)}</span>" if line[:1] in css else esc(line)
                     for line in unified(old, new))
