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


def _accuracy_section(results: Any) -> str:
    acc = results.accuracy()
    rows = [[r.variant, r.model, r.n, _interval(r), r.errors] for r in acc.itertuples()]
    return table(["variant", "model", "scored", "accuracy [95% CI]", "no verdict"], rows)


def _category_section(results: Any) -> str:
    cat = results.by_category()
    wide = cat.assign(cell=[_interval(r) + f" (n={r.n})" for r in cat.itertuples()])
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
    return "<b>latency and cost</b>" + table(
        ["variant", "model", "p50", "p95", "tokens in", "tokens out", "cost"], rows)


def _error_section(results: Any) -> str:
    errors = results.errors()
    if errors.empty:
        return ""
    counts = errors.groupby("error_type").size()
    text = ", ".join(f"{k}: {v}" for k, v in counts.items())
    first = errors.head(3)
    rows = [[e.case_id, e.variant, e.error_type, truncate(e.error, 120)] for e in first.itertuples()]
    return paragraph(f"errors — {text}", "pl-bad") + table(["case", "variant", "type", "message"], rows)


def _secs(value: Any) -> str:
    return "NA" if value is None or value != value else f"{value:.3f} s"


def _usd(value: Any) -> str:
    return "NA" if value is None or value != value else f"${value:.4f}"


def results_html(results: Any) -> str:
    """The summary card of `Results`: accuracy with intervals, categories, failures, cost, latency, errors."""
    if results.df.empty:
        return card("Results — no rows")
    meta = results.meta
    cache = meta.get("cache") or {}
    info = (f"run {meta.get('run_id', '?')} · {len(results.df)} calls · cache hits {cache.get('hits', 'NA')}"
            + (f" · stopped: {meta['stopped']}" if meta.get("stopped") else ""))
    return card("Results", paragraph(info, "pl-muted"), _accuracy_section(results), _category_section(results),
                _cost_latency_section(results), _error_section(results), _failure_section(results))


# ---- paired comparison -----------------------------------------------------------------------------------
def _cmp_value(value: Any, metric: str) -> str:
    """A rate as a percentage (pass/fail) or a score to 3 significant digits."""
    if metric == "passed":
        return fmt_pct(value)
    return "NA" if value is None or value != value else f"{value:.3g}"


def _cmp_diff(value: Any, metric: str) -> str:
    if value is None or value != value:
        return "NA"
    if math.isinf(value):
        return "−∞" if value < 0 else "+∞"
    return f"{100 * value:+.1f} pts" if metric == "passed" else f"{value:+.3g}"


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
    what = "pass rate" if metric == "passed" else "mean score"
    title = f"Comparison against {comparison.baseline!r} — {what}"
    notes = "".join(paragraph(m, "pl-muted") for m in comparison.messages)
    if df.empty:
        return card(title, notes or paragraph("nothing to compare", "pl-muted"))
    by_cat = "category" in df.columns
    headers = ["variant", "model", *(["category"] if by_cat else []), "n", "baseline", "variant",
               "diff [95% CI]", "p", "p exact", "p adj", "b / c", "r", "verdict",
               "guardrails (variant − baseline)"]
    rows = []
    for r in df.itertuples():
        ci = f"{_cmp_diff(r.diff, metric)} [{_cmp_diff(r.ci_low, metric)}, {_cmp_diff(r.ci_high, metric)}]"
        rows.append([r.variant, r.model, *([r.category] if by_cat else []), r.n,
                     _cmp_value(r.baseline_mean, metric), _cmp_value(r.variant_mean, metric), ci,
                     f"{r.p_value:.3g}", f"{r.p_exact:.3g}", f"{r.p_adj:.3g}", f"{r.b} / {r.c}",
                     "NA" if r.correlation != r.correlation else f"{r.correlation:.2f}",
                     _cmp_verdict(r.verdict), _cmp_guard(r)])
    verdict_col = headers.index("verdict")
    adjust = "Benjamini–Hochberg across categories" if by_cat else "Holm across variants"
    methods = " | ".join(dict.fromkeys(df["method"]))
    method = paragraph(f"paired by case; {methods}; p adj: {adjust}; verdicts at α = {comparison.alpha}",
                       "pl-muted")
    power = "".join(paragraph(f"{_cmp_label(r, by_cat)}: {r.power_note}" + (f" — {r.note}" if r.note else ""),
                              "pl-muted") for r in df.itertuples())
    return card(title, table(headers, rows, raw_columns=[verdict_col]), method, power, notes)
