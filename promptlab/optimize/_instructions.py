"""Instruction moves of the prompt search: a library of rewrites of the system text, and an LLM proposer.

`instruction_candidates(base, labels)` applies each rewrite in `REWRITES` to the base's system text (no model call,
works keyless on the local model). The rewrites come in three families:

============================  ====================================================================================
rewrite                       what it does to the system text
============================  ====================================================================================
definitions                   writes one ``label: definition`` line per label (from ``labels`` given as a mapping,
                              else the definition lines the text already has), replacing the old lines
definitions_bulleted          the definition lines as a bulleted list (``- label: definition``)
labels_only                   drops the definition lines for one ``Labels: a, b, c.`` line (shorter: small models
                              sometimes do better with less to read)
format_label_only             adds "Answer with the label only …" and the label list at the end
format_exact_word             adds "Reply with exactly one word from this list, spelled as written: a | b | c."
format_nothing_else           adds "Your whole answer is the label: no explanation, no punctuation, nothing else."
order_task_last               moves the task (the text before the definitions) after them, nearest the answer
order_definitions_first       puts the definition lines first, the rest after them
order_steps                   prefixes the steps: read, find the main request, match a definition, answer
============================  ====================================================================================

A rewrite that leaves the text as it was (e.g. ``definitions`` without definitions) makes no candidate.

`propose_instructions(base, failures, proposer_model, n)` is the OPRO/APE-style proposer (Yang et al. 2023,
"Large Language Models as Optimizers"; Zhou et al. 2022, "Large Language Models Are Human-Level Prompt
Engineers"): one call to a (hosted) model shows it the current instructions, the labels, cases the prompt got wrong
and, optionally, instructions tried before with their scores (lowest first, as OPRO orders them), and asks for
``n`` new instructions, each inside ``<instruction>…</instruction>``. The call goes through `pl.run` (cache, retries,
budget); a failed call is logged and gives no candidates — never a crash.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from ..authoring._prompt import Prompt, normalize_text
from ..authoring._suite import Case, Suite
from ..errors import ArgumentError
from ..evaluation._results import Results
from ..evaluation._runner import run
from ..evaluation._scoring import Regex
from ._candidates import Candidate, derive

logger = logging.getLogger(__name__)

Labels = Sequence[str] | Mapping[str, str]
"""Label names, or label → definition."""
Rewrite = Callable[[str, dict[str, str | None]], str]
"""``(system text, {label: definition or None}) -> new system text``."""

_BULLET = re.compile(r"^\s*(?:[-*•]\s+)?(?P<label>[^\s:]+)\s*(?::|\s[-–—]\s)\s*(?P<text>.+?)\s*$")


# ---- reading the system text ------------------------------------------------------------------------------------
def definition_lines(system: str, labels: Iterable[str]) -> dict[int, tuple[str, str]]:
    """The lines of ``system`` that define a label (``label: text``, ``- label: text``, ``label — text``):
    line number → (label, definition)."""
    wanted = {label.lower(): label for label in labels}
    found = {}
    for number, line in enumerate(system.split("\n")):
        match = _BULLET.match(line)
        if match and match["label"].lower() in wanted:
            found[number] = (wanted[match["label"].lower()], match["text"])
    return found


def label_definitions(base: Candidate, labels: Labels | None) -> dict[str, str | None]:
    """``{label: definition}``: the given mapping, else the definitions the system text has (None where none).

    Raises:
        ArgumentError: no labels given and the prompt declares none (``output.labels`` or ``metadata.labels``).
    """
    if labels is None:
        prompt = base.prompt
        labels = (prompt.output.labels if prompt.output is not None else None) or prompt.metadata.get("labels")
    if not labels or isinstance(labels, str):
        raise ArgumentError(f"instruction rewrites need the labels, got {labels!r}: pass labels=[...] (or a mapping "
                            "label → definition), or declare `output: {labels: [...]}` in the prompt.")
    if isinstance(labels, Mapping):
        return {str(k): (normalize_text(str(v)) if v is not None else None) for k, v in labels.items()}
    found = {label: text for label, text in definition_lines(base.prompt.system, map(str, labels)).values()}
    return {str(label): found.get(str(label)) for label in labels}


def _split(system: str, labels: dict[str, str | None]) -> tuple[list[str], list[str], list[str]]:
    """The text before the definition block, the block's lines, and the text after it."""
    lines = system.split("\n")
    found = definition_lines(system, labels)
    if not found:
        return lines, [], []
    first, last = min(found), max(found)
    return lines[:first], lines[first:last + 1], lines[last + 1:]


def _join(*parts: Iterable[str]) -> str:
    return normalize_text("\n".join(line for part in parts for line in part))


def _definition_block(labels: dict[str, str | None], bullet: str = "") -> list[str]:
    return [f"{bullet}{label}: {text}" for label, text in labels.items() if text]


# ---- the rewrites -----------------------------------------------------------------------------------------------
def definitions(system: str, labels: dict[str, str | None]) -> str:
    """One ``label: definition`` line per defined label, in place of the old definition lines (else at the end)."""
    block = _definition_block(labels)
    if not block:
        return system
    head, _, tail = _split(system, labels)
    return _join(head, block, tail)


def definitions_bulleted(system: str, labels: dict[str, str | None]) -> str:
    """The definition lines as a bulleted list."""
    head, middle, tail = _split(system, labels)
    return _join(head, _definition_block(labels, "- "), tail) if middle else system


def labels_only(system: str, labels: dict[str, str | None]) -> str:
    """The definition lines replaced by one line naming the labels."""
    head, middle, tail = _split(system, labels)
    return _join(head, [f"Labels: {', '.join(labels)}."], tail) if middle else system


def format_label_only(system: str, labels: dict[str, str | None]) -> str:
    """Ends with: answer with the label only, one of the list."""
    return _join([system, f"Answer with the label only, one of: {', '.join(labels)}."])


def format_exact_word(system: str, labels: dict[str, str | None]) -> str:
    """Ends with: exactly one word from the list, spelled as written."""
    return _join([system, f"Reply with exactly one word from this list, spelled as written: {' | '.join(labels)}."])


def format_nothing_else(system: str, labels: dict[str, str | None]) -> str:
    """Ends with: the whole answer is the label."""
    return _join([system, "Your whole answer is the label: no explanation, no punctuation, nothing else."])


def order_task_last(system: str, labels: dict[str, str | None]) -> str:
    """The task text (before the definitions) moved after them, nearest the answer."""
    head, middle, tail = _split(system, labels)
    return _join(middle, tail, head) if middle and any(line.strip() for line in head) else system


def order_definitions_first(system: str, labels: dict[str, str | None]) -> str:
    """The definition lines first, then the rest of the text."""
    head, middle, tail = _split(system, labels)
    return _join(middle, head, tail) if middle and any(line.strip() for line in head) else system


def order_steps(system: str, labels: dict[str, str | None]) -> str:
    """Starts with the steps to follow, in order."""
    steps = ["Follow these steps:", "1. Read the whole input.", "2. Find the main request.",
             "3. Pick the label whose definition fits that request best.", "4. Answer with that label only."]
    return _join(steps, [system])


REWRITES: dict[str, Rewrite] = {
    "definitions": definitions, "definitions_bulleted": definitions_bulleted, "labels_only": labels_only,
    "format_label_only": format_label_only, "format_exact_word": format_exact_word,
    "format_nothing_else": format_nothing_else, "order_task_last": order_task_last,
    "order_definitions_first": order_definitions_first, "order_steps": order_steps,
}
"""The rewrite library, by name (see the module docstring)."""


def instruction_candidates(base: Candidate, labels: Labels | None = None, *,
                           rewrites: Sequence[str] | None = None) -> list[Candidate]:
    """Candidates whose system text is the base's rewritten by each rewrite of the library (no model call).

    Args:
        base: the candidate to start from (examples, template and model kept).
        labels: the label names, or a mapping label → definition (which the ``definitions`` rewrite writes in);
            default: the prompt's ``output.labels``, else its ``metadata.labels``.
        rewrites: names from `REWRITES` (all of them by default).

    Returns:
        One candidate per rewrite that changed the text (``instruction:<rewrite>``), duplicates left out.

    Raises:
        ArgumentError: an unknown rewrite name, or no labels known.
    """
    names = list(REWRITES) if rewrites is None else list(rewrites)
    unknown = [name for name in names if name not in REWRITES]
    if unknown:
        raise ArgumentError(f"unknown instruction rewrites {unknown!r}; choose from {list(REWRITES)!r}.")
    defined = label_definitions(base, labels)
    seen, out = {base.prompt.system}, []
    for name in names:
        text = REWRITES[name](base.prompt.system, defined)
        if text in seen:
            continue
        seen.add(text)
        out.append(derive(base, f"instruction:{name}", "instruction", f"instruction rewrite {name}", system=text))
    return out


# ---- the LLM proposer ---------------------------------------------------------------------------------------------
PROPOSER_SYSTEM = normalize_text("""
You improve the system instructions of a prompt that a smaller model follows to label inputs.
You see the current instructions, the labels, inputs the model labelled wrongly with the current instructions,
and, when given, instructions tried before with their accuracy (lowest first).
Write new instructions that would make the model answer these inputs correctly without hurting others: clarify
the label definitions where the errors show confusion, say how to decide between close labels, keep the
instructions short, keep every label name exactly as written, and keep any rule about treating the input as data.
Do not mention the example inputs themselves. Write each set of instructions inside <instruction> and
</instruction>, and nothing else.
""")


def failure_rows(failures: Results | pd.DataFrame | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The wrongly answered cases as ``{input, expected, output}``: rows whose ``passed`` is False when the rows
    have that column (a failed call's answer is shown as ``(no answer)``).

    Raises:
        ArgumentError: rows without ``input`` and ``expected``.
    """
    frame = failures.df if isinstance(failures, Results) else pd.DataFrame(list(failures)) \
        if not isinstance(failures, pd.DataFrame) else failures
    missing = {"input", "expected"} - set(frame.columns)
    if missing and len(frame):
        raise ArgumentError(f"failures need the columns input and expected (missing {sorted(missing)}); pass the "
                            "Results of a run, its .df, or dicts with input, expected and output.")
    if "passed" in frame.columns:
        frame = frame[frame["passed"].fillna(False).astype(bool) == False]  # noqa: E712 — NA (no score) counts as wrong
    rows = []
    for record in frame.to_dict("records"):
        output = record.get("output")
        rows.append({"input": record["input"], "expected": record["expected"],
                     "output": "(no answer)" if output is None or output is pd.NA or output != output else output})
    return rows


def proposer_request(base: Candidate, labels: Sequence[str], failures: list[dict[str, Any]], n: int,
                     history: Sequence[tuple[str, float]] = ()) -> str:
    """The proposer's user message: current instructions, labels, past attempts (lowest first), the failures."""
    parts = [f"Current instructions:\n<current>\n{base.prompt.system}\n</current>", f"Labels: {', '.join(labels)}"]
    if history:
        tried = sorted(history, key=lambda item: item[1])
        parts.append("Instructions tried before, with accuracy:\n" + "\n".join(
            f"<tried accuracy=\"{score:.1%}\">\n{text}\n</tried>" for text, score in tried))
    shown = "\n".join(f"- input: {_flat(row['input'])}\n  expected: {row['expected']}\n  model answered: "
                      f"{_flat(row['output'])}" for row in failures)
    parts.append(f"Inputs the model got wrong:\n{shown}" if failures else "The model got no input wrong.")
    parts.append(f"Write {n} different new instructions, each inside <instruction></instruction>.")
    return "\n\n".join(parts)


def _flat(value: Any, limit: int = 400) -> str:
    text = "; ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def parse_proposals(text: str, n: int) -> list[str]:
    """The texts inside ``<instruction>…</instruction>``, normalised, empty and repeated ones dropped, at most n."""
    out: list[str] = []
    for found in re.findall(r"<instruction>(.*?)</instruction>", text or "", flags=re.S | re.I):
        proposal = normalize_text(textwrap.dedent(found)).strip()
        if proposal and proposal not in out:
            out.append(proposal)
    return out[:n]


def propose_instructions(base: Candidate, failures: Results | pd.DataFrame | Iterable[Mapping[str, Any]],
                         proposer_model: Any, n: int = 4, *, labels: Sequence[str] | None = None,
                         history: Sequence[tuple[str, float]] = (), max_failures: int = 12, seed: int | None = None,
                         temperature: float = 1.0, max_tokens: int = 2048, **run_options: Any) -> list[Candidate]:
    """New system instructions written by a model from the current failures (OPRO/APE style): one call.

    Args:
        base: the candidate whose system text is rewritten (examples, template and model kept).
        failures: the base's wrongly answered cases: the `Results` of a run (rows with ``passed`` False are used),
            its ``.df``, or dicts with ``input``, ``expected``, ``output``. Only search cases belong here: never
            the confirmation cases.
        proposer_model: the model that writes (a hosted model id, or a `Provider`).
        n: how many instructions to ask for.
        labels: the label names; default the prompt's declared labels.
        history: ``(instructions, accuracy)`` tried before, shown lowest first.
        max_failures: show at most this many failures (the first ones).
        seed: sent as the request's seed where the provider has one (the response cache keys on it too); a new
            seed asks again instead of reusing the cached proposals. None sends none (Anthropic has no seed).
        temperature, max_tokens: the proposer call's sampling.
        **run_options: passed to `pl.run` (``providers``, ``budget``, ``cache``, ``progress`` …).

    Returns:
        Up to ``n`` candidates ``proposer:<i>``; none when the call failed (logged) or gave nothing usable.
    """
    if not isinstance(n, int) or n < 1:
        raise ArgumentError(f"n must be a whole number >= 1, got {n!r}.")
    names = list(label_definitions(base, labels))
    rows = failure_rows(failures)[:max_failures]
    meta = Prompt(name=f"{base.prompt.name}-proposer", version="1", model=_model_name(proposer_model),
                  temperature=temperature, max_tokens=max_tokens, system=PROPOSER_SYSTEM, seed=seed)
    suite = Suite("instruction-proposer", [Case(id="propose", input=proposer_request(base, names, rows, n,
                                                                                     history))])
    # the one call is scored only for having a tagged instruction; a failed call stays a row (max_error_rate=1)
    options = {"progress": False, "max_error_rate": 1.0, "scorer": Regex(r"<instruction>"), **run_options}
    results = run(suite, {"proposer": meta}, proposer_model, **options)
    row = results.df.iloc[0]
    if pd.isna(row["output"]):
        logger.warning("the instruction proposer call to %s failed (%s); no proposals this round.",
                       row["model"], row["error_type"])
        return []
    candidates, seen = [], {base.prompt.system}
    for number, text in enumerate(parse_proposals(row["output"], n)):
        if text in seen:
            continue
        seen.add(text)
        candidates.append(derive(base, f"proposer:{number}", "proposer",
                                 f"proposer rewrite {number} by {row['model']} from {len(rows)} failures",
                                 system=text))
    return candidates


def _model_name(model: Any) -> str:
    return model if isinstance(model, str) else str(getattr(model, "model_name", None) or "proposer")
