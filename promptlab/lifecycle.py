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
            the threshold, and ≥ 99% format compliance when the output is structured
review      approval by a named reviewer who is not the author
staging     recorded shadow or canary evidence without regression against what is live
production  every item of the production `Checklist` (see `promptlab.checklist`)
=========== ======================================================================================

Moves back (to ``draft`` from test, review or staging; to ``optimize`` from production) have no gate but
need a reason. Thresholds come from ``configs/gates.yaml`` (`GatePolicy`). Evidence is summarised once, when
it is attached, into an `Evidence` record (numbers only, plus an optional Parquet copy of the rows), so a
pull request shows what a promotion was based on.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import EvidenceError, RegistryError
from .prompt import Prompt

STATES = ("draft", "test", "review", "staging", "production", "optimize")
ENVIRONMENTS = ("staging", "production")
GATES = ("test", "review", "staging", "production")
FORWARD: dict[str, tuple[str, ...]] = {"test": ("draft", "optimize"), "review": ("test",),
                                       "staging": ("review",), "production": ("staging",)}
"""Gated moves: target state → the states it may be entered from."""
BACKWARD: dict[str, tuple[str, ...]] = {"draft": ("test", "review", "staging"), "optimize": ("production",)}
"""Moves back (no gate, a reason required): target state → the states it may be entered from."""
EVIDENCE_KINDS = ("eval", "comparison", "shadow", "canary")
LIVE_KINDS = ("shadow", "canary")


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

    @property
    def structured(self) -> bool:
        """Whether the output has a format to check (JSON, or one label of a set)."""
        return self.output_format != "text"


class GatePolicy(BaseModel):
    """``configs/gates.yaml``: default thresholds and per-prompt overrides (by prompt name)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: dict[str, Any] = Field(default_factory=dict)
    prompts: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def for_prompt(self, name: str) -> Thresholds:
        """The thresholds of prompt ``name``: its entry over the defaults over the built-in values."""
        return Thresholds.model_validate({**self.defaults, **self.prompts.get(name, {})})


def load_policy(path: str | Path) -> GatePolicy:
    """Read ``configs/gates.yaml`` (built-in thresholds when the file is missing); validates every entry."""
    data = read_config(Path(path), "gates")
    try:
        policy = GatePolicy.model_validate(data)
        for name in ["", *policy.prompts]:
            policy.for_prompt(name)
    except ValidationError as exc:
        raise RegistryError(f"{path}: invalid gate thresholds: {_first_error(exc)}. Allowed keys: "
                            f"{', '.join(Thresholds.model_fields)}.") from None
    return policy


def read_config(path: Path, what: str) -> dict[str, Any]:
    """A YAML mapping from a config file; ``{}`` when the file does not exist."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RegistryError(f"{path}: the {what} file cannot be read ({exc}). Fix the YAML.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: the {what} file must be a YAML mapping, got {data!r}.")
    return data


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "(file)"
    return f"{where}: {error['msg']} (got {error.get('input')!r})"


# ---- evidence records -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalSummary:
    """The numbers of an eval of one prompt version (rows on the pinned model when there are any).

    ``accuracy`` counts calls with no verdict (failed calls, scoring errors) as failures; ``ci_low`` and
    ``ci_high`` are its Wilson interval. ``format_compliance`` is None for free-text output; latency and
    cost are None when unknown (all answers cached, an unpriced model).
    """

    cases: int
    calls: int
    categories: dict[str, int]
    accuracy: float
    ci_low: float
    ci_high: float
    no_verdict: int
    output_format: str
    format_compliance: float | None
    p95_latency_s: float | None
    cost_per_call_usd: float | None
    models: tuple[str, ...]
    on_pinned_model: bool
    cases_outside_suite: int | None = None


@dataclass(frozen=True)
class ComparisonRow:
    """The candidate against a baseline on one model, from a paired comparison (`promptlab.compare`)."""

    variant: str
    baseline: str
    baseline_ref: str | None
    model: str
    metric: str
    n: int
    diff: float
    ci_low: float
    ci_high: float
    p_adj: float
    verdict: str


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence attached to a prompt version, as stored in ``configs/evidence/<id>.json``."""

    id: str
    kind: str
    prompt: str
    version: str
    content_hash: str
    created: str
    actor: str
    source: str
    eval: EvalSummary | None = None
    comparison: tuple[ComparisonRow, ...] = ()
    rows_file: str | None = None

    @property
    def ref(self) -> str:
        """``name@version`` of the prompt version the evidence is about."""
        return f"{self.prompt}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready record (NaN becomes null)."""
        return _json_ready(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        """Rebuild a record written by `to_dict`."""
        try:
            ev = data.get("eval")
            rows = tuple(ComparisonRow(**_nan_back(r)) for r in data.get("comparison") or ())
            summary = EvalSummary(**{**_nan_back(ev), "models": tuple(ev["models"])}) if ev else None
            return cls(**{**data, "eval": summary, "comparison": rows})
        except (TypeError, KeyError) as exc:
            raise EvidenceError(f"evidence record {data.get('id')!r} does not follow the evidence format "
                                f"({exc}). Attach evidence through the registry.") from None

    def __repr__(self) -> str:
        parts = [f"{self.kind} for {self.ref}"]
        if self.eval:
            parts.append(f"accuracy {self.eval.accuracy:.1%} on {self.eval.cases} cases")
        parts += [f"{r.verdict} vs {r.baseline_ref or r.baseline}" for r in self.comparison]
        return f"Evidence({self.id!r}: {'; '.join(parts)})"


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value


def _nan_back(data: dict[str, Any]) -> dict[str, Any]:
    floats = {"diff", "ci_low", "ci_high", "p_adj", "accuracy"}
    return {k: (float("nan") if v is None and k in floats else v) for k, v in data.items()}


def new_evidence_id(prompt: Prompt, kind: str) -> str:
    """A unique, sortable, file-name-safe id: ``<UTC time>-<name>-<version>-<kind>-<random>``."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{prompt.name}-{prompt.version}")
    return f"{stamp}-{safe}-{kind}-{secrets.token_hex(3)}"


# ---- summarising Results / Comparison objects -------------------------------------------------------------
def evidence_frame(source: Any) -> tuple[pd.DataFrame | None, Any]:
    """The results rows behind ``source`` and the comparison, if it is one: ``(rows, comparison)``."""
    if hasattr(source, "verdicts") and hasattr(source, "baseline"):  # a promptlab Comparison
        rows = getattr(source, "source", None)
        rows = rows if rows is not None else getattr(source, "_source", None)
        return rows, source
    frame = getattr(source, "df", None)
    if isinstance(frame, pd.DataFrame):
        return frame, None
    raise EvidenceError(f"cannot use {type(source).__name__!r} as evidence; pass a Results, a Comparison, or "
                        "the path of results saved with Results.save (.parquet) or an evidence record (.json).")


def version_rows(frame: pd.DataFrame, prompt: Prompt) -> pd.DataFrame:
    """The rows that ran exactly this version (by content hash; by name and version when hashes are absent)."""
    hashes = frame["prompt_hash"] if "prompt_hash" in frame else pd.Series(pd.NA, index=frame.index)
    if hashes.notna().any():
        rows = frame[hashes.eq(prompt.content_hash).fillna(False).astype(bool)]
    else:
        rows = frame[frame["prompt_name"].eq(prompt.name).fillna(False).astype(bool)
                     & frame["prompt_version"].astype("string").eq(prompt.version).fillna(False).astype(bool)]
    if rows.empty:
        raise EvidenceError(f"the evidence holds no rows of {prompt.ref} (hash {prompt.content_hash!r}); it holds "
                            f"{_refs_in(frame)!r}. Run the suite on this exact version and attach those results.")
    return rows


def _refs_in(frame: pd.DataFrame) -> list[str]:
    if frame.empty or "prompt_name" not in frame:
        return []
    keys = frame[["prompt_name", "prompt_version", "prompt_hash"]].drop_duplicates().astype(str)
    return [f"{n}@{v} ({h})" for n, v, h in keys.itertuples(index=False)]


def on_pinned(models: pd.Series, pinned: str) -> pd.Series:
    """Which rows ran on the model the prompt pins (``anthropic:claude-x`` matches ``claude-x``)."""
    want = _bare(pinned)
    return models.astype("string").map(lambda m: _bare(m) == want if isinstance(m, str) else False).astype(bool)


def _bare(model_id: str) -> str:
    from .providers import split_model_id

    try:
        return split_model_id(model_id)[1]
    except Exception:  # an id with no known provider: compare it as written
        return model_id


def summarise_eval(rows: pd.DataFrame, prompt: Prompt, thresholds: Thresholds,
                   suite_ids: frozenset[str] | None = None) -> EvalSummary:
    """The `EvalSummary` of this version's rows (pinned-model rows only, when there are any)."""
    pinned = on_pinned(rows["model"], prompt.model)
    used = rows[pinned] if pinned.any() else rows
    passed = int(used["passed"].fillna(False).astype(bool).sum())
    calls = len(used)
    interval = _wilson(passed, calls)
    cases = used.drop_duplicates("case_id")
    outside = None if suite_ids is None else int((~cases["case_id"].isin(suite_ids)).sum())
    return EvalSummary(
        cases=len(cases), calls=calls,
        categories={str(k): int(v) for k, v in cases["category"].fillna("NA").value_counts(sort=False).items()},
        accuracy=passed / calls if calls else float("nan"), ci_low=interval[0], ci_high=interval[1],
        no_verdict=int(used["passed"].isna().sum()), output_format=thresholds.output_format,
        format_compliance=_format_compliance(used, prompt, thresholds), p95_latency_s=_p95(used),
        cost_per_call_usd=_cost_per_call(used), models=tuple(sorted(used["model"].dropna().astype(str).unique())),
        on_pinned_model=bool(pinned.any()), cases_outside_suite=outside)


def _wilson(successes: int, n: int) -> tuple[float, float]:
    from .stats import wilson_interval

    if n == 0:
        return float("nan"), float("nan")
    interval = wilson_interval(successes, n)
    return float(interval.low), float(interval.high)


def _format_compliance(rows: pd.DataFrame, prompt: Prompt, thresholds: Thresholds) -> float | None:
    if not thresholds.structured:
        return None
    check = _format_check(prompt, thresholds)
    outputs = rows["output"]
    ok = outputs.map(lambda text: isinstance(text, str) and check(text), na_action="ignore")
    return float(ok.fillna(False).astype(bool).sum() / len(rows)) if len(rows) else float("nan")


def _format_check(prompt: Prompt, thresholds: Thresholds) -> Any:
    from .scoring import ExactMatch, JsonValid
    from .suite import Case

    if thresholds.output_format == "json":
        placeholder = Case(id="format", input="")
        return lambda text: bool(JsonValid()(placeholder, text).passed)
    labels = prompt.metadata.get("labels")
    if not labels:
        raise RegistryError(f"{prompt.ref}: output_format 'labels' needs the label set in the prompt file "
                            "(metadata: {labels: [...]}) — add it, or set output_format: text in configs/gates.yaml.")
    matcher = ExactMatch(tuple(labels))
    return lambda text: matcher.extract(text) is not None and len(text.split()) <= 3


def _p95(rows: pd.DataFrame) -> float | None:
    from .stats import quantile_ci

    live = rows[~rows["cached"].fillna(False).astype(bool)]["latency_s"].dropna().to_numpy(dtype=float)
    return float(quantile_ci(live, q=0.95).estimate) if len(live) else None


def _cost_per_call(rows: pd.DataFrame) -> float | None:
    answered = rows[rows["output"].notna()]
    if answered.empty or answered["cost_usd"].isna().any():
        return None
    return float(answered["cost_usd"].sum() / len(answered))


def comparison_rows(comparison: Any, rows: pd.DataFrame | None, prompt: Prompt,
                    variant: str | None = None) -> tuple[ComparisonRow, ...]:
    """The comparison's rows for the variant that is this prompt version (found by content hash)."""
    df = comparison.df
    name = variant or _variant_of(df, rows, prompt, comparison.baseline)
    mine = df[df["variant"] == name]
    if mine.empty:
        raise EvidenceError(f"the comparison has no row for variant {name!r}; its variants are "
                            f"{sorted(df['variant'].unique())!r}. Pass variant= to name the one that is "
                            f"{prompt.ref}.")
    baseline_ref = _ref_of_variant(rows, comparison.baseline)
    return tuple(ComparisonRow(str(r.variant), str(r.baseline), baseline_ref, str(r.model), str(r.metric),
                               int(r.n), float(r.diff), float(r.ci_low), float(r.ci_high), float(r.p_adj),
                               str(r.verdict)) for r in mine.itertuples())


def _variant_of(df: pd.DataFrame, rows: pd.DataFrame | None, prompt: Prompt, baseline: str) -> str:
    if rows is not None and "prompt_hash" in rows:
        names = rows.loc[rows["prompt_hash"].eq(prompt.content_hash).fillna(False).astype(bool), "variant"]
        names = [n for n in names.dropna().unique() if n != baseline]
        if len(names) == 1:
            return str(names[0])
    candidates = [v for v in df["variant"].unique() if v != baseline] if len(df) else []
    if len(candidates) == 1:
        return str(candidates[0])
    raise EvidenceError(f"cannot tell which variant of the comparison is {prompt.ref} (variants: "
                        f"{candidates!r}); pass variant= naming it.")


def _ref_of_variant(rows: pd.DataFrame | None, variant: str) -> str | None:
    if rows is None or "prompt_name" not in rows:
        return None
    sub = rows[rows["variant"] == variant][["prompt_name", "prompt_version"]].drop_duplicates()
    return f"{sub.iloc[0, 0]}@{sub.iloc[0, 1]}" if len(sub) == 1 else None


def shadow_comparison(frame: pd.DataFrame, prompt: Prompt) -> Any:
    """Compare this version with the one other version of the same prompt in a shadow/canary frame, if any."""
    from .compare import compare

    same = frame[frame["prompt_name"].eq(prompt.name).fillna(False).astype(bool)]
    mine = version_rows(same, prompt)["variant"].dropna().unique()
    others = [v for v in same["variant"].dropna().unique() if v not in set(mine)]
    if len(mine) != 1 or len(others) != 1:
        return None
    return compare(same[same["variant"].isin([mine[0], others[0]])], baseline=str(others[0]))


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
        from .display import gate_html

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
    return failures


def format_failures(summary: EvalSummary, t: Thresholds) -> list[str]:
    """Why the format compliance of an eval falls short (empty for free text or when it passes)."""
    if not t.structured:
        return []
    if summary.output_format != t.output_format or summary.format_compliance is None:
        return [f"the eval measured format {summary.output_format!r}, the policy needs {t.output_format!r}"]
    if not summary.format_compliance >= t.min_format_compliance:
        return [f"{t.output_format} format compliance {summary.format_compliance:.1%} is below "
                f"{t.min_format_compliance:.0%}"]
    return []


def gate_test(prompt: Prompt, evidence: Sequence[Evidence], t: Thresholds, suite: str | None) -> GateResult:
    """The test gate: the latest eval of this version meets the accuracy (and format) thresholds."""
    record = latest(evidence, need_eval=True)
    if record is None:
        return GateResult("test", prompt.ref, False, (f"no eval evidence is attached to {prompt.ref}",),
                          (needed_eval(prompt, t, suite),))
    failures = tuple(eval_failures(record.eval, prompt, t))
    needed = (needed_eval(prompt, t, suite),) if failures else ()
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
                f"({_points(r)}, p_adj {r.p_adj:.3g})" for r in record.comparison if r.verdict == "worse"]
    if not record.comparison:
        if record.eval is None:
            failures.append(f"the {record.kind} evidence has neither a comparison nor an eval summary")
        elif not record.eval.accuracy >= t.min_accuracy:
            failures.append(f"{record.kind} accuracy {record.eval.accuracy:.1%} is below {t.min_accuracy:.0%} "
                            "(nothing live to compare with)")
    return GateResult("staging", prompt.ref, not failures, tuple(failures), needed if failures else (),
                      details=record)


def _points(row: ComparisonRow) -> str:
    return f"{100 * row.diff:+.1f} points" if row.metric == "passed" else f"{row.diff:+.3g}"


def refusal_message(result: GateResult, state: str, to: str) -> str:
    """The `GateRefused` message: the move, the gate, what failed, and what would satisfy it."""
    lines = [f"{result.ref} cannot move {state} → {to}: the {result.gate} gate refused."]
    lines += [f"  failed: {f}" for f in result.failures]
    lines += [f"  needed: {n}" for n in result.needed]
    return "\n".join(lines)
