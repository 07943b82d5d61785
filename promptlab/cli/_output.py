"""What ``promptlab eval`` hands to CI: the gates, the comparison against a saved baseline, and three outputs.

* ``--json``: one document (`document`) with every number of the summary and the comparisons, the runs'
  metadata and each gate's outcome; ``schema_version`` 1, described by ``promptlab/data/eval-output.schema.json``
  (`SCHEMA_PATH`). Unknown numbers are ``null``, never 0.
* ``--junit``: JUnit XML (`junit_xml`) in the shape the Jenkins/pytest ``junit-10.xsd`` describes: one
  ``<testsuite>`` per variant × model, one ``<testcase>`` per case (× repeat); a wrong answer is a ``<failure>``
  with the scorer's reason, a failed call an ``<error>`` with its error type, so CI shows both apart.
* ``$GITHUB_STEP_SUMMARY``: a Markdown summary (`markdown`) appended to the file GitHub Actions names.

The baseline gate (`baseline_comparison`): the rows of a Results Parquet written by ``--save`` become one more arm
of `promptlab.stats.compare`, paired by case with this run; a variant whose verdict is ``worse`` fails the gate.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd

from .._files import atomic_write
from .._version import __version__
from ..errors import ArgumentError
from ..evaluation._classification import ClassificationTable
from ..evaluation._results import Results
from ..stats._comparison import Comparison, compare

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "data" / "eval-output.schema.json"
GATE_NAMES = ("min_accuracy", "baseline_regression", "thresholds", "max_error_rate")


@dataclass
class Gate:
    """One gate's outcome: its name (`GATE_NAMES`), whether it passed, its threshold, and each failure in words."""

    name: str
    passed: bool
    threshold: Any = None
    failures: list[str] = field(default_factory=list)


@dataclass
class BaselineComparison:
    """This run against a saved one: the file, the saved runs' ids, and the paired `Comparison`."""

    path: Path
    run_ids: list[str]
    comparison: Comparison


@dataclass(frozen=True)
class Classification:
    """The run's classification metrics (suites with labels): the table and macro-F1 paired against the baseline."""

    table: ClassificationTable
    comparison: pd.DataFrame | None


def classification(results: Results, baseline: str | None) -> Classification | None:
    """Confusion-based metrics when the run has a label set (None otherwise); macro-F1 compared, paired by
    case, against ``baseline`` when the run has several variants."""
    from ..evaluation._classification import table_or_none

    table = table_or_none(results)
    if table is None:
        return None
    several = table.rows["variant"].nunique() > 1
    return Classification(table, table.compare(baseline=baseline) if several else None)


@dataclass
class Outcome:
    """Everything one ``promptlab eval`` produced, as the outputs read it."""

    results: Results
    comparison: Comparison | None
    against: BaselineComparison | None
    gates: list[Gate]
    title: str = "promptlab"
    outputs: dict[str, str] = field(default_factory=dict)
    classification: Classification | None = None

    @property
    def exit_code(self) -> int:
        """1 when any gate failed, else 0."""
        return 0 if all(gate.passed for gate in self.gates) else 1


# ---- gates ---------------------------------------------------------------------------------------------------
def min_accuracy_gate(results: Results, threshold: float) -> Gate:
    """Every variant × model must reach ``threshold`` accuracy; NA (no verdict at all) fails too."""
    table = results.accuracy()
    failures = []
    for row in table.itertuples():
        if not row.accuracy >= threshold:
            shown = "NA (no call has a verdict)" if row.accuracy != row.accuracy else f"{row.accuracy:.3f}"
            failures.append(f"{row.variant} on {row.model}: accuracy {shown} < --min-accuracy {threshold} "
                            f"({row.scored} scored · {row.errors} errors of {row.n} calls)")
    if table.empty:
        failures.append("no results to judge against --min-accuracy")
    return Gate("min_accuracy", not failures, threshold, failures)


def baseline_gate(against: BaselineComparison) -> Gate:
    """Fails on a variant significantly worse than the saved baseline, or when nothing could be paired."""
    df, failures = against.comparison.df, []
    for row in df.to_dict("records"):
        where = f"{row['variant']} on {row['model']}"
        if row["verdict"] == "worse":
            failures.append(f"{where} is worse than {row['baseline']} in {str(against.path)!r}: "
                            f"{_diff(row['diff'], row['metric'])} [{_diff(row['ci_low'], row['metric'])}, "
                            f"{_diff(row['ci_high'], row['metric'])}], p_adj {row['p_adj']:.3g}, {row['n']} pairs")
        elif row["n"] == 0:
            failures.append(f"{where}: no case pairs with {row['baseline']} in {str(against.path)!r} (no shared "
                            "case with a verdict on both sides), so a regression cannot be ruled out")
    if df.empty:
        failures.append(f"nothing to compare with {str(against.path)!r}: "
                        + "; ".join(against.comparison.messages or ["no variant"]))
    return Gate("baseline_regression", not failures, str(against.path), failures)


# ---- the saved baseline --------------------------------------------------------------------------------------
def load_saved(path: Path) -> Results:
    """Results written by ``--save``, or an `ArgumentError` saying what the file is not."""
    import pyarrow as pa

    path = Path(path)
    if not path.is_file():
        raise ArgumentError(f"--baseline {str(path)!r} does not exist. Pass a results file written by an earlier "
                            "`promptlab eval --save results.parquet`.")
    try:
        saved = Results.load(path)
    except (pa.ArrowException, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArgumentError(f"--baseline {str(path)!r} is not a results file written by `promptlab eval --save` "
                            f"(Parquet): {exc}") from None
    if saved.df.empty or saved.df["case_id"].isna().all() or saved.df["variant"].isna().all():
        raise ArgumentError(f"--baseline {str(path)!r} holds no results rows (no case ids or variants); pass a file "
                            "written by `promptlab eval --save`.")
    return saved


def baseline_comparison(results: Results, path: Path, seed: int = 0, alpha: float = 0.05) -> BaselineComparison:
    """This run's variants against the saved run's, paired by case (`promptlab.stats.compare`).

    A saved run of one variant is the baseline of every variant of this run (one family: Holm across them).
    A saved run of several variants is matched by name: each variant against its saved self, at alpha / k for
    k matched variants (Bonferroni, so k separate comparisons still hold alpha together).
    """
    saved = load_saved(path)
    current = _variants(results.df)
    before = _variants(saved.df)
    run_ids = [str(r) for r in pd.unique(saved.df["run_id"].dropna())]
    if len(before) == 1:
        arm = _arm_name(before[0], current)
        frame = pd.concat([saved.df.assign(variant=arm), results.df], ignore_index=True)
        return BaselineComparison(Path(path), run_ids, compare(frame, baseline=arm, seed=seed, alpha=alpha))
    matched = [name for name in current if name in before]
    if not matched:
        raise ArgumentError(f"--baseline {str(path)!r} holds variants {before!r} and this run {current!r}: none "
                            "shares a name. Name the variants alike (--prompt NAME=PATH), or save a baseline of "
                            "one variant.")
    level = alpha / len(matched)
    tables, messages = [], [f"each variant is compared with its saved self; {len(matched)} comparisons at alpha "
                            f"{level:.3g} each (Bonferroni)"] if len(matched) > 1 else []
    for name in matched:
        arm = _arm_name(name, current)
        frame = pd.concat([saved.df[saved.df["variant"] == name].assign(variant=arm),
                           results.df[results.df["variant"] == name]], ignore_index=True)
        one = compare(frame, baseline=arm, seed=seed, alpha=level)
        tables.append(one.df)
        messages += one.messages
    messages += [f"variant {name!r} is not in the baseline file: not compared" for name in current
                 if name not in matched]
    df = pd.concat(tables, ignore_index=True)
    return BaselineComparison(Path(path), run_ids, Comparison(df, baseline="saved", metric="passed", alpha=level,
                                                              seed=seed, messages=messages))


def _variants(frame: pd.DataFrame) -> list[str]:
    return [str(v) for v in dict.fromkeys(frame["variant"].dropna())]


def _arm_name(name: str, taken: list[str]) -> str:
    arm = f"{name} (saved)"
    while arm in taken:
        arm += "'"
    return arm


# ---- JSON ----------------------------------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: NA, NaN and infinities become None; numpy, Decimal, paths and times plain."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating, Decimal)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date, pd.Timestamp)):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [plain(row) for row in frame.astype(object).to_dict("records")]


def _error_types(rows: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in rows["error_type"].dropna().value_counts(sort=True).items()}


def _summary(results: Results) -> list[dict[str, Any]]:
    """One record per variant × model: accuracy (all of `Results.accuracy`), cost, latency and error types."""
    keys = ["variant", "model"]
    table = results.accuracy()
    cost = results.cost().rename(columns={"calls": "answered"})
    latency = results.latency().rename(columns={"n": "latency_n"})
    table = table.merge(cost, on=keys, how="left").merge(latency, on=keys, how="left")
    records = _records(table)
    groups = dict(iter(results.df.groupby(keys, sort=False, dropna=False)))
    for record in records:
        rows = groups.get((record["variant"], record["model"]))
        record["error_types"] = _error_types(rows) if rows is not None else {}
    return records


def _by_category(results: Results) -> list[dict[str, Any]]:
    """`Results.by_category`: accuracy per variant × model × category, every column."""
    return _records(results.by_category())


def _totals(results: Results, summary: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts over every call; ``cost_usd`` is NA (None) when any group's cost is unknown."""
    from ..evaluation._summaries import accuracy_row

    df = results.df
    overall = accuracy_row(df)
    costs = [row["cost_usd"] for row in summary]
    return plain({"calls": len(df), "scored": overall["scored"], "passed": overall["passed"],
                  "failed": overall["scored"] - overall["passed"], "errors": len(df) - overall["scored"],
                  "error_types": _error_types(df), "cached": int(df["cached"].sum()),
                  "cost_usd": None if not costs or None in costs else sum(costs)})


def comparison_document(comparison: Comparison | None) -> dict[str, Any] | None:
    """A `Comparison` as JSON-ready data: its settings, its messages and every row with every column."""
    if comparison is None:
        return None
    return {"baseline": comparison.baseline, "metric": comparison.metric, "alpha": plain(comparison.alpha),
            "seed": plain(comparison.seed), "level": comparison.level,
            "interval_footing": comparison.interval_footing, "messages": list(comparison.messages),
            "rows": _records(comparison.df)}


def classification_document(found: Classification | None) -> dict[str, Any] | None:
    """The classification metrics as JSON-ready data: every column of the table, the per-label table and the
    paired macro-F1 comparison (null when the run has no label set)."""
    if found is None:
        return None
    table = found.table
    return {"labels": list(table.labels), "confidence": plain(table.confidence), "n_boot": plain(table.n_boot),
            "seed": plain(table.seed), "rows": _records(table.df), "per_label": _records(table.per_label),
            "comparison": None if found.comparison is None else _records(found.comparison)}


def format_document(results: Results) -> list[dict[str, Any]] | None:
    """Format compliance per variant × model with its Wilson interval, when any answer has a format verdict
    (a prompt that declares ``output:``); null otherwise."""
    if "format_ok" not in results.df or results.df["format_ok"].isna().all():
        return None
    return _records(results.format_compliance())


def _runs(results: Results) -> list[dict[str, Any]]:
    return [plain(meta) for meta in (results.meta.get("runs") or [results.meta])]


def document(outcome: Outcome) -> dict[str, Any]:
    """The ``--json`` document (schema version `SCHEMA_VERSION`; `SCHEMA_PATH` describes every field)."""
    against, summary = outcome.against, _summary(outcome.results)
    return {
        "schema_version": SCHEMA_VERSION, "promptlab_version": __version__, "title": outcome.title,
        "exit_code": outcome.exit_code, "passed": outcome.exit_code == 0,
        "runs": _runs(outcome.results), "totals": _totals(outcome.results, summary),
        "summary": {"confidence": 0.95, "rows": summary, "by_category": _by_category(outcome.results)},
        "comparison": comparison_document(outcome.comparison),
        "classification": classification_document(outcome.classification),
        "format": format_document(outcome.results),
        "baseline": None if against is None else {"file": str(against.path), "run_ids": against.run_ids,
                                                  "comparison": comparison_document(against.comparison)},
        "gates": [plain(asdict(gate)) for gate in outcome.gates],
        "outputs": dict(outcome.outputs),
    }


def write_json(path: Path, outcome: Outcome) -> Path:
    """Write `document` as JSON (strict: no NaN) to ``path``."""
    path = Path(path)
    atomic_write(path, json.dumps(document(outcome), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    return path


# ---- JUnit XML -----------------------------------------------------------------------------------------------
# XML 1.0 forbids most control characters even when escaped; a model's answer may hold them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    text = "NA" if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) else str(value)
    return _NOT_XML.sub("\ufffd", text)


def _seconds(total: float) -> str:
    """A time as junit-10.xsd's SUREFIRE_TIME allows: digits and at most three decimals."""
    return f"{max(total, 0.0):.3f}"


def _kind(row: dict[str, Any], graded_only: bool) -> str:
    """``error`` (no usable answer, or no verdict where verdicts exist), ``failure``, ``skipped`` or ``passed``."""
    if not pd.isna(row["error_type"]):
        return "error"
    if pd.isna(row["passed"]):
        return "skipped" if graded_only else "error"
    return "passed" if bool(row["passed"]) else "failure"


def _details(row: dict[str, Any]) -> str:
    parts = [f"case: {_xml(row['case_id'])}", f"input: {_xml(row['input'])}",
             f"expected: {_xml(row['expected'])}", f"actual: {_xml(row['output'])}"]
    if not pd.isna(row.get("output_raw")):  # a transform ran: what the model said before it
        parts.append(f"answer before the transform: {_xml(row['output_raw'])}")
    if not pd.isna(row["score"]):
        parts.append(f"score: {row['score']:.4g}")
    if not pd.isna(row["error"]):
        parts.append(f"error: {_xml(row['error'])}")
    return "\n".join(parts)


def _testcase(suite: ET.Element, row: dict[str, Any], kind: str, repeats: bool) -> None:
    name = f"{row['case_id']}" + (f" [repeat {row['repeat']}]" if repeats else "")
    case = ET.SubElement(suite, "testcase", name=_xml(name), classname=_xml(f"{row['variant']} @ {row['model']}"))
    if not pd.isna(row["latency_s"]):
        case.set("time", _seconds(float(row["latency_s"])))
    if kind == "error":
        error_type = row["error_type"] if not pd.isna(row["error_type"]) else "no_verdict"
        message = row["error"] if not pd.isna(row["error"]) else "the scorer gave no pass/fail verdict"
        ET.SubElement(case, "error", message=_xml(message), type=_xml(error_type)).text = _details(row)
    elif kind == "failure":
        message = row["reason"] if not pd.isna(row["reason"]) else "the answer failed its scorer"
        ET.SubElement(case, "failure", message=_xml(message), type="failed").text = _details(row)
    elif kind == "skipped":
        score = "NA" if pd.isna(row["score"]) else f"{row['score']:.4g}"
        ET.SubElement(case, "skipped", message=f"graded score {score}, no pass/fail verdict")


def _testsuite(root: ET.Element, key: tuple, rows: pd.DataFrame, meta: dict[str, Any]) -> dict[str, int]:
    from ..evaluation._summaries import accuracy_row

    acc = accuracy_row(rows)
    graded = len(rows) > 0 and plain(acc["accuracy"]) is None  # graded scores only: accuracy_row says NA
    records = rows.astype(object).to_dict("records")
    kinds = [_kind(row, graded) for row in records]
    tally = {k: kinds.count(k) for k in ("failure", "error", "skipped")}
    latency = rows["latency_s"].dropna()
    suite = ET.SubElement(root, "testsuite", name=_xml(f"{key[0]} @ {key[1]}"), tests=str(len(rows)),
                          failures=str(tally["failure"]), errors=str(tally["error"]), skipped=str(tally["skipped"]),
                          time=_seconds(float(latency.sum())))
    if meta.get("started_at"):
        suite.set("timestamp", _xml(meta["started_at"]))
    properties = ET.SubElement(suite, "properties")
    for name, value in (("variant", key[0]), ("model", key[1]), ("run_id", meta.get("run_id")),
                        ("accuracy", acc["accuracy"]), ("ci_low", acc["ci_low"]), ("ci_high", acc["ci_high"]),
                        ("scored", acc["scored"]), ("errors", acc["errors"])):
        ET.SubElement(properties, "property", name=name, value=_xml(plain(value)))
    repeats = rows["repeat"].nunique() > 1
    for row, kind in zip(records, kinds, strict=True):
        _testcase(suite, row, kind, repeats)
    return {"tests": len(rows), "failures": tally["failure"], "errors": tally["error"]}


def junit_xml(results: Results, title: str = "promptlab") -> str:
    """The results as JUnit XML text (see the module docstring)."""
    df = results.df
    root = ET.Element("testsuites", name=_xml(title))
    runs = {str(m.get("run_id")): m for m in (results.meta.get("runs") or [results.meta])}
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for key, rows in df.groupby(["variant", "model"], sort=False, dropna=False):
        meta = runs.get(str(rows["run_id"].iloc[0]), {})
        for name, count in _testsuite(root, key, rows, meta).items():
            totals[name] += count
    for name, count in totals.items():
        root.set(name, str(count))
    root.set("time", _seconds(float(df["latency_s"].dropna().sum())))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: Path, results: Results, title: str = "promptlab") -> Path:
    """Write `junit_xml` to ``path``."""
    path = Path(path)
    atomic_write(path, junit_xml(results, title))
    return path


# ---- Markdown (GitHub step summary) -----------------------------------------------------------------------
def _md(value: Any) -> str:
    """A table cell: escaped (GitHub renders some HTML), one line, pipes kept as text."""
    text = _xml(plain(value) if not isinstance(value, str) else value)
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _pct(value: Any) -> str:
    value = plain(value)
    return "NA" if value is None else f"{100 * value:.1f}%"


def _num(value: Any, fmt: str) -> str:
    value = plain(value)
    return "NA" if value is None else format(value, fmt)


def _diff(value: Any, metric: str) -> str:
    value = plain(value)
    if value is None:
        return "NA"
    return f"{100 * value:+.1f} pts" if metric == "passed" else f"{value:+.3g}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + ["| " + " | ".join(r) + " |"
                                                                              for r in rows]


def _summary_lines(results: Results) -> list[str]:
    rows = [[_md(r["variant"]), _md(r["model"]), _pct(r["accuracy"]), f"{_pct(r['ci_low'])} – {_pct(r['ci_high'])}",
             _md(r["passed"]), _md(r["n"]), _md(r["errors"]), _num(r["p50_s"], ".2f"), _num(r["p95_s"], ".2f"),
             _num(r["cost_usd"], ".4f")] for r in _summary(results)]
    headers = ["variant", "model", "accuracy", "95% CI", "passed", "calls", "errors", "p50 s", "p95 s", "cost USD"]
    lines = _table(headers, rows)
    errors = _error_types(results.df)
    if errors:
        kinds = ", ".join(f"{kind}: {count}" for kind, count in errors.items())
        lines += ["", f"**{sum(errors.values())} calls had no usable answer** ({_md(kinds)}); each counts as a "
                      "failure in accuracy."]
    return lines


def _comparison_lines(comparison: Comparison, heading: str) -> list[str]:
    rows = [[_md(r["variant"]), _md(r["baseline"]), _md(r["model"]), f"**{_md(r['verdict'])}**",
             _diff(r["diff"], r["metric"]), f"{_diff(r['ci_low'], r['metric'])} – {_diff(r['ci_high'], r['metric'])}",
             _num(r["p_adj"], ".3g"), _md(r["n"])] for r in comparison.df.to_dict("records")]
    lines = ["", f"#### {heading}", "", f"{_md(comparison.metric)}, alpha {comparison.alpha:.3g}; "
             f"{_md(comparison.interval_footing)}.", ""]
    lines += _table(["variant", "baseline", "model", "verdict", "diff", "CI", "p adj", "pairs"], rows)
    return lines + [f"- {_md(message)}" for message in comparison.messages]


def _classification_lines(found: Classification) -> list[str]:
    table = found.table
    level = f"{100 * table.confidence:.0f}%"
    rows = [[_md(r["variant"]), _md(r["model"]), _num(r["macro_f1"], ".3f"),
             f"{_num(r['macro_f1_ci_low'], '.3f')} – {_num(r['macro_f1_ci_high'], '.3f')}",
             _num(r["micro_f1"], ".3f"), _num(r["kappa"], ".3f"),
             f"{_num(r['kappa_ci_low'], '.3f')} – {_num(r['kappa_ci_high'], '.3f')}"] for r in _records(table.df)]
    lines = ["", "#### Classification", "", f"labels: {_md(', '.join(table.labels))}; {level} intervals by "
             "bootstrap over cases.", ""]
    lines += _table(["variant", "model", "macro-F1", f"{level} CI", "micro-F1", "κ", f"κ {level} CI"], rows)
    if found.comparison is not None and not found.comparison.empty:
        pairs = [[_md(r["variant"]), _md(r["baseline"]), _md(r["model"]), f"**{_md(r['verdict'])}**",
                  _num(r["diff"], "+.3f"), f"{_num(r['ci_low'], '+.3f')} – {_num(r['ci_high'], '+.3f')}",
                  _num(r["p_adj"], ".3g")] for r in _records(found.comparison)]
        lines += ["", "macro-F1, paired by case:", ""]
        lines += _table(["variant", "baseline", "model", "verdict", "diff", "CI", "p adj"], pairs)
    return lines


def markdown(outcome: Outcome) -> str:
    """The GitHub step summary: the gates, the summary table, failed calls, and each comparison."""
    verdict = "✅ all gates passed" if outcome.exit_code == 0 else "❌ a gate failed"
    verdict = verdict if outcome.gates else "no gate set"
    lines = [f"### {_md(outcome.title)}", "", f"**{verdict}** (exit {outcome.exit_code})", ""]
    lines += [f"- {'✅' if gate.passed else '❌'} {gate.name}" + (f": {_md('; '.join(gate.failures))}"
                                                                  if gate.failures else "")
              for gate in outcome.gates]
    lines += [""] * bool(outcome.gates) + _summary_lines(outcome.results)
    if outcome.comparison is not None:
        lines += _comparison_lines(outcome.comparison, f"Against {outcome.comparison.baseline} (paired by case)")
    if outcome.classification is not None:
        lines += _classification_lines(outcome.classification)
    if outcome.against is not None:
        lines += _comparison_lines(outcome.against.comparison, f"Against the saved baseline "
                                   f"`{_md(outcome.against.path.name)}` (paired by case)")
    return "\n".join(lines) + "\n\n"


def append_markdown(path: Path, outcome: Outcome) -> None:
    """Append `markdown` to ``path`` (``$GITHUB_STEP_SUMMARY``; other steps may have written to it too)."""
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(markdown(outcome))
