"""The review viewer: ``pl.view(results)`` — read every answer, find the ones that matter, record a human verdict.

One row per case × model × repeat with every variant's answer side by side. Filters: failures (a variant's
answer failed its scorer or its call failed), variants disagree, not yet reviewed, category, tag, text search;
a sort; a drill-down on one case showing the input, the expected value and, per variant, the answer, the scorer's
verdict, score and reason, the judge's criterion scores and rationale, and the human verdict. A verdict and a
comment recorded here go to the suite's review file (`promptlab.evaluation._reviews`), which
``Results.human_accuracy`` and judge calibration read.

The logic (`review_table`, `filter_rows`, `sort_rows`, `case_html`, `static_html`) is plain pandas and HTML so
it is tested without a browser; `ReviewViewer` wires it to ipywidgets. Where widgets cannot render (a shared
HTML file, GitHub), the display falls back to the static table (``text/html`` beside the widget view).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from .._display import card, esc, paragraph, truncate
from ..errors import ArgumentError, UnknownNameError

ALL = "(all)"
ALL_VARIANTS = "(every variant)"
KEYS = ["run_id", "case_id", "model", "repeat"]  # several runs concatenated: one row per run
SORTS = ("suite order", "case id", "category", "failures first", "disagreements first")
STATIC_LIMIT = 500  # rows in the static table (a shared file stays readable); the count says when more exist


# ---- the table ------------------------------------------------------------------------------------------------
def review_table(df: pd.DataFrame, tags: dict[str, tuple[str, ...]] | None = None,
                 reviews: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per case × model × repeat (× run, for concatenated runs), in suite order, with per variant
    ``output:``, ``passed:`` (the scorer's), ``score:``, ``reason:``, ``judge:`` (criterion scores), ``run_id:``,
    ``human:``, ``comment:``, ``errored:`` and ``error:`` columns, plus ``tags``, ``failed`` (a variant failed or
    its call failed), ``disagree``, ``reviewed`` (a human verdict covers a variant) and ``text`` (lower-case, for
    search).

    Args:
        df: a results frame.
        tags: each case's tags (from the suite), by case id.
        reviews: the human verdicts (`promptlab.evaluation.load_reviews`), or None.
    """
    from ..evaluation._reviews import apply_reviews

    if df.empty:
        raise ArgumentError("the results have no rows to review. Run a suite first (pl.run(...)).")
    reviewed = apply_reviews(df, reviews) if reviews is not None and len(reviews) else \
        df.assign(human=pd.Series(pd.NA, index=df.index, dtype="string"),
                  human_comment=pd.Series(pd.NA, index=df.index, dtype="string"))
    judge_columns = [c for c in df.columns if c.startswith("score_")]
    frame = reviewed.assign(
        judge=[_judge_text(row, judge_columns) for row in reviewed[judge_columns].to_dict("records")]
        if judge_columns else "",
        errored=reviewed["error_type"].notna(), scorer_passed=df["passed"], run_of=reviewed["run_id"])
    values = {"output": "output", "passed": "scorer_passed", "score": "score", "reason": "reason", "judge": "judge",
              "run_id": "run_of", "human": "human", "comment": "human_comment", "errored": "errored",
              "error": "error"}
    first = frame.drop_duplicates(KEYS).set_index(KEYS)[["category", "input", "expected"]]
    table = first
    for prefix, column in values.items():
        wide = frame.pivot_table(index=KEYS, columns="variant", values=column, aggfunc="first", sort=False,
                                 dropna=False)
        table = table.join(wide.add_prefix(f"{prefix}:"))
    table = table.reset_index()
    variants = [str(v) for v in pd.unique(df["variant"])]
    return _flags(table, variants, tags or {})


def _flags(table: pd.DataFrame, variants: list[str], tags: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """The filter columns of `review_table`."""
    passed = table[[f"passed:{v}" for v in variants]].astype("boolean")
    errored = table[[f"errored:{v}" for v in variants]].astype("boolean").fillna(False)
    answers = table[[f"output:{v}" for v in variants]].astype("string").fillna("<no answer>")
    disagree = (passed.nunique(axis=1, dropna=False) > 1) | (answers.nunique(axis=1) > 1)
    failed = passed.eq(False).fillna(False).any(axis=1) | errored.any(axis=1)
    human = table[[f"human:{v}" for v in variants]]
    searched = ["case_id", "input", "expected", *[f"{p}:{v}" for p in ("output", "reason", "comment")
                                                   for v in variants]]
    text = table["case_id"].map(_as_text)
    for column in searched[1:]:  # column by column: a row-wise apply is slow on thousands of rows
        text = text + " " + table[column].map(_as_text, na_action=None)
    text = text.str.lower()
    return table.assign(tags=table["case_id"].map(lambda c: tuple(tags.get(str(c), ()))),
                        failed=failed.astype(bool).to_numpy(), disagree=disagree.astype(bool).to_numpy(),
                        reviewed=human.notna().any(axis=1).to_numpy(), text=text.to_numpy())


def _judge_text(row: dict, columns: list[str]) -> str:
    """``relevance 4 · tone 2``: the judge's criterion scores of one answer."""
    names = {c: "overall" if c == "score_overall_raw" else c.removeprefix("score_") for c in columns}
    return " · ".join(f"{names[c]} {_as_text(row[c])}" for c in columns if not _missing(row[c]))


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _as_text(value: Any) -> str:
    if _missing(value):
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def variants_of(table: pd.DataFrame) -> list[str]:
    """The variants of a `review_table`, in run order."""
    return [c.removeprefix("output:") for c in table.columns if c.startswith("output:")]


# ---- filters and sort ------------------------------------------------------------------------------------------
def filter_rows(table: pd.DataFrame, *, failures: bool = False, disagree: bool = False, unreviewed: bool = False,
                category: str | None = None, tag: str | None = None, text: str = "") -> pd.DataFrame:
    """The rows of a `review_table` the filters select (every filter given must hold).

    Args:
        failures: only rows where a variant's answer failed its scorer or its call failed.
        disagree: only rows where the variants' verdicts or answers differ.
        unreviewed: only rows no human verdict covers yet.
        category: only this category (None or ``"(all)"``: every one).
        tag: only cases carrying this tag.
        text: only rows whose case id, input, expected, answers, reasons or comments contain it (any case).
    """
    keep = pd.Series(True, index=table.index)
    if failures:
        keep &= table["failed"]
    if disagree:
        keep &= table["disagree"]
    if unreviewed:
        keep &= ~table["reviewed"]
    if category not in (None, ALL):
        keep &= table["category"].astype("string").eq(category).fillna(False).astype(bool)
    if tag not in (None, ALL):
        keep &= table["tags"].map(lambda found: tag in found).astype(bool)
    if text and text.strip():
        keep &= table["text"].str.contains(text.strip().lower(), regex=False)
    return table[keep]


def sort_rows(table: pd.DataFrame, by: str = "suite order") -> pd.DataFrame:
    """The rows in the order ``by`` names: one of `SORTS`, or ``score <variant>`` (lowest first)."""
    variants = variants_of(table)
    if by == "suite order":
        return table
    if by == "case id":
        return table.sort_values(["case_id", "model", "repeat"], kind="stable")
    if by == "category":
        return table.sort_values("category", kind="stable", na_position="last")
    if by in ("failures first", "disagreements first"):
        return table.sort_values("failed" if by == "failures first" else "disagree", ascending=False, kind="stable")
    if by.startswith("score ") and by.removeprefix("score ") in variants:
        return table.sort_values(f"score:{by.removeprefix('score ')}", kind="stable", na_position="last")
    raise UnknownNameError(f"sort by {by!r} is not known; choose one of {sort_choices(variants)!r}.")


def sort_choices(variants: list[str]) -> list[str]:
    """Every sort `sort_rows` takes for these variants."""
    return [*SORTS, *(f"score {v}" for v in variants)]


def row_label(row: dict, with_run: bool = False) -> str:
    """How a row is named in the case list: ``neg-003 · model · #0`` (`` · run <id>`` when runs are mixed)."""
    run = f" · run {_as_text(row['run_id'])}" if with_run else ""
    return f"{row['case_id']} · {row['model']} · #{row['repeat']}{run}"


# ---- HTML ------------------------------------------------------------------------------------------------------
def _mark(passed: Any, errored: Any = False) -> str:
    if bool(errored) and _missing(passed):
        return "<span class='pl-bad'>error</span>"
    if _missing(passed):
        return "<span class='pl-muted'>–</span>"
    return "<span class='pl-good'>✓</span>" if bool(passed) else "<span class='pl-bad'>✗</span>"


def _human(verdict: Any) -> str:
    if _missing(verdict):
        return ""
    css = "pl-good" if verdict == "pass" else "pl-bad"
    return f" <span class='{css}' title='human verdict'>[human: {esc(verdict)}]</span>"


def rows_html(table: pd.DataFrame, limit: int = 50) -> str:
    """The table: case, category, tags, input, expected, then each variant's answer with the scorer's mark
    and the human verdict."""
    variants = variants_of(table)
    header = "".join(f"<th>{esc(v)}</th>" for v in variants)
    body = []
    with_run = table["run_id"].nunique(dropna=False) > 1
    for row in table.head(limit).to_dict("records"):
        cells = "".join(f"<td>{_mark(row[f'passed:{v}'], row[f'errored:{v}'])}{_human(row[f'human:{v}'])} "
                        f"{esc(truncate(_as_text(row[f'output:{v}']), 80))}</td>" for v in variants)
        body.append(f"<tr data-case='{esc(row['case_id'])}'><td>{esc(row_label(row, with_run))}</td>"
                    f"<td>{esc(_as_text(row['category']))}</td><td>{esc(', '.join(row['tags']))}</td>"
                    f"<td>{esc(truncate(_as_text(row['input']), 120))}</td>"
                    f"<td>{esc(truncate(_as_text(row['expected']), 60))}</td>{cells}</tr>")
    more = paragraph(f"showing {limit} of {len(table)} rows", "pl-muted") if len(table) > limit else ""
    return (f"<table class='pl-view-table'><thead><tr><th>case · model · repeat</th><th>category</th><th>tags</th>"
            f"<th>input</th><th>expected</th>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}")


def case_html(row: dict) -> str:
    """The drill-down of one row: input, expected, tags, and per variant (side by side) the answer, the scorer's
    verdict, score and reason, the judge's scores and the human verdict with its comment."""
    variants = [c.removeprefix("output:") for c in row if c.startswith("output:")]
    head = "".join(f"<th>{esc(v)}</th>" for v in variants)

    def line(name: str, cell: Any) -> str:
        return f"<tr><th>{esc(name)}</th>{''.join(f'<td>{cell(v)}</td>' for v in variants)}</tr>"

    lines = [
        line("answer", lambda v: f"<pre>{esc(_as_text(row[f'output:{v}']) or '<no answer>')}</pre>"),
        line("scorer", lambda v: _mark(row[f"passed:{v}"], row[f"errored:{v}"])),
        line("score", lambda v: esc(_as_text(row[f"score:{v}"]))),
        line("reason / rationale", lambda v: esc(_as_text(row[f"reason:{v}"]))),
        line("judge scores", lambda v: esc(_as_text(row[f"judge:{v}"]))),
        line("error", lambda v: f"<span class='pl-bad'>{esc(_as_text(row[f'error:{v}']))}</span>"),
        line("human", lambda v: _human(row[f"human:{v}"]) + " " + esc(_as_text(row[f"comment:{v}"]))),
        line("run", lambda v: f"<span class='pl-muted'>{esc(_as_text(row[f'run_id:{v}']))}</span>"),
    ]
    facts = (f"<p><b>input</b></p><pre>{esc(_as_text(row['input']))}</pre>"
             f"<p><b>expected</b></p><pre>{esc(_as_text(row['expected']))}</pre>"
             + paragraph(f"category {_as_text(row['category'])} · tags {', '.join(row['tags']) or '–'}", "pl-muted"))
    return card(f"Case {row_label(row, with_run=True)}", facts,
                f"<table class='pl-view-case'><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(lines)}"
                "</tbody></table>")


def accuracy_html(accuracy: pd.DataFrame | None) -> str:
    """Human-corrected accuracy per variant × model beside the scorer's (nothing before any verdict)."""
    if accuracy is None or accuracy.empty or not int(accuracy["reviewed"].fillna(0).sum()):
        return paragraph("no human verdicts yet: accuracy is the scorer's", "pl-muted")
    rows = "".join(
        f"<tr><td>{esc(r['variant'])}</td><td>{esc(r['model'])}</td><td>{r['accuracy_scorer']:.1%}</td>"
        f"<td>{r['accuracy']:.1%} [{r['ci_low']:.1%}, {r['ci_high']:.1%}]</td><td>{r['reviewed']}</td>"
        f"<td>{r['overridden']}</td></tr>" for r in accuracy.to_dict("records"))
    return ("<table class='pl-view-accuracy'><thead><tr><th>variant</th><th>model</th><th>scorer</th>"
            "<th>human-corrected (95% CI)</th><th>reviewed</th><th>overridden</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def static_html(table: pd.DataFrame, accuracy: pd.DataFrame | None = None, review_file: Path | None = None,
                limit: int = STATIC_LIMIT) -> str:
    """The viewer where widgets do not render: the counts, human-corrected accuracy and the table of rows."""
    counts = (f"{len(table)} rows · {int(table['failed'].sum())} with a failure · {int(table['disagree'].sum())} "
              f"where the variants disagree · {int(table['reviewed'].sum())} reviewed")
    where = paragraph(f"review file: {review_file}", "pl-muted") if review_file else ""
    return card("Review", paragraph(counts, "pl-muted"), accuracy_html(accuracy), where, rows_html(table, limit))


# ---- inputs ----------------------------------------------------------------------------------------------------
def suite_tags(suite: Any) -> dict[str, tuple[str, ...]]:
    """Each case's tags from a `Suite` (or a suite file path); no suite: no tags."""
    if suite is None:
        return {}
    if isinstance(suite, str | os.PathLike):
        from ..authoring import load_suite

        suite = load_suite(suite)
    return {case.id: tuple(case.tags) for case in suite}


# ---- the widget ------------------------------------------------------------------------------------------------
class ReviewViewer:
    """The review viewer: the table and its filters, the drill-down, and the verdict form (``widget``).

    Displayed in a notebook it is the ipywidgets panel, with the static table beside it for frontends that
    cannot render widgets. `record` writes a verdict (the form's Save button calls it).
    """

    def __init__(self, results: Any, *, suite: Any = None, review_file: str | Path | None = None,
                 reviewer: str | None = None):
        from ..evaluation import Results, load_run

        if isinstance(results, str):  # a run id (or a unique prefix) from pl.runs()
            results = load_run(results)
        if isinstance(results, pd.DataFrame):
            results = Results(results)
        if not isinstance(results, Results):
            raise ArgumentError(f"pl.view needs the Results of a run (what pl.run returned, Results.load(path)) or "
                                f"a run id from pl.runs(), got {type(results).__name__}.")
        self.results, self.suite, self.reviewer = results, suite, reviewer
        self.notes: list[str] = []
        self.review_file = self._review_file(review_file)
        self.suite_file = self._suite_file()
        self.tags = self._tags()
        self.reload()
        self.widget = self._build()

    # ---- data -----------------------------------------------------------------------------------------------
    def _review_file(self, given: str | Path | None) -> Path | None:
        from ..evaluation._reviews import review_path

        if given is not None:
            return Path(given)
        try:
            return review_path(self.suite if self.suite is not None else self.results)
        except ArgumentError:
            self.notes.append("verdicts cannot be saved: the results name no suite; pass suite= or review_file=")
            return None

    def _suite_file(self) -> Path | None:
        from ..evaluation._reviews import REVIEW_SUFFIX, suite_file_of

        found = suite_file_of(self.suite) if self.suite is not None else suite_file_of(self.results)
        return found if found is not None and found.is_file() and not found.name.endswith(REVIEW_SUFFIX) else None

    def _tags(self) -> dict[str, tuple[str, ...]]:
        from ..errors import SuiteFileError

        source = self.suite if self.suite is not None and not isinstance(self.suite, str | os.PathLike) \
            else self.suite_file
        try:
            return suite_tags(source)
        except SuiteFileError as exc:  # the suite file changed since the run: review the answers without its tags
            self.notes.append(f"tags unavailable: {str(exc).splitlines()[0]}")
            return {}

    def reload(self) -> None:
        """Read the review file again and rebuild the table and the human-corrected accuracy."""
        from ..evaluation._reviews import file_hash, read_review_file, reviews_frame

        review = read_review_file(self.review_file) if self.review_file else None
        self.reviews = reviews_frame(review.verdicts) if review else None
        self.stale = bool(review and review.suite_hash and self.suite_file
                          and review.suite_hash != file_hash(self.suite_file))
        self.table = review_table(self.results.df, self.tags, self.reviews)
        self.variants = variants_of(self.table)
        has = self.reviews is not None and len(self.reviews)
        self.accuracy = self.results.human_accuracy(self.reviews) if has else None

    def record(self, case_id: str, human: str | None, *, variant: str | None = None, comment: str = "",
               model: str | None = None, run_id: str | None = None, score: float | None = None) -> Path:
        """Write a human verdict on ``case_id`` (one variant, or every variant when None) for the run these
        results come from (``run_id`` picks one when they hold several; without it the verdict holds for every
        run); ``human=None`` removes it. Returns the review file."""
        from ..evaluation._reviews import record_verdict, suite_name_of

        if self.review_file is None:
            raise ArgumentError("these results name no suite, so there is no review file to write; open the viewer "
                                "with pl.view(results, suite=<suite file or Suite>) or review_file=<path>.")
        rows = self.table[self.table["case_id"] == str(case_id)]
        if model is not None:
            rows = rows[rows["model"] == model]
        if run_id is not None:
            rows = rows[rows["run_id"] == run_id]
        if rows.empty:
            raise UnknownNameError(f"case {case_id!r} is not in these results; cases include "
                                   f"{list(pd.unique(self.table['case_id']))[:10]!r}.")
        if variant is not None and variant not in self.variants:
            raise UnknownNameError(f"variant {variant!r} is not in these results; they have {self.variants!r}.")
        runs = {_as_text(r) for v in ([variant] if variant else self.variants) for r in rows[f"run_id:{v}"]} - {""}
        path = record_verdict(self.review_file, str(case_id), human, variant=variant,
                              run_id=runs.pop() if len(runs) == 1 else None, comment=comment, score=score,
                              reviewer=self.reviewer, suite_file=self.suite_file,
                              suite_name=suite_name_of(self.suite if self.suite is not None else self.results))
        self.reload()
        if self.widget is not None:
            self.refresh()
        return path

    def filtered(self) -> pd.DataFrame:
        """The rows the widget's filters select, in its sort order."""
        c = self.controls
        rows = filter_rows(self.table, failures=c["failures"].value, disagree=c["disagree"].value,
                           unreviewed=c["unreviewed"].value, category=c["category"].value, tag=c["tag"].value,
                           text=c["search"].value)
        return sort_rows(rows, c["sort"].value)

    # ---- widgets --------------------------------------------------------------------------------------------
    def _build(self) -> Any:
        import ipywidgets as w

        categories = sorted({_as_text(c) for c in self.table["category"]} - {""})
        tags = sorted({t for found in self.table["tags"] for t in found})
        self.controls = {
            "failures": w.Checkbox(description="failures"), "disagree": w.Checkbox(description="variants disagree"),
            "unreviewed": w.Checkbox(description="not reviewed"),
            "category": w.Dropdown(options=[ALL, *categories], description="category"),
            "tag": w.Dropdown(options=[ALL, *tags], description="tag"),
            "search": w.Text(placeholder="search answers, inputs, reasons", description="search"),
            "sort": w.Dropdown(options=sort_choices(self.variants), description="sort"),
        }
        self.summary, self.rows, self.detail, self.status = w.HTML(), w.HTML(), w.HTML(), w.HTML()
        self.case = w.Select(options=[], description="case", rows=8, layout=w.Layout(width="60%"))
        self.form = {
            "variant": w.Dropdown(options=[ALL_VARIANTS, *self.variants], description="variant"),
            "verdict": w.ToggleButtons(options=["pass", "fail", "clear"], value=None, description="verdict"),
            "comment": w.Text(placeholder="why", description="comment"),
            # text, not a number box: a blank score is no score (a number box would say 0)
            "score": w.Text(placeholder="on the judge's scale (optional)", description="score"),
            "save": w.Button(description="Save verdict", button_style="primary",
                             disabled=self.review_file is None),
        }
        for name, control in {**self.controls, **self.form, "case": self.case}.items():
            control.add_class(f"pl-view-{name}")  # stable handles for browser tests
        for control in self.controls.values():
            control.observe(lambda _change: self.refresh(), names="value")
        self.case.observe(lambda _change: self.show(), names="value")
        self.form["save"].on_click(lambda _button: self._save())
        filters = w.VBox([w.HBox([self.controls[k] for k in ("failures", "disagree", "unreviewed")]),
                          w.HBox([self.controls[k] for k in ("category", "tag", "search", "sort")])])
        form = w.VBox([w.HBox([self.form[k] for k in ("variant", "verdict")]),
                       w.HBox([self.form[k] for k in ("comment", "score", "save")])])
        self.refresh()
        return w.VBox([filters, self.summary, self.rows, self.case, self.detail, form, self.status])

    def refresh(self) -> None:
        """Redraw the counts, the table and the case list for the current filters."""
        rows = self.filtered()
        stale = ["the suite file changed since these verdicts were recorded: check them against the cases"] \
            if self.stale else []
        notes = "".join(paragraph(n, "pl-muted") for n in [*self.notes, *stale])
        counts = (f"{len(rows)} of {len(self.table)} rows · {int(self.table['failed'].sum())} with a failure · "
                  f"{int(self.table['disagree'].sum())} where the variants disagree · "
                  f"{int(self.table['reviewed'].sum())} reviewed")
        self.summary.value = card("Review", paragraph(counts, "pl-muted"), accuracy_html(self.accuracy), notes)
        self.rows.value = rows_html(rows)
        with_run = self.table["run_id"].nunique(dropna=False) > 1
        labels = [(row_label(r, with_run), i) for i, r in zip(rows.index, rows.to_dict("records"), strict=True)]
        keep = self.case.value if self.case.value in rows.index else (labels[0][1] if labels else None)
        self.case.options = labels
        self.case.value = keep
        self.show()

    def show(self) -> None:
        """Show the selected row's drill-down."""
        index = self.case.value
        self.detail.value = case_html(self.table.loc[index].to_dict()) if index is not None else \
            paragraph("no rows match the filters", "pl-muted")

    def _save(self) -> None:
        index, verdict = self.case.value, self.form["verdict"].value
        if index is None or verdict is None:
            self.status.value = paragraph("choose a case and a verdict first", "pl-bad")
            return
        score = self.form["score"].value.strip()
        try:
            score_value = float(score) if score else None
        except ValueError:
            self.status.value = paragraph(f"score {score!r} is not a number: write one such as 4, or leave it blank",
                                          "pl-bad")
            return
        row = self.table.loc[index]
        variant = None if self.form["variant"].value == ALL_VARIANTS else self.form["variant"].value
        path = self.record(row["case_id"], None if verdict == "clear" else verdict, variant=variant,
                           comment=self.form["comment"].value, model=row["model"], score=score_value,
                           run_id=None if _missing(row["run_id"]) else row["run_id"])
        self.status.value = paragraph(f"saved: {row['case_id']} {variant or 'every variant'} → {verdict} in {path}",
                                      "pl-good")

    # ---- display --------------------------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        return static_html(self.table, self.accuracy, self.review_file)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # the widget view where a frontend renders widgets; the static table where it cannot (nbconvert picks
        # text/html when the notebook carries no widget state)
        bundle = dict(self.widget._repr_mimebundle_() or {})
        bundle["text/html"] = self._repr_html_()
        return bundle

    def __repr__(self) -> str:
        return (f"ReviewViewer({len(self.table)} rows, {len(self.variants)} variants, "
                f"review file {str(self.review_file) if self.review_file else 'none'})")


def view(results: Any, *, suite: Any = None, review_file: str | Path | None = None,
         reviewer: str | None = None) -> ReviewViewer:
    """Open the review viewer on ``results`` (display the returned object in a notebook cell).

    Args:
        results: the `Results` of a run (or its frame), or a recorded run's id or unique prefix (``pl.runs()``).
        suite: the suite file (path) or `Suite` the run used: its cases' tags, and the review file beside the
            suite file. Default: the suite the results record (their file once recorded, else their suite's
            name, whose review file lives under the runs dir's ``reviews/``).
        review_file: where verdicts go, overriding the above.
        reviewer: who reviews (default: ``$PROMPTLAB_USER``, git's user.name, the login name).
    """
    return ReviewViewer(results, suite=suite, review_file=review_file, reviewer=reviewer)
