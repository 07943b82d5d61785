"""The optimize room's older tools as moves of the prompt search: compression rules and model routing.

`compression_candidates(base)` runs `compress` (`_compression`) once per rule that changes the prompt, and once
with every default rule together; `routing_candidates(base, models)` keeps the prompt and names another model. Both
make no model call: the search scores them like any other candidate, and a compressed or routed winner still has
to win on the confirmation cases (for "cheaper and no worse", `noninferiority` is the test).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..authoring._prompt import Prompt
from ..errors import ArgumentError
from ..providers._ids import canonical_model_id
from ._candidates import Candidate, derive
from ._compression import DEFAULT_RULES, compress

_BEHAVIOUR = ("system", "template", "few_shot_examples", "stop")
"""The fields a compression rule may change."""


def _changes(before: Prompt, after: Prompt) -> dict[str, object]:
    return {name: getattr(after, name) for name in _BEHAVIOUR if getattr(after, name) != getattr(before, name)}


def compression_candidates(base: Candidate, rules: Iterable[str] | None = None, *,
                           combined: bool = True) -> list[Candidate]:
    """Candidates compressed by each rule alone (``compression:<rule>``) and by all of them (``compression:all``).

    Args:
        base: the candidate to compress.
        rules: rule names (see `RULES`; ``compact_few_shot`` is opt-in); `DEFAULT_RULES` if None.
        combined: also add the candidate with every rule applied in order.

    Returns:
        One candidate per rule that changed the prompt, and the combined one when it differs from them all.

    Raises:
        CompressionError: an unknown rule name, or a rule that produced an invalid prompt.
    """
    names = list(DEFAULT_RULES if rules is None else rules)
    plans = [(f"compression:{name}", [name]) for name in names]
    if combined and len(names) > 1:
        plans.append(("compression:all", names))
    out, seen = [], {base.prompt.content_hash}
    for name, applied in plans:
        compressed = compress(base.prompt, applied).prompt
        changes = _changes(base.prompt, compressed)
        if not changes:
            continue
        candidate = derive(base, name, "compression", f"compression {'+'.join(applied)}", **changes)
        if candidate.prompt.content_hash not in seen:
            seen.add(candidate.prompt.content_hash)
            out.append(candidate)
    return out


def routing_candidates(base: Candidate, models: Sequence[str]) -> list[Candidate]:
    """One candidate per other model: the same prompt texts, pinned to and run on that model
    (``routing:<model id>``); the base's own model is left out.

    Raises:
        ArgumentError: ``models`` is one string instead of a list, or a model id cannot be read.
    """
    if isinstance(models, str):
        raise ArgumentError(f"routing_candidates takes a list of model ids, got the one string {models!r}; write "
                            f"[{models!r}].")
    current = {canonical_model_id(m) for m in (base.model, base.prompt.model) if m}
    out, seen = [], set()
    for model in models:
        model_id = canonical_model_id(model)
        if model_id in current or model_id in seen:
            continue
        seen.add(model_id)
        out.append(derive(base, f"routing:{model_id}", "routing", f"route to {model_id}", model=model_id,
                          pin=True))
    return out
