"""The production checklist, and the monitoring and fallback configs it reads.

The article's checklist, each item evaluated from recorded evidence and configuration (never asserted):

============ ========================================================================================
item         passes when
============ ========================================================================================
suite        the latest suite eval ran ≥ ``min_cases`` cases covering happy path, edge and adversarial
accuracy     its accuracy (no verdict counts as a failure) is at or over ``min_accuracy``; scored by an LLM judge:
             the judge's card has Cohen's κ ≥ ``min_judge_agreement``
format       format compliance ≥ ``min_format_compliance`` for structured output: the rows' ``format_ok`` when the
             prompt declares its ``output:``, else answers checked against ``output_format`` (n/a for free text)
latency      its p95 latency is within the SLA ``max_p95_latency_s``
cost         its cost per call is within the budget ``max_cost_per_call_usd`` (unknown cost fails)
pinned       the model is a dated snapshot, not a floating alias (`promptlab.providers._pinning`)
monitoring   ``configs/monitoring.yaml`` has at least one alert rule that applies to the prompt (read by
             `promptlab.production._alertrules.load_alert_rules`, the alerting's own reader)
fallback     ``configs/fallbacks.yaml`` defines what happens when the prompt's call fails
changelog    the version is registered, unchanged since, with a changelog entry of its own
review       a named reviewer who is not an author approved this version
============ ========================================================================================

The evidence items (suite to cost) read the latest *suite* eval of the version — evidence of kind ``eval`` or
``comparison``; shadow and canary traffic is the staging gate's evidence. Thresholds: ``configs/gates.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from .._yaml import load_model
from ..authoring._prompt import Prompt
from ..errors import RegistryError, UnknownNameError
from ..production._alertrules import AlertRules, RuleSpec, load_alert_rules
from ..providers._pinning import pin_status
from ._lifecycle import (
    JUDGE_NEEDED,
    EvalSummary,
    HistoryEvent,
    Thresholds,
    format_basis,
    format_failures,
    format_gated,
    format_what,
    judge_failures,
)

Status = Literal["pass", "fail", "n/a"]

# ---- configs/monitoring.yaml and configs/fallbacks.yaml ---------------------------------------------------
class Fallback(BaseModel):
    """What production does when a prompt's call fails: other models in order, a fixed answer, a human."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[str, ...] = ()
    default_output: str | None = None
    escalate: bool = False
    notes: str = ""

    @property
    def defined(self) -> bool:
        """Whether the entry says what to do at all."""
        return bool(self.models) or self.default_output is not None or self.escalate

    def describe(self) -> str:
        """The chain in words: ``models a → b, then 'neutral'``."""
        steps = [f"models {' → '.join(self.models)}"] if self.models else []
        steps += [f"answer {self.default_output!r}"] if self.default_output is not None else []
        steps += ["escalate to a human"] if self.escalate else []
        return ", then ".join(steps) or "nothing"


class FallbackConfig(BaseModel):
    """``configs/fallbacks.yaml``: the fallback of each prompt, by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompts: dict[str, Fallback] = Field(default_factory=dict)


def load_monitoring(path: str | Path) -> AlertRules:
    """Read ``configs/monitoring.yaml`` with the alerting's own reader (`load_alert_rules`: one schema for the
    checklist and for the alerts); no rules when the file is missing.

    Raises:
        AlertConfigError: the file is unreadable or a rule is invalid (the message names the line and the keys).
    """
    path = Path(path)
    return load_alert_rules(path) if path.exists() else AlertRules()


def load_fallbacks(path: str | Path) -> FallbackConfig:
    """Read ``configs/fallbacks.yaml`` (no fallbacks when the file is missing); every problem listed at once."""
    return load_model(path, FallbackConfig, RegistryError, "fallbacks file", missing_ok=True)


# ---- the checklist ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckItem:
    """One checklist line: its key, the article's wording, pass / fail / n/a, why, and what would fix it."""

    key: str
    title: str
    status: Status
    reason: str
    needed: str = ""

    @property
    def ok(self) -> bool:
        """Passed or not applicable."""
        return self.status != "fail"


class Checklist:
    """The production checklist of one prompt version: one `CheckItem` per article item.

    Args:
        ref: the version checked (``name@version``).
        items: the evaluated items, in the article's order.
    """

    def __init__(self, ref: str, items: tuple[CheckItem, ...]):
        self.ref = ref
        self.items = tuple(items)

    @property
    def passed(self) -> bool:
        """Whether every item passes (n/a counts as passing)."""
        return all(item.ok for item in self.items)

    @property
    def failures(self) -> tuple[CheckItem, ...]:
        """The items that fail."""
        return tuple(item for item in self.items if not item.ok)

    def __getitem__(self, key: str) -> CheckItem:
        for item in self.items:
            if item.key == key:
                return item
        raise UnknownNameError(f"no checklist item {key!r}; the items are {[i.key for i in self.items]!r}")

    def __iter__(self) -> Iterator[CheckItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def to_frame(self) -> pd.DataFrame:
        """One row per item: key, title, status, reason, needed."""
        return pd.DataFrame([vars(item) for item in self.items], columns=["key", "title", "status", "reason",
                                                                          "needed"])

    def text(self) -> str:
        """Plain text, one line per item (terminals and CI logs)."""
        mark = {"pass": "PASS", "fail": "FAIL", "n/a": "n/a "}
        lines = [f"production checklist for {self.ref}:"]
        for item in self.items:
            lines.append(f"  [{mark[item.status]}] {item.title}: {item.reason}")
            lines += [f"         needed: {item.needed}"] if not item.ok and item.needed else []
        return "\n".join(lines)

    def __repr__(self) -> str:
        ok = sum(item.ok for item in self.items)
        tail = "all pass" if self.passed else f"failing: {', '.join(i.key for i in self.failures)}"
        return f"Checklist({self.ref}: {ok}/{len(self.items)} pass — {tail})"

    def _repr_html_(self) -> str:
        from .._display import checklist_html

        return checklist_html(self)


@dataclass(frozen=True)
class Facts:
    """Everything the checklist reads about one version: evidence, history and configuration."""

    prompt: Prompt
    thresholds: Thresholds
    eval: EvalSummary | None
    registered: HistoryEvent | None
    intact: bool
    review: HistoryEvent | None
    rules: tuple[RuleSpec, ...]
    fallback: Fallback | None


def build_checklist(facts: Facts) -> Checklist:
    """Evaluate every item of the production checklist from ``facts``."""
    items = (_suite(facts), _accuracy(facts), _format(facts), _latency(facts), _cost(facts), _pinned(facts),
             _monitoring(facts), _fallback(facts), _changelog(facts), _review(facts))
    return Checklist(facts.prompt.ref, items)


def _item(key: str, title: str, ok: bool, reason: str, needed: str) -> CheckItem:
    return CheckItem(key, title, "pass" if ok else "fail", reason, "" if ok else needed)


_EVAL_NEEDED = "attach an eval of this version on its suite (evidence=results; CLI: --evidence results.parquet)"


def _no_eval(key: str, title: str) -> CheckItem:
    return CheckItem(key, title, "fail", "no eval evidence is attached to this version", _EVAL_NEEDED)


def _suite(f: Facts) -> CheckItem:
    title, t = "Test suite with 50+ cases: happy path, edge, adversarial", f.thresholds
    if f.eval is None:
        return _no_eval("suite", title)
    missing = [c for c in t.required_categories if not f.eval.categories.get(c)]
    counts = ", ".join(f"{k} {v}" for k, v in f.eval.categories.items())
    ok = f.eval.cases >= t.min_cases and not missing
    reason = f"{f.eval.cases} cases ({counts})" + (f"; missing {missing!r}" if missing else "")
    return _item("suite", title, ok, reason, f"an eval on ≥ {t.min_cases} cases covering "
                                             f"{', '.join(t.required_categories)}: add cases to the suite and re-run")


def _accuracy(f: Facts) -> CheckItem:
    title, t = "Accuracy above threshold on the test suite", f.thresholds
    if f.eval is None:
        return _no_eval("accuracy", title)
    e = f.eval
    reason = (f"{e.accuracy:.1%} [95% CI {e.ci_low:.1%}, {e.ci_high:.1%}] on {e.calls} calls "
              f"(threshold {t.min_accuracy:.0%}; {e.no_verdict} without verdict)")
    if t.evidence_model == "pinned" and not e.on_pinned_model:
        return _item("accuracy", title, False, reason + f"; measured on {list(e.models)!r}, not the pinned "
                     f"{f.prompt.model!r}", f"an eval on the pinned model {f.prompt.model!r}")
    judged = judge_failures(e, t)  # judge scores count only from a calibrated judge
    if judged:
        return _item("accuracy", title, False, reason + "; " + "; ".join(judged), JUDGE_NEEDED)
    return _item("accuracy", title, e.accuracy >= t.min_accuracy, reason,
                 f"accuracy ≥ {t.min_accuracy:.0%}: improve the prompt (a new version) and re-run the eval")


def _format(f: Facts) -> CheckItem:
    title, t = "Format compliance at 99%+", f.thresholds
    if not format_gated(f.eval, t):
        return CheckItem("format", title, "n/a", "free-text output (no output: in the prompt, output_format: text "
                                                 "in configs/gates.yaml)")
    if f.eval is None:
        return _no_eval("format", title)
    failures = format_failures(f.eval, t)
    what = format_what(f.eval, t)
    reason = failures[0] if failures else f"{what} compliance {f.eval.format_compliance:.1%}{format_basis(f.eval)}"
    return _item("format", title, not failures, reason, f"{what} format compliance ≥ "
                                                        f"{t.min_format_compliance:.0%} in the eval")


def _latency(f: Facts) -> CheckItem:
    title, t = "Latency p95 within SLA", f.thresholds
    if f.eval is None:
        return _no_eval("latency", title)
    p95 = f.eval.p95_latency_s
    if p95 is None:
        return _item("latency", title, False, "no uncached call in the eval, so p95 is unknown",
                     "an eval with live (uncached) calls: run with cache=False")
    return _item("latency", title, p95 <= t.max_p95_latency_s, f"p95 {p95:.3f} s (SLA {t.max_p95_latency_s:g} s)",
                 f"p95 ≤ {t.max_p95_latency_s:g} s: fewer tokens, a faster model, or a new SLA in gates.yaml")


def _cost(f: Facts) -> CheckItem:
    title, t = "Cost per call within budget", f.thresholds
    if t.max_cost_per_call_usd is None:
        return _item("cost", title, False, "no budget set", "max_cost_per_call_usd in configs/gates.yaml")
    if f.eval is None:
        return _no_eval("cost", title)
    cost = f.eval.cost_per_call_usd
    if cost is None:
        return _item("cost", title, False, "cost per call unknown (an unpriced model or no answer)",
                     "a price for the model: pl.evaluation.set_price(...) or the price table, then re-run the eval")
    return _item("cost", title, cost <= t.max_cost_per_call_usd,
                 f"${cost:.5f} per call (budget ${t.max_cost_per_call_usd:g})",
                 f"≤ ${t.max_cost_per_call_usd:g} per call: fewer tokens or a cheaper model")


def _pinned(f: Facts) -> CheckItem:
    check = pin_status(f.prompt.model)
    hint = f" such as {check.suggestion!r}" if check.suggestion else ""
    return _item("pinned", "Model version pinned", check.pinned, f"{f.prompt.model}: {check.reason}",
                 f"a dated snapshot id{hint} in the prompt's `model:` (as a new version)")


def _monitoring(f: Facts) -> CheckItem:
    title = "Monitoring and alerts configured"
    text = "; ".join(rule.describe() for rule in f.rules)
    return _item("monitoring", title, bool(f.rules), f"rules: {text}" if f.rules else "no alert rule applies",
                 "alert rules for the prompt in configs/monitoring.yaml (success_rate, format_failure_rate, "
                 "p95_latency_ms, quality_score)")


def _fallback(f: Facts) -> CheckItem:
    title = "Fallback behavior defined"
    fb = f.fallback
    if fb is None or not fb.defined:
        return _item("fallback", title, False, "no fallback for this prompt",
                     f"an entry for {f.prompt.name!r} in configs/fallbacks.yaml (models, default_output or "
                     "escalate)")
    floating = [m for m in fb.models if not pin_status(m).pinned]
    return _item("fallback", title, not floating, fb.describe() + (f"; floating: {floating!r}" if floating else ""),
                 "dated snapshot ids for the fallback models")


def _changelog(f: Facts) -> CheckItem:
    title, p = "Prompt versioned with changelog", f.prompt
    entry = next((e for e in p.changelog if e.version == p.version), None)
    if f.registered is None:
        return _item("changelog", title, False, f"{p.ref} is not registered", f"registry.register({p.ref!r})")
    if not f.intact:
        return _item("changelog", title, False, "the file changed after registration (hash differs)",
                     "restore the registered file, or register the change as a new version")
    return _item("changelog", title, entry is not None,
                 f"registered by {f.registered.actor} at {f.registered.at}" + (f": {entry.changes}" if entry else ""),
                 f"a changelog entry for version {p.version}")


def authors(prompt: Prompt, registered: HistoryEvent | None) -> set[str]:
    """Who wrote a version: its changelog entry's author and whoever registered it."""
    names = {e.author for e in prompt.changelog if e.version == prompt.version and e.author}
    return names | ({registered.actor} if registered else set())


def _review(f: Facts) -> CheckItem:
    title = "Reviewed by a second person"
    writers = authors(f.prompt, f.registered)
    who = f.review.reviewer if f.review else None
    if not who:
        return _item("review", title, False, "no review approval recorded",
                     f"promote({f.prompt.ref!r}, to='review', reviewer='<not an author>')")
    ok = who.casefold() not in {a.casefold() for a in writers}
    return _item("review", title, ok, f"approved by {who} at {f.review.at}" + ("" if ok else " (an author)"),
                 "approval by someone who is not an author")
