"""Evidence: what a promotion is based on, summarised once into a record a pull request can show.

Evidence is a `Results` (an eval, or shadow / canary traffic), a `Comparison` (variants against a baseline,
paired by case), or the path of either saved to disk (``.parquet`` from `Results.save`, ``.json`` evidence
record). It is about one exact prompt version: the rows are matched on the version's content hash, so results
of another version, however similar, never count.

`summarise` turns it into an `Evidence` record: an `EvalSummary` (cases, categories, accuracy with its interval
— calls with no verdict count as failures, the definition `Results.accuracy` uses —, format compliance, p95
latency, cost per call, models) and, for comparisons, one `ComparisonRow` per model (diff, its interval on the
verdict's footing, adjusted p, verdict). The registry stores the record as ``configs/evidence/<id>.json`` and
the rows beside it as ``<id>.parquet``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..authoring._prompt import Prompt
from ..errors import EvidenceError, RegistryError

if TYPE_CHECKING:
    from ._lifecycle import Thresholds

EVIDENCE_KINDS = ("eval", "comparison", "shadow", "canary")
SUITE_KINDS = ("eval", "comparison")
"""Evidence from running the suite: what the test gate and the checklist read."""
LIVE_KINDS = ("shadow", "canary")
"""Evidence from live traffic: what the staging gate needs."""


# ---- records -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalSummary:
    """The numbers of an eval of one prompt version (rows on the pinned model when there are any).

    ``accuracy`` is passed / calls, a call with no verdict (failed call, scoring error) counting as a failure
    — the one definition of `promptlab.evaluation._summaries.accuracy_row`, which `Results.accuracy` uses
    too; ``ci_low`` and ``ci_high`` are its interval (Wilson over calls; over cases when cases were answered
    more than once).
    ``format_compliance`` is the share of answers in format: read from the rows' ``format_ok`` when the prompt
    declares its ``output:`` (``format_source`` ``"format_ok"``: the verdicts recorded when the calls were made),
    else, for structured output in ``configs/gates.yaml``, each answer checked against ``output_format``
    (``"output"``); None for free text, or when no answer has a verdict. Failed calls have no answer to check:
    they are left out and counted in ``format_failed_calls``; ``format_answers`` is the denominator and
    ``format_ci_low`` / ``format_ci_high`` its Wilson interval. Latency and cost are None when unknown (all
    answers cached, an unpriced model); latency leaves cached answers out.
    ``judges`` are the LLM judges whose scores the rows carry (`Judge.key`, the ``score_judge`` column): the
    gates accept them only with a judge card at the configured agreement (`promptlab.evaluation._calibration`).
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
    format_source: str | None = None
    format_answers: int | None = None
    format_failed_calls: int | None = None
    format_ci_low: float | None = None
    format_ci_high: float | None = None
    judges: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComparisonRow:
    """The candidate against a baseline on one model, from a paired comparison (`promptlab.stats._comparison`).

    ``ci_low`` and ``ci_high`` are the comparison's displayed interval: simultaneous over the variants compared
    (the footing of ``p_adj`` and ``verdict``), so a verdict and its interval never contradict.
    """

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
    """One piece of evidence attached to a prompt version, as stored in ``configs/evidence/<id>.json``.

    ``search`` is the record of the prompt search that found this version (`promptlab.optimize.SearchResult.record`:
    the optimistic search score, the confirmation on untouched cases with its paired test, what was tried, the calls
    spent), when the evidence came from one; its ``comparison`` rows are then the confirmation's paired test.
    """

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
    search: dict[str, Any] | None = None

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
            summary = (EvalSummary(**{**_nan_back(ev), "models": tuple(ev["models"]),
                                       "judges": tuple(ev.get("judges") or ())}) if ev else None)
            return cls(**{**data, "eval": summary, "comparison": rows})
        except (TypeError, KeyError) as exc:
            raise EvidenceError(f"evidence record {data.get('id')!r} does not follow the evidence format "
                                f"({exc}). Attach evidence through the registry.") from None

    def __repr__(self) -> str:
        parts = [f"{self.kind} for {self.ref}"]
        if self.eval:
            parts.append(f"accuracy {self.eval.accuracy:.1%} on {self.eval.cases} cases")
        parts += [f"{r.verdict} vs {r.baseline_ref or r.baseline}" for r in self.comparison]
        if self.search:
            parts.append(f"found by a prompt search from {self.search.get('start', {}).get('ref')}")
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
        return source.source, source
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
    from ..providers import split_model_id

    try:
        return split_model_id(model_id)[1]
    except Exception:  # an id with no known provider: compare it as written
        return model_id


def summarise_eval(rows: pd.DataFrame, prompt: Prompt, thresholds: Thresholds,
                   suite_ids: frozenset[str] | None = None) -> EvalSummary:
    """The `EvalSummary` of this version's rows (pinned-model rows only, when there are any)."""
    from ..evaluation._summaries import accuracy_row

    pinned = on_pinned(rows["model"], prompt.model)
    used = rows[pinned] if pinned.any() else rows
    accuracy = accuracy_row(used)
    cases = used.drop_duplicates("case_id")
    outside = None if suite_ids is None else int((~cases["case_id"].isin(suite_ids)).sum())
    fmt = _format_evidence(used, prompt, thresholds)
    return EvalSummary(
        cases=len(cases), calls=len(used),
        categories={str(k): int(v) for k, v in cases["category"].fillna("NA").value_counts(sort=False).items()},
        accuracy=float(accuracy["accuracy"]), ci_low=float(accuracy["ci_low"]), ci_high=float(accuracy["ci_high"]),
        no_verdict=int(used["passed"].isna().sum()), output_format=thresholds.output_format,
        p95_latency_s=_p95(used), cost_per_call_usd=_cost_per_call(used),
        models=tuple(sorted(used["model"].dropna().astype(str).unique())), on_pinned_model=bool(pinned.any()),
        cases_outside_suite=outside, judges=_judges(used), **fmt)


def _judges(rows: pd.DataFrame) -> tuple[str, ...]:
    """The judges that scored these rows (their keys in ``score_judge``, written by `Judge`), sorted."""
    if "score_judge" not in rows:
        return ()
    return tuple(sorted(str(k) for k in rows["score_judge"].dropna().unique()))


def _format_evidence(rows: pd.DataFrame, prompt: Prompt, thresholds: Thresholds) -> dict[str, Any]:
    """Format compliance and what it is made of (the ``format_*`` fields of `EvalSummary`).

    The rows' own verdicts (``format_ok``: the prompt declares its output) come first; without them, structured
    output in the policy is checked on each answer's text; free text has none. Failed calls are left out.
    """
    from ..stats._intervals import wilson_interval

    recorded = rows["format_ok"].astype("boolean") if "format_ok" in rows else None
    declared = getattr(prompt, "output", None) is not None  # its calls record verdicts (none if all failed)
    if recorded is not None and (declared or recorded.notna().any()):
        verdicts, source = recorded, "format_ok"
    elif thresholds.structured:
        check = _format_check(prompt, thresholds)
        verdicts = rows["output"].map(lambda text: bool(check(text)) if isinstance(text, str) else None,
                                      na_action="ignore").astype("boolean")
        source = "output"
    else:
        return {"format_compliance": None}
    known = verdicts.dropna().astype(bool)
    n, k = len(known), int(known.sum())
    fields: dict[str, Any] = {"format_compliance": k / n if n else None, "format_source": source,
                              "format_answers": n, "format_failed_calls": len(rows) - n}
    if n:  # Wilson: scipy.stats.binomtest(k, n).proportion_ci(method="wilson"), through promptlab.stats
        interval = wilson_interval(k, n)
        fields.update(format_ci_low=float(interval.low), format_ci_high=float(interval.high))
    return fields


def _format_check(prompt: Prompt, thresholds: Thresholds) -> Any:
    from ..authoring._labels import LabelSet
    from ..authoring._suite import Case
    from ..evaluation._scoring import JsonValid

    if thresholds.output_format == "json":
        placeholder = Case(id="format", input="")
        return lambda text: bool(JsonValid()(placeholder, text).passed)
    labels = prompt.metadata.get("labels")
    if not labels:
        raise RegistryError(f"{prompt.ref}: output_format 'labels' needs the label set in the prompt file "
                            "(metadata: {labels: [...]}) — add it, or set output_format: text in configs/gates.yaml.")
    label_set = LabelSet(labels)  # the scorer's reading of labels: case, spacing and punctuation ignored
    return lambda text: label_set.canonical(text) is not None


def _p95(rows: pd.DataFrame) -> float | None:
    """p95 latency of the calls made in the run (cached answers left out, as in every latency summary)."""
    from ..stats._quantiles import live_latency, quantile

    live = live_latency(rows).dropna().to_numpy(dtype=float)
    return quantile(live, 0.95) if len(live) else None


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
    from ..stats._comparison import compare

    same = frame[frame["prompt_name"].eq(prompt.name).fillna(False).astype(bool)]
    mine = version_rows(same, prompt)["variant"].dropna().unique()
    others = [v for v in same["variant"].dropna().unique() if v not in set(mine)]
    if len(mine) != 1 or len(others) != 1:
        return None
    return compare(same[same["variant"].isin([mine[0], others[0]])], baseline=str(others[0]))


# ---- from any source to a record, and to disk ------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """An `Evidence` record not stored yet, with the rows and run metadata to store beside it."""

    record: Evidence
    rows: pd.DataFrame | None
    meta: dict


def summarise(source: Any, prompt: Prompt, thresholds: Thresholds, *, kind: str | None = None,
              variant: str | None = None, actor: str = "", suite_ids: frozenset[str] | None = None) -> Summary:
    """Summarise ``source`` (Results, Comparison, a saved file's path, a record) as evidence about ``prompt``.

    Args:
        source: the evidence.
        prompt: the exact version it must be about.
        thresholds: the prompt's thresholds (they say which output format to check).
        kind: ``eval``, ``comparison``, ``shadow`` or ``canary``; default: ``comparison`` for a Comparison, the
            results' ``meta["mode"]`` when it is shadow or canary, else ``eval``.
        variant: the comparison's variant that is ``prompt``, when its content hash cannot tell.
        actor: who attaches it.
        suite_ids: the case ids of the prompt's suite, to check the eval ran on it.
    """
    if isinstance(source, (str, Path)):
        source = load_file(Path(source))
    if isinstance(source, Evidence):
        return Summary(check_record(source, prompt), None, {})
    rows, comparison = evidence_frame(source)
    meta = dict(getattr(source, "meta", {}) or {})
    live = meta.get("mode") if meta.get("mode") in LIVE_KINDS else None
    kind = kind or ("comparison" if comparison is not None else live or "eval")
    if kind not in EVIDENCE_KINDS:
        raise EvidenceError(f"evidence kind {kind!r} is not one of {list(EVIDENCE_KINDS)!r}.")
    summary = summarise_eval(version_rows(rows, prompt), prompt, thresholds, suite_ids) if rows is not None else None
    if comparison is None and kind in LIVE_KINDS and rows is not None:
        comparison = shadow_comparison(rows, prompt)
    compared = comparison_rows(comparison, rows, prompt, variant) if comparison is not None else ()
    record = Evidence(new_evidence_id(prompt, kind), kind, prompt.name, prompt.version, prompt.content_hash,
                      dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), actor, _describe(source, meta),
                      summary, compared, search=_search_record(meta, prompt))
    return Summary(record, rows, meta)


def _search_record(meta: dict, prompt: Prompt) -> dict[str, Any] | None:
    """The prompt search's record riding in the evidence's ``meta["search"]``, checked to be about this version."""
    search = meta.get("search")
    if search is None:
        return None
    winner = search.get("winner", {}) if isinstance(search, dict) else {}
    if winner.get("hash") != prompt.content_hash:
        raise EvidenceError(f"the search record found {winner.get('ref')!r} (hash {winner.get('hash')!r}), not "
                            f"{prompt.ref} (hash {prompt.content_hash!r}); attach the record with the version it "
                            "found (SearchResult.export does).")
    return _json_ready(search)


def write_record(summary: Summary, folder: Path, root: Path) -> Evidence:
    """Write ``<id>.parquet`` (the rows, if any) and ``<id>.json`` (the record) into ``folder``."""
    from .._files import atomic_write
    from ..evaluation._results import Results

    record = summary.record
    if summary.rows is not None:
        path = Results(summary.rows, summary.meta).save(folder / f"{record.id}.parquet")
        record = replace(record, rows_file=path.relative_to(root).as_posix())
    text = json.dumps(record.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"
    atomic_write(folder / f"{record.id}.json", text)
    return record


def load_record(path: Path) -> Evidence:
    """Read a stored ``<id>.json`` record."""
    try:
        return Evidence.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise EvidenceError(f"evidence record {str(path)!r} cannot be read ({exc}). Restore it from git.") from None


def load_file(path: Path) -> Any:
    """An evidence file given by path: a record (``.json``) or saved results (``.parquet``)."""
    if not path.is_file():
        raise EvidenceError(f"evidence file {str(path)!r} does not exist. Save results with results.save(path).")
    if path.suffix == ".json":
        return load_record(path)
    from ..evaluation._results import Results

    try:
        return Results.load(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise EvidenceError(f"{path}: not a results file written by Results.save ({type(exc).__name__}: {exc}). "
                            "Pass a .parquet from results.save(...) or an evidence .json.") from None


def check_record(record: Evidence, prompt: Prompt) -> Evidence:
    """``record`` if it is about ``prompt``'s content; `EvidenceError` otherwise."""
    if record.content_hash != prompt.content_hash:
        raise EvidenceError(f"evidence {record.id!r} is about {record.ref} (hash {record.content_hash!r}), not "
                            f"{prompt.ref} (hash {prompt.content_hash!r}). Attach evidence of this version.")
    return replace(record, version=prompt.version)


def _describe(source: Any, meta: dict) -> str:
    runs = [m.get("run_id") for m in meta.get("runs", []) if isinstance(m, dict)]
    run = meta.get("run_id") or next(iter(runs), None)
    return type(source).__name__ + (f" of run {run}" if run else "")
