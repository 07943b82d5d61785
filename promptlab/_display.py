"""All HTML that promptlab shows in notebooks and reports, built in one place and escaped here.

Every value that reaches HTML passes through `esc` (or `table`, which escapes each cell), so a case input
such as ``<script>`` shows as text and never runs.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

_STYLE = (
    "<style>.pl-card{font-family:system-ui,-apple-system,sans-serif;font-size:13px;border:1px solid #ddd;"
    "border-radius:6px;padding:10px 14px;margin:6px 0;max-width:1000px}"
    ".pl-card h3{margin:0 0 6px 0;font-size:15px}.pl-card table{border-collapse:collapse;margin:6px 0}"
    ".pl-card th,.pl-card td{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;vertical-align:top}"
    ".pl-card .pl-muted{color:#777}.pl-card .pl-good{color:#1a7f37}.pl-card .pl-bad{color:#cf222e}"
    ".pl-card pre{white-space:pre-wrap;margin:0;font-size:12px}</style>"
)


def esc(value: Any) -> str:
    """Escape any value for HTML; None and NaN show as ``NA``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    try:
        import pandas as pd

        if value is pd.NA or (not isinstance(value, (str, list, dict, tuple)) and pd.isna(value)):
            return "NA"
    except (TypeError, ValueError):
        pass
    return html.escape(str(value), quote=True)


def fmt_pct(value: float | None, digits: int = 1) -> str:
    """A proportion as a percentage, NA for unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    return f"{100 * value:.{digits}f}%"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, raw_columns: Iterable[int] = ()) -> str:
    """An HTML table; every cell is escaped except columns listed in ``raw_columns`` (already-built HTML)."""
    raw = set(raw_columns)
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if i in raw else esc(cell)}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def card(title: str, *sections: str) -> str:
    """A bordered card with an escaped title and pre-built HTML sections."""
    return _STYLE + f"<div class='pl-card'><h3>{esc(title)}</h3>{''.join(sections)}</div>"


def paragraph(text: str, css: str = "") -> str:
    """An escaped paragraph, optionally with one of the card's classes (pl-muted, pl-good, pl-bad)."""
    cls = f" class='{css}'" if css else ""
    return f"<p{cls}>{esc(text)}</p>"


def truncate(text: Any, limit: int = 160) -> str:
    """Shorten long text for tables (the full text stays in the DataFrame)."""
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- prompts and suites --------------------------------------------------------------------------------
def prompt_html(prompt: Any) -> str:
    """The card of a `Prompt`: identity, parameters, system text, examples, template."""
    params = table(["model", "temperature", "max_tokens", "hash"],
                   [[prompt.model, prompt.temperature, prompt.max_tokens, prompt.content_hash]])
    examples = table(["input", "output"], [[truncate(e.input), e.output] for e in prompt.few_shot_examples])
    return card(
        f"Prompt {prompt.ref}", params,
        f"<b>system</b><pre>{esc(prompt.system)}</pre>",
        f"<b>template</b><pre>{esc(prompt.template)}</pre>",
        f"<b>few-shot examples ({len(prompt.few_shot_examples)})</b>{examples}",
    )


def suite_html(suite: Any, preview: int = 8) -> str:
    """The card of a `Suite`: counts by category and the first cases."""
    counts = table(["category", "cases"], list(suite.counts().items()))
    rows = [[c.id, c.category, truncate(c.input, 100), truncate(c.expected, 40)] for c in suite.cases[:preview]]
    more = paragraph(f"… and {len(suite) - preview} more", "pl-muted") if len(suite) > preview else ""
    labels = paragraph(f"labels: {', '.join(suite.labels)}", "pl-muted") if suite.labels else ""
    return card(f"Suite {suite.name} — {len(suite)} cases", labels, counts,
                table(["id", "category", "input", "expected"], rows), more)


# ---- results ---------------------------------------------------------------------------------------------
def _interval(row: Any) -> str:
    return f"{fmt_pct(row.accuracy)} [{fmt_pct(row.ci_low)}, {fmt_pct(row.ci_high)}]"


def _made_of(row: Any) -> str:
    """``"20 calls: 12 scored · 8 errors"`` — what an accuracy beside it is made of."""
    return f"{row.n} calls: {row.scored} scored · {row.errors} errors"


def _accuracy_section(results: Any) -> str:
    acc = results.accuracy()
    rows = [[r.variant, r.model, _interval(r), _made_of(r)] for r in acc.itertuples()]
    note = paragraph("accuracy = passed / calls: a call with no verdict (failed call, scoring error, judge "
                     "failure) counts as a failure", "pl-muted")
    return table(["variant", "model", "accuracy [95% CI]", "calls"], rows) + note


def _category_section(results: Any) -> str:
    cat = results.by_category()
    wide = cat.assign(cell=[_interval(r) + f" ({r.scored} scored · {r.errors} errors)" for r in cat.itertuples()])
    wide = wide.pivot_table(index="category", columns="variant", values="cell", aggfunc="first", sort=False)
    return "<b>by category</b>" + table(["category", *wide.columns], [[i, *row] for i, row in wide.iterrows()])


def _failure_section(results: Any, limit: int = 8) -> str:
    failures = results.failures(limit)
    if failures.empty:
        return paragraph("no failed answers", "pl-good")
    rows = [[f.variant, f.category, truncate(f.input, 90), f.expected, truncate(f.actual, 60), truncate(f.reason, 60)]
            for f in failures.itertuples()]
    return f"<b>worst failures (first {len(rows)})</b>" + table(
        ["variant", "category", "input", "expected", "actual", "reason"], rows)


def _cost_latency_section(results: Any) -> str:
    summary = results.summary()
    rows = [[r.variant, r.model, _secs(getattr(r, "p50_s", None)), _secs(getattr(r, "p95_s", None)),
             r.input_tokens, r.output_tokens, _usd(r.cost_usd)] for r in summary.itertuples()]
    cached = int(summary["cached_excluded"].fillna(0).sum()) if "cached_excluded" in summary else 0
    note = paragraph(f"latency over calls made in this run; {cached} cached rows excluded (their latency is "
                     "a past call's)", "pl-muted") if cached else ""
    return "<b>latency and cost</b>" + table(
        ["variant", "model", "p50", "p95", "tokens in", "tokens out", "cost"], rows) + note


def _error_section(results: Any) -> str:
    errors = results.errors()
    if errors.empty:
        return ""
    counts = errors.groupby("error_type").size()
    text = ", ".join(f"{k}: {v}" for k, v in counts.items())
    first = errors.head(3)
    rows = [[e.case_id, e.variant, e.error_type, truncate(e.error, 120)] for e in first.itertuples()]
    return paragraph(f"errors — {text}", "pl-bad") + table(["case", "variant", "type", "message"], rows)


def _format_section(results: Any) -> str:
    """Format compliance with its Wilson interval, when the rows carry verdicts (a declared ``output:``)."""
    if "format_ok" not in results.df or not results.df["format_ok"].notna().any():
        return ""
    rows = [[r.variant, r.model, f"{fmt_pct(r.compliance)} [{fmt_pct(r.ci_low)}, {fmt_pct(r.ci_high)}]",
             f"{r.n} answers: {r.format_ok} in format · {r.failed_calls} failed calls left out", r.enforced]
            if r.source == "format_ok" else [r.variant, r.model, "NA", "declares no output", "NA"]
            for r in results.format_compliance().itertuples()]
    return "<b>format compliance</b>" + table(["variant", "model", "compliance [95% CI]", "answers", "enforced"],
                                              rows)


def _secs(value: Any) -> str:
    return "NA" if value is None or value != value else f"{value:.3f} s"


def _usd(value: Any) -> str:
    return "NA" if value is None or value != value else f"${value:.4f}"


def results_html(results: Any, classification: list[dict] | None = None) -> str:
    """The summary card of `Results`: accuracy with intervals, categories, failures, cost, latency, errors;
    with ``classification`` (plain rows of `Results.classification().df`), macro-F1 and κ with intervals."""
    if results.df.empty:
        return card("Results — no rows")
    meta = results.meta
    cache = meta.get("cache") or {}
    info = (f"run {meta.get('run_id', '?')} · {len(results.df)} calls · cache {cache.get('hits', 'NA')} hits · "
            f"{cache.get('misses', 'NA')} misses"
            + (f" · stopped: {meta['stopped']}" if meta.get("stopped") else ""))
    labelled = "<b>classification</b>" + _classification_summary(classification, full=False) if classification else ""
    return card("Results", paragraph(info, "pl-muted"), _accuracy_section(results), _format_section(results), labelled,
                _category_section(results), _cost_latency_section(results), _error_section(results),
                _failure_section(results))


# ---- classification (plain data from promptlab.evaluation's ClassificationTable) ---------------------------------
def _ci3(row: dict, name: str) -> str:
    """``0.812 [0.700, 0.905]`` for a metric and its ``_ci_low`` / ``_ci_high``; NA for unknown."""
    return f"{_num(row[name], '.3f')} [{_num(row[name + '_ci_low'], '.3f')}, {_num(row[name + '_ci_high'], '.3f')}]"


def _classification_summary(rows: list[dict], full: bool, confidence: float = 0.95) -> str:
    pct = fmt_pct(confidence, 0)
    metrics = ["macro_f1", "kappa", *(["micro_f1", "accuracy"] if full else [])]
    names = {"macro_f1": "macro-F1", "kappa": "κ", "micro_f1": "micro-F1", "accuracy": "accuracy (answers)"}
    body = [[r["variant"], r["model"], *(_ci3(r, m) for m in metrics),
             f"{r['answers']} answers ({r['cases']} cases) · {r['no_label']} name no label · {r['errors']} "
             "failed (left out)"] for r in rows]
    note = paragraph(f"{pct} bootstrap intervals over cases (a case's repeats move together); an answer naming no "
                     "label counts in (none)", "pl-muted")
    return table(["variant", "model", *(f"{names[m]} [{pct} CI]" for m in metrics), "answers"], body) + note


def classification_html(data: dict) -> str:
    """The card of a `ClassificationTable` from plain data: the summary, then per group its confusion matrix
    (rows expected, columns read, then ``(none)``) and its per-label precision, recall and F1."""
    pct = fmt_pct(data["confidence"], 0)
    sections = [paragraph(f"labels: {', '.join(data['labels'])}", "pl-muted"),
                _classification_summary(data["summary"], full=True, confidence=data["confidence"])]
    for group in data["groups"]:
        labels = [[r["label"], r["support"], r["predicted"], *(_ci3(r, m) for m in ("precision", "recall", "f1"))]
                  for r in group["per_label"]]
        sections += [f"<b>{esc(group['title'])}</b> — confusion matrix (rows expected, columns read)",
                     table(["expected \\ read", *group["columns"]], group["confusion"]),
                     table(["label", "support", "predicted", *(f"{m} [{pct} CI]" for m in ("precision", "recall",
                                                                                          "F1"))], labels)]
    sections.append(paragraph("NA: nothing to divide by (no answer named the label, or no case expects it) — "
                              "never 0", "pl-muted"))
    return card(f"Classification — {len(data['labels'])} labels", *sections)


def macro_f1_comparison_html(rows: list[dict]) -> str:
    """Macro-F1 of each variant against the baseline, paired by case (plain rows of its ``compare``)."""
    body = [[r["variant"], r["model"], r["n"], _num(r["baseline_macro_f1"], ".3f"), _num(r["variant_macro_f1"], ".3f"),
             f"{_num(r['diff'], '+.3f')} [{_num(r['ci_low'], '+.3f')}, {_num(r['ci_high'], '+.3f')}] at "
             f"{fmt_pct(r['ci_level'], 1)}", _num(r["p_adj"], ".3g"), _cmp_verdict(r["verdict"]), r["note"]]
            for r in rows]
    method = paragraph("joint case bootstrap of both arms (a case's answers move together); p adj: Holm across "
                       "variants; intervals simultaneous (Bonferroni)", "pl-muted")
    return card("Macro-F1, paired by case", table(["variant", "model", "pairs", "baseline", "variant",
                                                   "diff [CI]", "p adj", "verdict", "note"], body,
                                                  raw_columns=[7]), method)


# ---- paired comparison -----------------------------------------------------------------------------------
_RATE_METRICS = {"passed": "pass rate", "format_ok": "format compliance"}


def _cmp_value(value: Any, metric: str) -> str:
    """A rate as a percentage (pass/fail, format compliance) or a score to 3 significant digits."""
    if metric in _RATE_METRICS:
        return fmt_pct(value)
    return "NA" if value is None or value != value else f"{value:.3g}"


def _cmp_diff(value: Any, metric: str) -> str:
    if value is None or value != value:
        return "NA"
    if math.isinf(value):
        return "−∞" if value < 0 else "+∞"
    return f"{100 * value:+.1f} pts" if metric in _RATE_METRICS else f"{value:+.3g}"


def _cmp_verdict(verdict: str) -> str:
    css = {"better": "pl-good", "worse": "pl-bad"}.get(verdict, "pl-muted")
    return f"<span class='{css}'>{esc(verdict)}</span>"


def _cmp_guard(row: Any) -> str:
    cost = "NA" if row.cost_diff_usd != row.cost_diff_usd else f"{row.cost_diff_usd:+.3g} $/call"
    p95 = "NA" if row.p95_diff_s != row.p95_diff_s else f"{row.p95_diff_s:+.3f} s"
    return f"cost {cost} · p95 {p95} · errors {_cmp_diff(row.error_rate_diff, 'passed')}"


def _cmp_label(row: Any, by_cat: bool) -> str:
    return f"{row.variant} @ {row.model}" + (f" [{row.category}]" if by_cat else "")


def comparison_html(comparison: Any) -> str:
    """The card of a `Comparison`: one row per variant (× category), verdicts, power notes, guardrails."""
    df, metric = comparison.df, comparison.metric
    what = _RATE_METRICS.get(metric, "mean score")
    title = f"Comparison against {comparison.baseline!r} — {what}"
    notes = "".join(paragraph(m, "pl-muted") for m in comparison.messages)
    if df.empty:
        return card(title, notes or paragraph("nothing to compare", "pl-muted"))
    by_cat = "category" in df.columns
    family = f"{fmt_pct(1 - comparison.alpha, 0)} {'FCR-adjusted' if by_cat else 'simultaneous'}"
    headers = ["variant", "model", *(["category"] if by_cat else []), "n", "baseline", "variant",
               f"diff [{family} CI]", "p", "p exact", "p adj", "b / c", "r", "verdict",
               "guardrails (variant − baseline)"]
    rows = []
    for r in df.itertuples():
        ci = f"{_cmp_diff(r.diff, metric)} [{_cmp_diff(r.ci_low, metric)}, {_cmp_diff(r.ci_high, metric)}]"
        ci += f" (each at {fmt_pct(r.ci_level)})" if r.n else ""
        rows.append([r.variant, r.model, *([r.category] if by_cat else []), r.n,
                     _cmp_value(r.baseline_mean, metric), _cmp_value(r.variant_mean, metric), ci,
                     f"{r.p_value:.3g}", f"{r.p_exact:.3g}", f"{r.p_adj:.3g}", f"{r.b} / {r.c}",
                     "NA" if r.correlation != r.correlation else f"{r.correlation:.2f}",
                     _cmp_verdict(r.verdict), _cmp_guard(r)])
    verdict_col = headers.index("verdict")
    adjust = "Benjamini–Hochberg across categories" if by_cat else "Holm across variants"
    methods = " | ".join(dict.fromkeys(df["method"]))
    method = paragraph(f"paired by case; {methods}; p adj: {adjust}; {comparison.interval_footing}; unadjusted "
                       f"intervals in .df (ci_low_unadj, ci_high_unadj); verdicts at α = {comparison.alpha} need "
                       "the adjusted p and the interval to agree (borderline when they do not)", "pl-muted")
    power = "".join(paragraph(f"{_cmp_label(r, by_cat)}: {r.power_note}" + (f" — {r.note}" if r.note else ""),
                              "pl-muted") for r in df.itertuples())
    return card(title, table(headers, rows, raw_columns=[verdict_col]), method, power, notes, *extras(comparison))


def extras(obj: Any) -> list[str]:
    """The reads asked for beside a card's main table (Bayesian, CUPED): ``obj.extra_tables`` as text rows."""
    return [f"<b>{esc(t)}</b>" + table(h, r) + paragraph(n, "pl-muted") for t, h, r, n in obj.extra_tables]


# ---- optimization (promptlab.optimize) -------------------------------------------------------------------
def _num(value: Any, fmt: str = ".1f") -> str:
    """A number with a format, NA for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    return format(value, fmt)


def usd_per_1k(value: Any) -> str:
    """USD per 1,000 calls, or ``unpriced`` when the cost is unknown."""
    return "unpriced" if value is None or value != value else f"${value:.4f}"


def _ci_pct(value: Any, low: Any, high: Any) -> str:
    return f"{fmt_pct(value)} [{fmt_pct(low)}, {fmt_pct(high)}]"


def _verdict_span(verdict: Any, good: Iterable[str], bad: Iterable[str]) -> str:
    css = "pl-good" if verdict in set(good) else "pl-bad" if verdict in set(bad) else "pl-muted"
    return f"<span class='{css}'>{esc(verdict)}</span>"


def compression_html(compression: Any) -> str:
    """The card of a `promptlab.optimize.Compression`: rules, tokens saved per tokenizer, the texts."""
    rules = table(["rule", "changed", "characters saved"],
                  [[e.name, "yes" if e.changed else "no", e.chars_saved] for e in compression.effects])
    savings = table(["model", "tokenizer", "tokens before", "tokens after", "saved", "saved %",
                     "USD saved / 1k calls"],
                    [[r.model, r.tokenizer, _num(r.tokens_before, ".5g"), _num(r.tokens_after, ".5g"),
                      _num(r.saved, ".5g"),
                      _num(r.saved_pct) + "%", usd_per_1k(r.usd_saved_per_1k_calls)]
                     for r in compression.savings.itertuples()])
    texts = table(["before", "after"], [[f"<pre>{esc(compression.original.system)}</pre>",
                                         f"<pre>{esc(compression.prompt.system)}</pre>"]], raw_columns=[0, 1])
    caution = paragraph("Cheaper is not better until the suite says so: run both variants and check "
                        "noninferiority(results, baseline='A', variant='B', margin=...).", "pl-muted")
    title = f"Compression {compression.original.ref} → {compression.prompt.ref}"
    return card(title, "<b>input tokens per request</b>", savings, "<b>rules</b>", rules,
                "<b>system text</b>", texts, caution)


def noninferiority_html(result: Any) -> str:
    """The card of a `promptlab.optimize.NonInferiority`: the decision per model, with the margin stated."""
    passed = result.metric == "passed"
    show = fmt_pct if passed else (lambda v: _num(v, ".3g"))
    diff = (lambda v: "NA" if v != v else f"{100 * v:+.1f} pts") if passed else (lambda v: _num(v, "+.3g"))
    margin = f"{100 * result.margin:.1f} points" if passed else f"{result.margin:g}"
    rows = [[r.model, r.n, show(r.baseline_mean), show(r.variant_mean),
             f"{diff(r.diff)} [{diff(r.ci_low)}, {diff(r.ci_high)}]",
             _verdict_span(r.verdict, ["non-inferior"], ["inferior"]),
             _num(r.input_tokens_saved_pct) + "%", _num(r.cost_saved_pct) + "%"] for r in result.df.itertuples()]
    confidence = f"{100 * (1 - 2 * result.alpha):g}%"
    headers = ["model", "pairs", result.baseline, result.variant, f"diff [{confidence} CI]", "verdict",
               "input tokens saved", "cost saved"]
    notes = "".join(paragraph(r.note, "pl-muted") for r in result.df.itertuples())
    method = paragraph(f"non-inferior when the {confidence} lower bound is above −{margin} (one-sided "
                       f"α = {result.alpha:g}); paired by case; "
                       + (result.df["method"].iloc[0] if len(result.df) else ""), "pl-muted")
    title = f"Non-inferiority of {result.variant!r} vs {result.baseline!r} — margin {margin}"
    return card(title, table(headers, rows, raw_columns=[5]), method, notes)


def routing_decision_html(decision: Any) -> str:
    """The card of a `promptlab.optimize.RoutingDecision`: the choice, every candidate, categories."""
    pct = f"{100 * decision.confidence:g}%"
    rows = [[r.model, r.n, _ci_pct(r.accuracy, r.ci_low, r.ci_high), usd_per_1k(r.cost_per_1k_calls_usd),
             "yes" if r.meets else "no", "yes" if r.pareto else "", "◀ chosen" if r.chosen else ""]
            for r in decision.candidates.itertuples()]
    candidates = table(["model", "n", f"accuracy [{pct} CI]", "per 1k calls", "lower bound meets",
                        "Pareto", ""], rows)
    sections = [paragraph(decision.message, "pl-good" if decision.model else "pl-bad"), candidates]
    if decision.categories is not None:
        cats = [[r.category, r.model if r.meets else f"none (best: {r.best_model})", r.n,
                 _ci_pct(r.accuracy, r.ci_low, r.ci_high), usd_per_1k(r.cost_per_1k_calls_usd)]
                for r in decision.categories.itertuples()]
        sections += ["<b>by category</b>",
                     table(["category", "model", "n", f"accuracy [{pct} CI]", "per 1k calls"], cats)]
    title = f"Routing {decision.task} — threshold {decision.threshold:g} on the {pct} lower bound"
    return card(title, *sections)


def routing_table_html(routing: Any) -> str:
    """The card of a `promptlab.optimize.RoutingTable`: one row per task (and category)."""
    frame = routing.to_frame()
    rows = [[r.task, r.category if isinstance(r.category, str) else "(all)", r.model or "none",
             _num(r.threshold, "g"), fmt_pct(r.accuracy), fmt_pct(r.ci_low), usd_per_1k(r.cost_per_1k_calls_usd),
             r.best_available, r.evaluated] for r in frame.itertuples()]
    headers = ["task", "category", "model", "threshold", "accuracy", "lower bound", "per 1k calls",
               "best available", "evaluated"]
    return card(f"Routing table — {len(routing.tasks)} tasks, generated {routing.generated}", table(headers, rows))


def lock_check_html(check: Any) -> str:
    """The card of a `promptlab.optimize.LockCheck`: each asked model, the locked and served ids."""
    rows = [[r.model, r.locked or "—", r.served, r.calls, "yes" if r.pinned else "no",
             _verdict_span(r.status, ["ok"], ["drift", "several"])] for r in check.df.itertuples()]
    head = paragraph("every model answered as locked" if check.ok else "a model changed behind its name",
                     "pl-good" if check.ok else "pl-bad")
    body = table(["model asked", "locked", "served", "calls", "pinned", "status"], rows, raw_columns=[5])
    return card("Model lockfile check", head, body)


def compatibility_html(matrix: Any) -> str:
    """The card of a `promptlab.optimize.CompatibilityMatrix`: accuracy, paired verdicts, categories."""
    rows = [[r.model + (" (current)" if r.current else ""), r.n, _ci_pct(r.accuracy, r.ci_low, r.ci_high),
             r.errors, r.served, usd_per_1k(r.cost_per_1k_calls_usd),
             "" if r.current else f"{_num(100 * r.diff, '+.1f')} pts [{_num(100 * r.diff_ci_low, '+.1f')}, "
                                  f"{_num(100 * r.diff_ci_high, '+.1f')}]",
             "" if r.current else _num(r.p_adj, ".3g"),
             "" if r.current else _verdict_span(r.verdict, ["better"], ["worse"]),
             "" if r.current else f"{r.regressions} / {r.fixes}"] for r in matrix.df.itertuples()]
    headers = ["model", "n", "accuracy [95% CI]", "no verdict", "served ids", "per 1k calls",
               "diff vs current [95% CI]", "p adj (Holm)", "verdict", "regressions / fixes"]
    cats = matrix.by_category
    cat_rows = [[c, *(fmt_pct(v) for v in row)] for c, row in cats.iterrows()]
    method = paragraph("paired by case against the current model: McNemar mid-p, Newcombe interval, Holm "
                       "across models; regressions = cases the current model passed and this one failed",
                       "pl-muted")
    return card(f"Model compatibility — current {matrix.current}", table(headers, rows, raw_columns=[8]), method,
                "<b>accuracy by category</b>", table(["category", *cats.columns], cat_rows))


# ---- registry: checklist, gates, diff, status ---------------------------------------------------------------
_CHECK_MARKS = {"pass": "<span class='pl-good'>✓ pass</span>", "fail": "<span class='pl-bad'>✗ fail</span>",
                "n/a": "<span class='pl-muted'>n/a</span>"}


def checklist_html(checklist: Any) -> str:
    """The card of a production `Checklist`: one row per item, pass / fail / n/a, the reason and what would fix it."""
    rows = [[_CHECK_MARKS[item.status], item.title, item.reason, item.needed] for item in checklist.items]
    ok = sum(item.ok for item in checklist.items)
    tail = "" if checklist.passed else " — production is refused until every item passes"
    verdict = paragraph(f"{ok} of {len(checklist.items)} items pass{tail}", "pl-good" if checklist.passed else "pl-bad")
    return card(f"Production checklist — {checklist.ref}", verdict,
                table(["", "item", "reason", "needed"], rows, raw_columns=[0]))


def gate_html(result: Any) -> str:
    """The card of a `GateResult`: passed or refused, what failed and what evidence would satisfy the gate."""
    head = paragraph("passed" if result.passed else "refused", "pl-good" if result.passed else "pl-bad")
    failed = table(["failed"], [[f] for f in result.failures]) if result.failures else ""
    needed = table(["needed"], [[n] for n in result.needed]) if result.needed else ""
    details = checklist_html(result.details) if hasattr(result.details, "items") else ""
    return card(f"{result.gate} gate — {result.ref}", head, failed, needed) + details


def status_html(status: Any) -> str:
    """The card of a `RegistryStatus`: every version, its state and where it is live, then the problems."""
    versions = status.versions
    rows = [[r.prompt, r.version, r.state, r.live or "", r.file, r.model,
             "" if r.pinned is None else ("yes" if r.pinned else "FLOATING")] for r in versions.itertuples()]
    live = "; ".join(f"{env}: " + (", ".join(f"{n}@{v}" for n, v in names.items()) or "nothing")
                     for env, names in status.live.items())
    problems = (table(["problem", "ref", "message"], [[p.kind, p.ref, p.message] for p in status.problems])
                if status.problems else paragraph("no integrity problems", "pl-good"))
    return card("Prompt registry", paragraph(live, "pl-muted"),
                table(["prompt", "version", "state", "live", "file", "model", "pinned"], rows), problems)


# ---- production side (promptlab.production) --------------------------------------------------------------
def _prod_num(value: Any, spec: str = ".3g") -> str:
    """A number with a format spec; NA for unknown, ∞ for unbounded."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return format(value, spec)


def _prod_ci(value: Any, low: Any, high: Any, pct: bool = True) -> str:
    """``12.3% [10.1%, 14.6%]`` (or plain numbers with ``pct=False``)."""
    fmt = fmt_pct if pct else _prod_num
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def _prod_state(text: str, good: bool | None) -> str:
    css = "pl-muted" if good is None else "pl-good" if good else "pl-bad"
    return f"<span class='{css}'>{esc(text)}</span>"


def _prod_time(ms: Any) -> str:
    import datetime as _dt

    if ms is None or ms != ms:
        return "NA"
    return _dt.datetime.fromtimestamp(int(ms) / 1000, tz=_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def eventlog_html(summary: dict) -> str:
    """The card of an `EventLog`: file, events, time span, events per prompt."""
    span = f"{_prod_time(summary['first_ms'])} → {_prod_time(summary['last_ms'])}" if summary["events"] else "empty"
    prompts = table(["prompt", "events"], [[p, f"{n:,}"] for p, n in summary["prompts"].items()])
    return card(f"Event log — {summary['events']:,} events", paragraph(f"{summary['path']} · {span}", "pl-muted"),
                prompts)


def _abtest_arms(report: Any) -> str:
    rows = [[r.arm, _prod_num(r.weight, "g"), f"{r.n:,}", f"{r.units:,}",
             _prod_ci(r.success_rate, r.success_low, r.success_high), fmt_pct(r.error_rate),
             _prod_num(r.p50_s, ".3f"), _prod_ci(r.p95_s, r.p95_low_s, r.p95_high_s, pct=False),
             _prod_num(r.cost_per_call_usd, ".5f")] for r in report.arms.itertuples()]
    return table(["arm", "weight", "calls", "units", "success [95% CI]", "errors", "p50 s", "p95 s [95% CI]",
                  "cost/call $"], rows)


def _abtest_decision(report: Any) -> str:
    rows = []
    for r in report.decision.itertuples():
        good = {"better": True, "worse": False}.get(r.verdict)
        diff = f"{_prod_num(100 * r.diff, '+.2f')} pts [{_prod_num(100 * r.ci_low, '+.2f')}, " \
               f"{_prod_num(100 * r.ci_high, '+.2f')}]"
        rows.append([f"{r.arm} − {report.design.baseline}", diff, _prod_num(r.p_value), _prod_num(r.p_adj),
                     _prod_state(r.verdict, good), r.note])
    return "<b>decision: success rate (always valid)</b>" + table(
        ["comparison", "difference [confidence sequence]", "p (running min)", "p adj", "verdict", "note"], rows,
        raw_columns=[4])


def _abtest_guardrails(report: Any) -> str:
    rows = [[r.arm, r.guardrail, _prod_num(r.baseline, ".4g"), _prod_num(r.value, ".4g"),
             f"{_prod_num(r.diff, '+.3g')} [{_prod_num(r.ci_low, '+.3g')}, {_prod_num(r.ci_high, '+.3g')}]",
             _prod_num(r.p_value), _prod_state("degraded" if r.degraded else "holds", not r.degraded)]
            for r in report.guardrails.itertuples()]
    return "<b>guardrails (each at α, outside the decision's family)</b>" + table(
        ["arm", "guardrail", "baseline", "arm", "difference [CS]", "p", "state"], rows, raw_columns=[6])


def abtest_html(report: Any) -> str:
    """The card of an `ABTestReport`: status, arms, the always-valid decision, guardrails, SRM."""
    status_good = True if report.status.startswith("ship") else False if report.status.startswith("stop") else None
    head = f"<p><b>status: {_prod_state(report.status, status_good)}</b></p>"
    reasons = "".join(paragraph(r, "pl-muted") for r in report.reasons)
    srm = paragraph(report.srm.message, "pl-bad" if report.srm.flagged else "pl-muted") if report.srm else ""
    design = report.design
    method = paragraph(f"normal-mixture always-valid test, S = {design.tuning:g}, α = {design.alpha:g}"
                       + (f" (Bonferroni over {len(design.challengers)} arms)" if len(design.challengers) > 1 else "")
                       + "; p is the running minimum over look windows", "pl-muted")
    if report.arms["n"].sum() == 0:
        return card(f"A/B test {design.experiment}", head, reasons)
    return card(f"A/B test {design.experiment}", head, reasons, _abtest_arms(report), _abtest_decision(report),
                _abtest_guardrails(report), srm, method, *extras(report))


def metrics_html(report: Any, limit: int = 24) -> str:
    """The card of a `MetricsReport`: the last windows per group with their intervals."""
    df = report.df.tail(limit)
    keys = [k for k in report.by if k in df]
    rows = [[*(getattr(r, k) for k in keys), f"{r.window_start:%m-%d %H:%M}", f"{r.n:,}",
             _prod_ci(r.success_rate, r.success_rate_low, r.success_rate_high),
             _prod_ci(r.format_failure_rate, r.format_failure_rate_low, r.format_failure_rate_high),
             fmt_pct(r.timeout_rate), _prod_num(r.latency_p50_s, ".3f"),
             _prod_ci(r.latency_p95_s, r.latency_p95_low_s, r.latency_p95_high_s, pct=False),
             _prod_num(r.tokens_per_call, ".0f"), _prod_num(r.cost_per_call_usd, ".5f"),
             _prod_ci(r.quality, r.quality_low, r.quality_high, pct=False) + f" (n={r.quality_n})"]
            for r in df.itertuples()]
    headers = [*keys, "window", "calls", "success", "format failures", "timeouts", "p50 s", "p95 s", "tokens",
               "cost/call $", "quality"]
    note = paragraph(f"{100 * report.confidence:.0f}% intervals: Wilson for rates, order statistics for "
                     "quantiles, CLT for means" + (f"; last {limit} of {len(report.df)} rows" if len(report.df) >
                                                   limit else ""), "pl-muted")
    return card("Prompt metrics", table(headers, rows), note)


def alerts_html(report: Any, limit: int = 30) -> str:
    """The card of an `AlertReport`: alerts sent, then the checks that fired or lacked data."""
    sent = [[a.severity, a.rule, a.message] for a in report.alerts]
    checks = report.checks
    shown = checks[checks["state"] != "ok"].tail(limit)
    rows = [[r.rule, f"{r.prompt}@{r.version}", f"{r.window_end:%m-%d %H:%M}", r.n, _prod_num(r.value, ".4g"),
             _prod_num(r.bound, ".4g"), _prod_num(r.p_value), _prod_state(r.state, None if r.state != "firing"
                                                                         else False)]
            for r in shown.itertuples()]
    summary = paragraph(f"{len(checks)} checks · {len(report.firing)} firing · {len(report.alerts)} notified · "
                        f"{report.suppressed} suppressed by cooldown", "pl-muted")
    errors = "".join(paragraph(f"sink error: {e}", "pl-bad") for e in report.sink_errors)
    return card("Alerts", summary, table(["severity", "rule", "message"], sent) if sent else
                paragraph("no alert sent", "pl-good"), errors,
                table(["rule", "version", "window end", "n", "value", "bound", "p", "state"], rows, raw_columns=[7])
                if rows else "")


def budget_html(budget: Any) -> str:
    """The card of a `TokenBudget`: used and remaining in the current period, recent periods."""
    used, limit = budget.used, budget.limit_tokens
    history = budget.history().tail(7)
    rows = [[r.period, f"{r.used:,}", fmt_pct(r.used / limit if limit else math.nan)] for r in history.itertuples()]
    state = paragraph(f"{used:,} of {limit:,} tokens used in {budget.current_period()} ({budget.period})",
                      "pl-bad" if used >= limit else "pl-muted")
    return card(f"Token budget {budget.name}", state, table(["period", "used", "of limit"], rows))


def shadow_html(report: Any) -> str:
    """The card of a `ShadowReport`: paired success (McNemar) and per-arm metrics."""
    p = report.paired
    paired = table(["pairs", "both ok", "live only", "shadow only", "both failed", "shadow − live [95% CI]",
                    "p (mid-p)"], [[p.n, p.a, p.b, p.c, p.d, _prod_ci(p.effect, p.ci_low, p.ci_high), _prod_num(
                        p.p_value)]])
    return card("Shadow: candidate vs live on the same requests", paired, metrics_html(report.metrics))


def canary_html(canary: Any) -> str:
    """The card of a `Canary`: state, share, and its last read."""
    state = paragraph("rolled back: all traffic on stable" if canary.rolled_back else
                      f"{canary.percent:g}% of units on the candidate · {canary.calls:,} calls",
                      "pl-bad" if canary.rolled_back else "pl-muted")
    last = abtest_html(canary.last_report) if canary.last_report is not None else paragraph("not read yet",
                                                                                           "pl-muted")
    return card(f"Canary {canary.design.experiment}", state, last)
