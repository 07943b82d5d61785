"""Model pinning facts: is a model id pinned to a snapshot, or a floating alias the vendor may move?

A **floating alias** is a model name the vendor may point at a new snapshot at any time: anything ending in
``-latest`` (``claude-3-5-sonnet-latest``), and hosted ids without a date (``gpt-4o``, ``gpt-4o-mini``,
``claude-3-opus``). A **pinned** id carries its snapshot date (``claude-3-5-sonnet-20241022``,
``gpt-4o-2024-08-06``, ``gpt-4-0613``); the local model (``local:gemma-3-270m``) is a fixed file and the fake
provider is scripted, so both count as pinned. `pin_status` suggests a dated id from the price table.
The scans over prompts and results and the model lockfile build on these facts in `promptlab.optimize`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ModelSpecError
from ._ids import canonical_model_id, split_model_id
from ._prices import prices

FIXED_PROVIDERS = {"local": "a fixed local model file", "fake": "a scripted fake provider"}
"""Providers whose models cannot change behind their name, and why."""
_DATED = (re.compile(r"-\d{8}$"), re.compile(r"-\d{4}-\d{2}-\d{2}$"), re.compile(r"-\d{4}$"),
          re.compile(r"@\d{8}$"))
_FLOATING_TAG = re.compile(r"[-:]latest$")


# ---- pinned or floating ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PinStatus:
    """Whether a model id is pinned, why, and a dated id to pin to (from the price table) when it is not."""

    model: str
    pinned: bool
    reason: str
    suggestion: str | None = None


def pin_status(model_id: str) -> PinStatus:
    """Classify one model id as pinned or floating.

    >>> pin_status("gpt-4o").pinned, pin_status("claude-3-5-sonnet-20241022").pinned
    (False, True)
    """
    try:
        canonical = canonical_model_id(model_id)
    except ModelSpecError:
        return PinStatus(model_id, False, "cannot tell the provider, so nothing says it is pinned")
    provider, name = split_model_id(canonical)
    if provider in FIXED_PROVIDERS:
        return PinStatus(canonical, True, FIXED_PROVIDERS[provider])
    if _FLOATING_TAG.search(name):
        return PinStatus(canonical, False, "ends with 'latest': the vendor moves it to each new snapshot",
                         _suggest(provider, _FLOATING_TAG.sub("", name)))
    if any(p.search(name) for p in _DATED):
        return PinStatus(canonical, True, "dated snapshot id")
    return PinStatus(canonical, False, "no date suffix: the vendor may point it at a new snapshot",
                     _suggest(provider, name))


def is_pinned(model_id: str) -> bool:
    """True for a dated snapshot id or a local/fake model; False for floating aliases (see the module doc)."""
    return pin_status(model_id).pinned


def _suggest(provider: str, base: str) -> str | None:
    """The newest dated id in the price table that is ``base`` plus a date."""
    dated = [m for m in prices().prices if m.startswith(f"{provider}:{base}")
             and any(p.fullmatch(m[len(provider) + 1 + len(base):]) for p in _DATED)]
    return max(dated, key=lambda m: re.sub(r"\D", "", m[len(provider) + 1 + len(base):])) if dated else None
