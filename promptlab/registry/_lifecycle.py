"""The lifecycle of a prompt version: its states, the moves between them, and the gate on each move.

The article's flowchart, as the only moves the registry allows::

    draft ──▶ test ──▶ review ──▶ staging ──▶ production ──▶ optimize ──▶ test …
      ▲        │         │           │
      └────────┴─────────┴───────────┘   failed / changes needed: back to draft

A version's state is the last stage it entered; entering a stage needs its gate:

=========== ======================================================================================
gate        what lets a version in
=========== ======================================================================================
test        an attached eval of this exact version (its content hash) on its suite: accuracy at or over
            the threshold, and ≥ 99% format compliance when the output is structured (the prompt declares its
            ``output:``, or ``output_format`` in configs/gates.yaml says so); when an LLM judge scored it, a
            judge card for that judge with Cohen's κ ≥ ``min_judge_agreement``
review      approval by a named reviewer who is not the author
staging     recorded shadow or canary evidence without regression against what is live (judge-scored
            evidence: calibrated judges, as for test)
production  every item of the production `Checklist` (see `promptlab.registry._checklist`)
=========== ======================================================================================

Moves back (to ``draft`` from test, review or staging; to ``optimize`` from production) have no gate but
need a reason. Thresholds come from ``configs/gates.yaml`` (`GatePolicy`). Evidence is summarised once, when
it is attached, into an `Evidence` record (numbers only, plus an optional Parquet copy of the rows), so a
pull request shows what a promotion was based on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .._yaml import load_model, load_yaml, read_text, require_mapping
from ..authoring._prompt import Prompt
from ..errors import RegistryError
from ._evidence import EVIDENCE_KINDS, LIVE_KINDS, SUITE_KINDS, ComparisonRow, EvalSummary, Evidence

STATES = ("draft", "test", "review", "staging", "production", "optimize")
ENVIRONMENTS = ("staging", "production")
GATES = ("test", "review", "staging", "production")
FORWARD: dict[str, tuple[str, ...]] = {"test": ("draft", "optimize"), "review": ("test",),
                                       "staging": ("review",), "production": ("staging",)}
"""Gated moves: target state → the states it may be entered from."""
BACKWARD: dict[str, tuple[str, ...]] = {"draft": ("test", "review", "staging"), "optimize": ("production",)}
"""Moves back (no gate, a reason required): target state → the states it may be entered from."""


def allowed_moves(state: str) -> tuple[str, ...]:
    """The states a version in ``state`` may move to."""
    moves = {**FORWARD, **BACKWARD}
    return tuple(target for target in STATES if state in moves.get(target, ()))


def check_move(ref: str, state: str, to: str) -> None:
    """Raise `RegistryError` unless the lifecycle allows ``state → to``."""
    if to not in STATES:
        raise RegistryError(f"unknown lifecycle state {to!r} for {ref}; the states are {list(STATES)!r}.")
    if to not in allowed_moves(state):
        options = ", ".join(allowed_moves(state)) or "none"
        raise RegistryError(f"{ref} is in {state!r} and cannot move to {to!r}; from {state!r} it may move to: "
                            f"{options}. The path is draft → test → review → staging → production.")


# ---- thresholds (configs/gates.yaml) ------------------------------------------------------------------------
class Thresholds(BaseModel):
    """What the gates and the checklist require of one prompt (``defaults`` merged with its own entry)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_accuracy: float = Field(default=0.85, ge=0.0, le=1.0)
    output_format: Literal["text", "json", "labels"] = "text"
    min_format_compliance: float = Field(default=0.99, ge=0.0, le=1.0)
    min_cases: int = Field(default=50, ge=0)
    required_categories: tuple[str, ...] = ("happy_path", "edge_case", "adversarial")
    max_p95_latency_s: float = Field(default=5.0, gt=0)
    max_cost_per_call_usd: float | None = Field(default=0.01, ge=0)
    evidence_model: Literal["pinned", "any"] = "pinned"
    min_judge_agreement: float = Field(default=0.6, ge=-1.0, le=1.0)

    @property
    def structured(self) -> bool:
        """Whether the output has a format to check (JSON, or one label of a set)."""
        return self.output_format != "text"


class GatePolicy(BaseModel):
    """``configs/gates.yaml``: default thresholds and per-prompt overrides (by prompt name).

    Each entry holds only the thresholds it changes: a prompt's entry over the defaults over the built-in values.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: Thresholds = Field(default_factory=Thresholds)
    prompts: dict[str, Thresholds] = Field(default_factory=dict)

    def for_prompt(self, name: str) -> Thresholds:
        """The thresholds of prompt ``name``: its entry over the defaults over the built-in values."""
        entry = self.prompts.get(name)
        changed = entry.model_dump(exclude_unset=True) if entry is not None else {}
        return Thresholds.model_validate({**self.defaults.model_dump(exclude_unset=True), **changed})


def load_policy(path: str | Path) -> GatePolicy:
    """Read ``configs/gates.yaml`` (built-in thresholds when the file is missing); every problem listed at once."""
    return load_model(path, GatePolicy, RegistryError, "gate thresholds file", missing_ok=True)


def read_config(path: Path, what: str) -> dict[str, Any]:
    """A YAML mapping from a config file (read strictly: `promptlab._yaml`); ``{}`` when the file does not
    exist."""
    if not path.exists():
        return {}
    text = read_text(path, RegistryError, f"the {what} file")
    data = load_yaml(text, str(path), RegistryError).data
    if data is None:
        return {}
    require_mapping(data, str(path), f"{what} file", RegistryError, "Restore it from git or start it with a key.")
    return data


# ---- gates --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GateResult:
    """A gate's verdict on one move: passed or not, what failed, and what would satisfy it."""

    gate: str
    ref: str
    passed: bool
    failures: tuple[str, ...] = ()
    needed: tuple[str, ...] = ()
    details: Any = field(default=None, compare=False)

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else f"refused: {'; '.join(self.failures)}"
        return f"GateResult({self.gate!r} gate for {self.ref}: {verdict})"

    def _repr_html_(self) -> str:
        from .._display import gate_html

        return gate_html(self)


def latest(evidence: Sequence[Evidence], kinds: Iterable[str] = EVIDENCE_KINDS,
           need_eval: bool = False) -> Evidence | None:
    """The most recent record of the given kinds (with an eval summary, if asked)."""
    wanted = set(kinds)
    found = [e for e in evidence if e.kind in wanted and (e.eval is not None or not need_eval)]
    return found[-1] if found else None


def needed_eval(prompt: Prompt, t: Thresholds, suite: str | None) -> str:
    """What an eval must show, in words, with the call that produces it."""
    fmt = (f" and {t.output_format} format compliance ≥ {t.min_format_compliance:.0%}" if t.structured else "")
    model = f" on the pinned model {prompt.model!r}" if t.evidence_model == "pinned" else ""
    where = f" {suite!r}" if suite else " (name it in the prompt's metadata: suite: suites/....yaml)"
    return (f"an eval of {prompt.ref} on its suite{where}{model} with accuracy ≥ {t.min_accuracy:.0%}{fmt}: "
            "results = pl.run(suite, prompt) then evidence=results (CLI: --evidence results.parquet)")


def eval_failures(summary: EvalSummary, prompt: Prompt, t: Thresholds) -> list[str]:
    """Why an eval does not meet the test gate (empty when it does)."""
    failures = []
    if t.evidence_model == "pinned" and not summary.on_pinned_model:
        failures.append(f"the eval ran on {list(summary.models)!r}, not on the pinned model {prompt.model!r}")
    if summary.cases_outside_suite:
        failures.append(f"{summary.cases_outside_suite} evaluated case(s) are not in the prompt's suite")
    if not summary.accuracy >= t.min_accuracy:
        failures.append(f"accuracy {summary.accuracy:.1%} [95% CI {summary.ci_low:.1%}, {summary.ci_high:.1%}] "
                        f"on {summary.calls} calls is below the threshold {t.min_accuracy:.0%}")
    failures += format_failures(summary, t)
    failures += judge_failures(summary, t)
    return failures


def judge_failures(summary: EvalSummary | None, t: Thresholds) -> list[str]:
    """Why the LLM judges behind an eval's scores cannot back it: a judge without a judge card, or with Cohen's
    κ against human labels below ``min_judge_agreement`` (empty when no judge scored it, or all are calibrated)."""
    if summary is None or not summary.judges:
        return []
    from ..evaluation._calibration import card_failures

    return card_failures(summary.judges, t.min_judge_agreement)


JUDGE_NEEDED = ("a judge card at Cohen's κ ≥ min_judge_agreement (configs/gates.yaml) for every judge that scored "
                "the eval: label cases (pl.view or a labelled set), then pl.evaluation.calibrate(results, labels, "
                "judge); or a better judge (rubric, model) calibrated the same way")


def format_gated(summary: EvalSummary | None, t: Thresholds) -> bool:
    """Whether format compliance is gated: the policy says the output is structured, or the prompt declares its
    ``output:`` (the eval's rows carry ``format_ok``) — structured output either way."""
    return t.structured or (summary is not None and summary.format_source == "format_ok")


def format_what(summary: EvalSummary, t: Thresholds) -> str:
    """``declared output`` (the rows' verdicts) or the policy's ``output_format``."""
    return "declared output" if summary.format_source == "format_ok" else t.output_format


def format_basis(summary: EvalSummary) -> str:
    """`` (95% CI 92.7%, 99.8%; 74 answers, 0 failed calls left out)``: what a compliance is made of, when known."""
    parts = []
    if summary.format_ci_low is not None and summary.format_ci_high is not None:
        parts.append(f"95% CI {summary.format_ci_low:.1%}, {summary.format_ci_high:.1%}")
    if summary.format_answers is not None:
        parts.append(f"{summary.format_answers} answers, {summary.format_failed_calls} failed calls left out")
    return f" ({'; '.join(parts)})" if parts else ""


def format_failures(summary: EvalSummary, t: Thresholds) -> list[str]:
    """Why the format compliance of an eval falls short (empty when it is not gated or when it passes)."""
    if not format_gated(summary, t):
        return []
    what = format_what(summary, t)
    if summary.format_compliance is None and summary.format_source is not None:
        return [f"no answer has a {what} format verdict: all {summary.format_failed_calls} calls failed"]
    if summary.format_source != "format_ok" and (summary.output_format != t.output_format
                                                 or summary.format_compliance is None):
        return [f"the eval measured format {summary.output_format!r}, the policy needs {t.output_format!r}"]
    if not summary.format_compliance >= t.min_format_compliance:
        return [f"{what} format compliance {summary.format_compliance:.1%} is below {t.min_format_compliance:.0%}"
                + format_basis(summary)]
    return []


def gate_test(prompt: Prompt, evidence: Sequence[Evidence], t: Thresholds, suite: str | None) -> GateResult:
    """The test gate: the latest suite eval of this version meets the accuracy (and format) thresholds."""
    record = latest(evidence, SUITE_KINDS, need_eval=True)
    if record is None:
        return GateResult("test", prompt.ref, False, (f"no eval evidence is attached to {prompt.ref}",),
                          (needed_eval(prompt, t, suite),))
    failures = tuple(eval_failures(record.eval, prompt, t))
    judged = judge_failures(record.eval, t)
    needed = (needed_eval(prompt, t, suite),) if len(failures) > len(judged) else ()
    needed += (JUDGE_NEEDED,) if judged else ()
    return GateResult("test", prompt.ref, not failures, failures, needed, details=record)


def gate_review(prompt: Prompt, reviewer: str | None, authors: Iterable[str]) -> GateResult:
    """The review gate: a named reviewer who is not one of the authors approves."""
    authors = sorted({a for a in authors if a})
    needed = (f"approval by a named reviewer who is not the author ({', '.join(map(repr, authors)) or 'unknown'}):"
              f" promote({prompt.ref!r}, to='review', reviewer='<name>') (CLI: --reviewer NAME)",)
    if not reviewer or not reviewer.strip():
        return GateResult("review", prompt.ref, False, ("no reviewer was named",), needed)
    if reviewer.strip().casefold() in {a.casefold() for a in authors}:
        return GateResult("review", prompt.ref, False, (f"reviewer {reviewer!r} is an author of {prompt.ref}",),
                          needed)
    return GateResult("review", prompt.ref, True)


def gate_staging(prompt: Prompt, evidence: Sequence[Evidence], t: Thresholds) -> GateResult:
    """The staging gate: the latest shadow or canary evidence shows no regression."""
    needed = (f"shadow or canary evidence for {prompt.ref} without regression: results of the candidate beside "
              "the live version on the same traffic, attached with kind='shadow' or 'canary' "
              "(CLI: --evidence shadow.parquet --kind shadow), or a Comparison with no 'worse' verdict",)
    record = latest(evidence, LIVE_KINDS)
    if record is None:
        return GateResult("staging", prompt.ref, False, (f"no shadow or canary evidence for {prompt.ref}",), needed)
    failures = [f"{record.kind}: {r.verdict} than {r.baseline_ref or r.baseline} on {r.model} "
                f"({points(r)}, p_adj {r.p_adj:.3g})" for r in record.comparison if r.verdict == "worse"]
    judged = judge_failures(record.eval, t)
    failures += judged
    if not record.comparison:
        if record.eval is None:
            failures.append(f"the {record.kind} evidence has neither a comparison nor an eval summary")
        elif not record.eval.accuracy >= t.min_accuracy:
            failures.append(f"{record.kind} accuracy {record.eval.accuracy:.1%} is below {t.min_accuracy:.0%} "
                            "(nothing live to compare with)")
    needed += (JUDGE_NEEDED,) if judged else ()
    return GateResult("staging", prompt.ref, not failures, tuple(failures), needed if failures else (),
                      details=record)


def points(row: ComparisonRow) -> str:
    """A comparison row's difference: points for pass rates, the raw difference for scores."""
    return f"{100 * row.diff:+.1f} points" if row.metric == "passed" else f"{row.diff:+.3g}"


def refusal_message(result: GateResult, state: str, to: str) -> str:
    """The `GateRefused` message: the move, the gate, what failed, and what would satisfy it."""
    lines = [f"{result.ref} cannot move {state} → {to}: the {result.gate} gate refused."]
    lines += [f"  failed: {f}" for f in result.failures]
    lines += [f"  needed: {n}" for n in result.needed]
    return "\n".join(lines)


# ---- the history and what it implies ------------------------------------------------------------------------
class HistoryEvent(BaseModel):
    """One line of ``configs/history.jsonl``: who did what to which version, when, from what to what, why.

    ``action`` is ``register`` (a new immutable version, with its file and hashes), ``move`` (a lifecycle
    move; moves into staging or production also move that environment's alias, ``from_version`` →
    ``to_version``), ``evidence`` (evidence attached without a move) or ``rollback`` (an alias moved back).
    ``prev_hash`` and ``hash`` chain the lines so that a hand edit is detected (`promptlab.registry._store`);
    events written before chaining have neither.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=1)
    at: str
    actor: str
    action: Literal["register", "move", "evidence", "rollback"]
    prompt: str
    version: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    env: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    evidence: tuple[str, ...] = ()
    reviewer: str | None = None
    reason: str = ""
    file: str | None = None
    content_hash: str | None = None
    definition_hash: str | None = None
    prev_hash: str | None = None
    hash: str | None = None

    def __repr__(self) -> str:
        what = {"register": f"registered {self.prompt}@{self.version}",
                "move": f"{self.prompt}@{self.version} {self.from_state} → {self.to_state}",
                "evidence": f"evidence for {self.prompt}@{self.version}",
                "rollback": f"{self.prompt} {self.env} {self.from_version} → {self.to_version} (rollback)"}
        return f"HistoryEvent(#{self.seq} {what[self.action]} by {self.actor!r} at {self.at})"


Key = tuple[str, str]


@dataclass(frozen=True)
class Ledger:
    """What the history implies: registrations, states, evidence, reviews, and each alias's deployments.

    ``deployed[(name, env)]`` is a stack: a move into ``env`` pushes the version, a rollback pops it, so the
    top is what is live and the one below is what a rollback returns to.
    """

    registered: dict[Key, HistoryEvent]
    states: dict[Key, str]
    evidence: dict[Key, tuple[str, ...]]
    reviews: dict[Key, HistoryEvent]
    deployed: dict[Key, tuple[str, ...]]
    order: tuple[Key, ...]

    def state(self, name: str, version: str) -> str | None:
        """The lifecycle state of a version (None when it was never registered)."""
        return self.states.get((name, version))

    def live(self, env: str) -> dict[str, str]:
        """``{prompt name: live version}`` in ``env`` according to the history."""
        return {name: stack[-1] for (name, e), stack in self.deployed.items() if e == env and stack}

    def latest(self, name: str) -> str | None:
        """The most recently registered version of ``name``."""
        versions = [v for n, v in self.order if n == name]
        return versions[-1] if versions else None


def replay(events: Iterable[HistoryEvent]) -> Ledger:
    """Fold the history, oldest first, into a `Ledger`."""
    registered: dict[Key, HistoryEvent] = {}
    states: dict[Key, str] = {}
    evidence: dict[Key, tuple[str, ...]] = {}
    reviews: dict[Key, HistoryEvent] = {}
    deployed: dict[Key, tuple[str, ...]] = {}
    for event in events:
        key = (event.prompt, event.version or "")
        evidence[key] = evidence.get(key, ()) + tuple(event.evidence)
        if event.action == "register":
            registered[key], states[key] = event, "draft"
        elif event.action == "move":
            states[key] = event.to_state or states.get(key, "draft")
            if event.to_state == "review":
                reviews[key] = event
            if event.env:
                deployed[(event.prompt, event.env)] = deployed.get((event.prompt, event.env), ()) + (event.version,)
        elif event.action == "rollback":
            deployed[(event.prompt, event.env)] = _pop_to(deployed.get((event.prompt, event.env), ()),
                                                          event.to_version)
    return Ledger(registered, states, evidence, reviews, deployed, tuple(registered))


def _pop_to(stack: tuple[str, ...], version: str | None) -> tuple[str, ...]:
    """The stack after a rollback to ``version``: everything above its last place below the top is popped."""
    below = stack[:-1]
    for i in range(len(below) - 1, -1, -1):
        if below[i] == version:
            return below[: i + 1]
    return below
