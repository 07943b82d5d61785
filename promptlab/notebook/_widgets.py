"""The variant explorer: an ipywidgets panel to read each variant's answers side by side.

``pl.explore(results)`` shows, per case, the input, the expected answer and every variant's output (marked
pass / fail), filtered by category or case, optionally only the cases where the variants disagree.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .._display import card, esc, paragraph, truncate

ALL = "(all)"


def side_by_side(df: pd.DataFrame) -> pd.DataFrame:
    """One row per case × model × repeat, one output column per variant, plus whether the variants disagree
    (different pass/fail verdicts or, without verdicts, different answers)."""
    keys = ["case_id", "model", "repeat"]
    outputs = df.pivot_table(index=keys, columns="variant", values="output", aggfunc="first", sort=False)
    verdicts = df.pivot_table(index=keys, columns="variant", values="passed", aggfunc="first", sort=False)
    first = df.drop_duplicates(keys).set_index(keys)[["category", "input", "expected"]]
    table = first.join(outputs.add_prefix("output:")).join(verdicts.add_prefix("passed:"))
    answers = outputs.astype("string").fillna("<no answer>")
    disagree = verdicts.astype("boolean").nunique(axis=1, dropna=False) > 1
    disagree |= answers.nunique(axis=1) > 1
    return table.assign(disagree=disagree.reindex(table.index).fillna(False).astype(bool)).reset_index()


def _mark(passed: Any) -> str:
    if passed is None or passed is pd.NA or (isinstance(passed, float) and passed != passed):
        return "<span class='pl-muted'>–</span>"
    return "<span class='pl-good'>✓</span>" if bool(passed) else "<span class='pl-bad'>✗</span>"


def rows_html(table: pd.DataFrame, variants: list[str], limit: int = 50) -> str:
    """The explorer's table: case, category, input, expected, then each variant's output with its mark."""
    header = "".join(f"<th>{esc(v)}</th>" for v in variants)
    body = []
    for record in table.head(limit).to_dict("records"):
        cells = "".join(f"<td>{_mark(record.get(f'passed:{v}'))} {esc(truncate(record.get(f'output:{v}'), 80))}</td>"
                        for v in variants)
        body.append(f"<tr><td>{esc(record['case_id'])}</td><td>{esc(record['category'])}</td>"
                    f"<td>{esc(truncate(record['input'], 120))}</td><td>{esc(record['expected'])}</td>{cells}</tr>")
    more = paragraph(f"showing {limit} of {len(table)}", "pl-muted") if len(table) > limit else ""
    return (f"<table><thead><tr><th>case</th><th>category</th><th>input</th><th>expected</th>{header}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{more}")


class VariantExplorer:
    """Filters and the table; `widget` is the ipywidgets panel to display.

    Args:
        results: a `Results` (or its frame) with at least two variants.
    """

    def __init__(self, results: Any):
        import ipywidgets as w

        df = results.df if hasattr(results, "df") else results
        self.table = side_by_side(df)
        self.variants = [str(v) for v in pd.unique(df["variant"])]
        self.category = w.Dropdown(options=[ALL, *sorted(self.table["category"].dropna().unique())],
                                   description="category")
        self.case = w.Dropdown(options=[ALL, *self.table["case_id"].unique()], description="case")
        self.only_disagreements = w.Checkbox(value=False, description="only disagreements")
        self.output = w.HTML()
        for control in (self.category, self.case, self.only_disagreements):
            control.observe(lambda _change: self.refresh(), names="value")
        self.widget = w.VBox([w.HBox([self.category, self.case, self.only_disagreements]), self.output])
        self.refresh()

    def filtered(self) -> pd.DataFrame:
        """The rows the current filters select."""
        table = self.table
        if self.category.value != ALL:
            table = table[table["category"] == self.category.value]
        if self.case.value != ALL:
            table = table[table["case_id"] == self.case.value]
        if self.only_disagreements.value:
            table = table[table["disagree"]]
        return table

    def refresh(self) -> None:
        """Redraw the table for the current filters."""
        table = self.filtered()
        summary = paragraph(f"{len(table)} of {len(self.table)} rows · {int(self.table['disagree'].sum())} "
                            "where the variants disagree", "pl-muted")
        self.output.value = card("Variant explorer", summary, rows_html(table, self.variants))

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def explore(results: Any) -> VariantExplorer:
    """Open the variant explorer on ``results`` (display the returned object in a notebook cell)."""
    return VariantExplorer(results)
