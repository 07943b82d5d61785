"""The checks and texts behind the registry's writes: what a new version must have (an own changelog entry, a
version that is not an alias, behaviour no registered version has), why a rollback or an unproven export is
refused, the version an exported variant gets and the changelog text written for it."""

from __future__ import annotations

import re

from ..authoring._diff import PromptDiff
from ..authoring._prompt import Prompt
from ..errors import GateRefused, RegistryError
from . import _lifecycle as lc
from ._evidence import Evidence
from ._lifecycle import ENVIRONMENTS, HistoryEvent
from ._store import View, definition_hash

SELECTORS = ("latest", *ENVIRONMENTS)
"""The aliases `Registry.get` resolves; no version may be named after one."""


def _check_new_version(prompt: Prompt) -> None:
    if prompt.version in SELECTORS:
        raise RegistryError(f"version {prompt.version!r} is reserved for aliases ({list(SELECTORS)!r}); use a number "
                            "such as '1.2.0'.")
    entry = prompt.changelog[0] if prompt.changelog else None
    if entry is None or entry.version != prompt.version:
        raise RegistryError(f"{prompt.ref} must add a changelog entry of its own at the top of `changelog:` (the "
                            f"newest entry is {entry.version if entry else None!r}). Add `- version: "
                            f"{prompt.version}` with date, author and changes.")


def _check_new_content(prompt: Prompt, view: View) -> None:
    """Refuse a new version whose behaviour (content hash) equals a registered version of the same prompt: two
    versions that answer the same split evidence and history between them for no difference."""
    same = [(v, e) for (n, v), e in view.ledger.registered.items()
            if n == prompt.name and e.content_hash == prompt.content_hash]
    if same:
        version, event = same[-1]
        raise RegistryError(f"{prompt.name}@{version} (registered by {event.actor} from {event.file}) already has "
                            f"exactly this behaviour (content hash {prompt.content_hash!r}), so {prompt.ref} would "
                            f"be a duplicate. Use {prompt.name}@{version}, or change the prompt (model, parameters, "
                            "system, examples or template) before giving it a new version.")


def _same_as_registered(prompt: Prompt, event: HistoryEvent) -> Prompt:
    if event.definition_hash == definition_hash(prompt):
        return prompt
    raise RegistryError(f"{prompt.ref} is already registered (by {event.actor} at {event.at}) with different content; "
                        "versions are immutable. Give the change a new version with its own changelog entry "
                        "(prompt.with_changes(version=..., changelog=...)).")


def _no_rollback(name: str, env: str, stack: tuple[str, ...], to: str | None) -> str:
    if not stack:
        return f"nothing to roll back: {name!r} has never been live in {env}."
    if to is not None:
        return (f"{name}@{to} was not live in {env} before {stack[-1]} (deployments, oldest first: {list(stack)!r}); "
                "roll back to one of those, or promote the version through the lifecycle.")
    return f"nothing to roll back to: {name}@{stack[-1]} is the only version that has been live in {env}."


def _refuse_unproven_export(prompt: Prompt, record: Evidence | None, override: str) -> None:
    """An export backed by a comparison needs a detected improvement, or an override that says why."""
    if record is None or not record.comparison or override:
        return
    if any(row.verdict == "better" for row in record.comparison):
        return
    verdicts = "; ".join(f"{r.verdict} vs {r.baseline_ref or r.baseline} on {r.model} (diff {r.diff:+.3g}, "
                         f"interval [{r.ci_low:+.3g}, {r.ci_high:+.3g}], p_adj {r.p_adj:.3g})"
                         for r in record.comparison)
    raise GateRefused(f"export of {prompt.name} ({prompt.content_hash[:12]}): the comparison shows no detected "
                      f"improvement ({verdicts}). Export the variant that is better, run more cases, or pass "
                      "override='why' — the reason is recorded in the history.", gate="export",
                      failures=(f"no detected improvement: {verdicts}",),
                      needed=("a comparison whose verdict is 'better', or override='why'",))


def _free_version(variant: Prompt, view: View) -> str:
    taken = {v for n, v in [*view.files, *view.ledger.registered] if n == variant.name}
    if variant.version not in taken:
        return variant.version
    numbers = [tuple(int(x) for x in m.groups()) for v in taken if (m := re.match(r"^(\d+)\.(\d+)\.(\d+)$", v))]
    if not numbers:
        raise RegistryError(f"cannot choose a version after {sorted(taken)!r}; pass version='...'.")
    major, minor, _ = max(numbers)
    return f"{major}.{minor + 1}.0"


def _auto_changes(base: Prompt | None, variant: Prompt, record: Evidence | None) -> str:
    parts = ["Exported from a notebook."]
    if base is not None:
        parts.append(f"Changed from {base.ref}: {', '.join(PromptDiff(base, variant).changed) or 'nothing'}.")
    if record is not None:
        parts += [f"Evidence: {r.verdict} than {r.baseline_ref or r.baseline} on {r.model} ({lc.points(r)}, "
                  f"p_adj {r.p_adj:.3g}, n = {r.n})." for r in record.comparison]
        if record.eval is not None:
            parts.append(f"Accuracy {record.eval.accuracy:.1%} on {record.eval.cases} cases.")
    return " ".join(parts)
