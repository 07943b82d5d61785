"""The prompt search's split of a suite: a training pool, the search cases and the untouched confirmation cases.

The split is seeded and stratified by label (``expected``) and ``category``: cases are grouped by stratum (labels
first, then categories within a label), shuffled within each stratum by the seed, and dealt in that order to the
part furthest behind its share (largest deficit first, as Bresenham draws a line). Because each stratum is dealt
contiguously, every label — and every label × category — lands in each part in proportion to the part's share, to
within one case; the parts' sizes are the shares of the suite rounded, summing to the suite.

The confirmation part is what makes the search's result honest: no candidate is run on it during the search, and
the winner and the starting prompt are run on it once, at the end (`promptlab.optimize._search`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..authoring._prompt import Prompt
from ..authoring._suite import Case, Suite, load_suite
from ..errors import ArgumentError

PARTS = ("pool", "search", "confirm")


@dataclass(frozen=True)
class SearchSplit:
    """The three parts of a search: ``pool`` (training examples), ``search`` (scored while searching) and
    ``confirm`` (run once, on the winner and the start). ``pool_source`` says where the pool came from."""

    pool: Suite
    search: Suite
    confirm: Suite
    seed: int
    pool_source: str

    def ids(self) -> dict[str, list[str]]:
        """The case ids of each part, in suite order."""
        return {"pool": [c.id for c in self.pool], "search": [c.id for c in self.search],
                "confirm": [c.id for c in self.confirm]}

    def sizes(self) -> dict[str, int]:
        """How many cases each part holds."""
        return {"pool": len(self.pool), "search": len(self.search), "confirm": len(self.confirm)}


def stratum(case: Case) -> tuple[str, str]:
    """The stratum of a case: its expected answer (as text) and its category."""
    return (str(case.expected), str(case.category))


def assign(cases: Sequence[Case], shares: Sequence[float], seed: int) -> list[int]:
    """The part (index into ``shares``) of each case, stratified by `stratum` (see the module docstring)."""
    total = float(sum(shares))
    fractions = [s / total for s in shares]
    rng = random.Random(seed)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, case in enumerate(cases):
        groups.setdefault(stratum(case), []).append(i)
    order: list[int] = []
    for key in sorted(groups):  # sorted: label-major, so each label is dealt contiguously too
        members = groups[key]
        rng.shuffle(members)
        order += members
    parts = [0] * len(cases)
    given = [0] * len(shares)
    for position, index in enumerate(order, start=1):
        # the part furthest behind its share of the cases dealt so far takes this one (ties: the first part)
        deficits = [f * position - g for f, g in zip(fractions, given, strict=True)]
        chosen = max(range(len(shares)), key=lambda k: (deficits[k], -k))
        parts[index] = chosen
        given[chosen] += 1
    return parts


def split_suite(suite: Suite, *, pool: Suite | str | Path | None = None, confirm_share: float = 0.5,
                pool_share: float = 0.25, seed: int = 0) -> SearchSplit:
    """Split ``suite`` into a training pool, search cases and confirmation cases (seeded, stratified).

    Args:
        suite: the cases.
        pool: training examples from elsewhere (a `Suite` or a suite file); then the suite is only split into
            search and confirmation cases. Its cases must not be in the suite (same id or same input).
        confirm_share: the share of the non-pool cases held out for confirmation, in (0, 1).
        pool_share: without ``pool``, the share of the suite taken as the training pool, in [0, 1).
        seed: the split's seed.

    Raises:
        ArgumentError: shares out of range, too few cases for three parts, or a pool that overlaps the suite.
    """
    _check_share("confirm_share", confirm_share, 0.0, 1.0, closed_low=False)
    _check_share("pool_share", pool_share, 0.0, 1.0, closed_low=True)
    cases = list(suite.cases)
    if pool is not None:
        pool_suite = load_suite(pool) if isinstance(pool, (str, Path)) else pool
        _check_disjoint(pool_suite, cases)
        parts = assign(cases, [1 - confirm_share, confirm_share], seed)
        chosen = {1: [c for c, p in zip(cases, parts, strict=True) if p == 0],
                  2: [c for c, p in zip(cases, parts, strict=True) if p == 1]}
        source = f"given: {pool_suite.name} ({len(pool_suite)} cases)"
    else:
        shares = [pool_share, (1 - pool_share) * (1 - confirm_share), (1 - pool_share) * confirm_share]
        parts = assign(cases, shares, seed)
        chosen = {k: [c for c, p in zip(cases, parts, strict=True) if p == k] for k in range(3)}
        pool_suite = _part(suite, chosen[0], "pool", seed)
        source = f"the suite's train part ({len(chosen[0])} of {len(cases)} cases)"
    search, confirm = _part(suite, chosen[1], "search", seed), _part(suite, chosen[2], "confirm", seed)
    if len(search) < 2 or len(confirm) < 2:
        raise ArgumentError(f"suite {suite.name!r} has {len(cases)} cases: too few to split into search "
                            f"({len(search)}) and confirmation ({len(confirm)}) parts of at least 2 cases each. "
                            "Add cases, or pass pool= so the whole suite is split into search and confirmation.")
    return SearchSplit(pool_suite, search, confirm, seed, source)


def _part(suite: Suite, cases: list[Case], name: str, seed: int) -> Suite:
    wanted = {c.id for c in cases}
    part = suite.filter(lambda c: c.id in wanted)
    part.subset = [*part.subset[:-1], {"search_split": {"part": name, "seed": seed, "of": len(suite)}}]
    return part


def _check_share(name: str, value: Any, low: float, high: float, *, closed_low: bool) -> None:
    ok = isinstance(value, (int, float)) and (low <= value if closed_low else low < value) and value < high
    if not ok:
        bracket = "[" if closed_low else "("
        raise ArgumentError(f"{name} must be a number in {bracket}{low:g}, {high:g}), got {value!r}; "
                            f"e.g. {name}=0.5.")


def _check_disjoint(pool: Suite, cases: list[Case]) -> None:
    import json

    def key(case: Case) -> str:
        return json.dumps(case.input, sort_keys=True, ensure_ascii=False)

    inputs = {key(c) for c in cases}  # the same input, whatever its id (ids of two files may coincide)
    shared = [c.id for c in pool if key(c) in inputs]
    if shared:
        raise ArgumentError(f"the training pool shares {len(shared)} case(s) with the suite ({shared[:5]!r}): "
                            "examples shown to the model must not be scored. Remove them from the pool, or "
                            "leave pool= out to take the pool from the suite.")


def with_prompt_examples(pool: Suite, prompt: Prompt) -> Suite:
    """The pool plus the prompt's own few-shot examples (ids ``example-1`` …), so the search can keep, drop or
    reorder the examples the prompt came with. Examples whose input is already in the pool are not repeated."""
    import json

    seen = {json.dumps(c.input, sort_keys=True, ensure_ascii=False) for c in pool}
    extra = []
    for i, example in enumerate(prompt.few_shot_examples, start=1):
        if json.dumps(example.input, sort_keys=True, ensure_ascii=False) in seen:
            continue
        case_id = f"example-{i}"
        while case_id in {c.id for c in pool}:
            case_id += "'"
        extra.append(Case(id=case_id, input=example.input, expected=example.output, category="prompt_example"))
    if not extra:
        return pool
    merged = Suite(pool.name, [*pool.cases, *extra], labels=pool.labels, description=pool.description)
    merged.source, merged.subset = pool.source, [*pool.subset, {"with_prompt_examples": len(extra)}]
    return merged
