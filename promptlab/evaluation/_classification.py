"""Results → expected and read labels → classification metrics: `Results.classification` and its table.

The label set is the run's (``meta["suite"]["labels"]``, or each of ``meta["runs"]`` for concatenated results).
Each answer is read as the exact-match scorer reads it (`ExactMatch.extract`, the suite's `LabelSet`), so the
metrics and the pass/fail verdicts never disagree on which label an answer names; an answer naming no label
(or several, none leading) is counted in the ``(none)`` column, and so is an answer the run's output transform
could not read (``error_type`` ``transform_error``). A failed call (no answer) is left out of the metrics and
counted in ``errors``; a case whose ``expected`` is not one of the labels (it has its own scorer)
is left out and counted in ``off_label``. The statistics themselves are `promptlab.stats._classification`'s.

Columns of `ClassificationTable.df` (one row per variant × model):

=================== ==========================================================================================
variant, model      the group
n                   calls in the group
errors              calls with no answer (failed calls), left out of the metrics
off_label           answers to cases whose ``expected`` is not a label, left out
answers             answers the metrics are computed on (n − errors − off_label)
cases               distinct cases among them (the unit the bootstrap resamples)
no_label            answers naming no label (the ``(none)`` column of the confusion matrix)
accuracy            answers naming the expected label / answers (``_ci_low``, ``_ci_high``: its interval).
                    Over answers, not calls: `Results.accuracy` is the headline, counting failed calls as failures
macro_f1            mean per-label F1 over the labels where it is defined, with its interval
micro_f1            F1 of all label decisions pooled (an answer naming no label lowers recall only), interval
kappa               Cohen's κ of read against expected labels, ``(none)`` a category, with its interval
=================== ==========================================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import ArgumentError, UnknownNameError
from ..stats._classification import METRICS, NONE_LABEL, PER_LABEL, _compare_levels, classification_metrics
from ..stats._family import _borderline_note, _verdicts
from ..stats._multiplicity import holm
from ._scoring import ExactMatch

GROUP = ["variant", "model"]
TRANSFORM_ERROR = "transform_error"
"""The ``error_type`` of a row whose answer the run's output transform could not read (`promptlab.run`'s
``transform``): the model answered, so it counts as an answer naming no label, not as a failed call."""
COUNTS = ["n", "errors", "off_label", "answers", "cases", "no_label"]
COLUMNS = [*GROUP, *COUNTS, *(f"{m}{s}" for m in METRICS for s in ("", "_ci_low", "_ci_high"))]
"""Columns of `ClassificationTable.df` (see the module docstring)."""
LABEL_COLUMNS = [*GROUP, "label", "support", "predicted",
                 *(f"{m}{s}" for m in PER_LABEL for s in ("", "_ci_low", "_ci_high"))]
"""Columns of `ClassificationTable.per_label`: one row per variant × model × label."""
COMPARE_COLUMNS = ["variant", "baseline", "model", "n", "cases", "n_dropped", "baseline_macro_f1",
                   "variant_macro_f1", "diff", "ci_low", "ci_high", "ci_level", "ci_low_unadj", "ci_high_unadj",
                   "p_value", "p_adj", "verdict", "method", "note"]
"""Columns of `ClassificationTable.compare`, as in `promptlab.compare` (Holm across variants per model)."""


# ---- reading the results ------------------------------------------------------------------------------------
def label_set(results: Any, labels: Any = None) -> tuple[str, ...]:
    """The label set to read answers against: ``labels`` when given, else the one the run(s) recorded.

    Raises:
        ArgumentError: the results carry no label set, or concatenated runs carry different ones.
    """
    if labels is not None:
        if isinstance(labels, str) or not list(labels):
            raise ArgumentError(f"labels={labels!r}: give the label set as a list, e.g. labels=['positive', "
                                "'negative'].")
        return tuple(str(label) for label in labels)
    metas = results.meta.get("runs") or [results.meta]
    found = list(dict.fromkeys(tuple(m["suite"]["labels"]) for m in metas
                               if (m.get("suite") or {}).get("labels")))
    if not found:
        raise ArgumentError("these results have no label set, so there is nothing to classify against: the suite "
                            "declared no `labels:`. Declare them in the suite file (labels: [a, b, c]) and run "
                            "again, or pass them here: results.classification(labels=['a', 'b', 'c']).")
    if len(found) > 1:
        shown = "; ".join(", ".join(labels) for labels in found)
        raise ArgumentError(f"these results concatenate runs with different label sets ({shown}); classify each "
                            "run alone, or pass one set: results.classification(labels=[...]).")
    return found[0]


def has_labels(results: Any) -> bool:
    """Whether the results carry a label set (the card shows classification metrics only then)."""
    metas = results.meta.get("runs") or [results.meta]
    return any((m.get("suite") or {}).get("labels") for m in metas)


def labelled(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """One row per call: group keys, case and repeat, the expected label and the label read (NA when unknown).

    ``status`` is ``answer`` (used), ``error`` (no answer) or ``off_label`` (expected is not a label).
    """
    scorer = ExactMatch(labels)
    reader = scorer._label_set
    outputs = df["output"].astype(object)
    # the model answered but the run's transform could not get a label out of it: an answer naming no label
    unreadable = df["error_type"].eq(TRANSFORM_ERROR).fillna(False).to_numpy(dtype=bool) if "error_type" in df \
        else np.zeros(len(df), dtype=bool)
    answered = outputs.notna().to_numpy() | unreadable
    texts = pd.unique(outputs[outputs.notna()])
    reading = {text: scorer.extract(str(text)) for text in texts}  # each distinct answer read once
    expected = df["expected"].map(lambda v: reader.canonical(v) if isinstance(v, str) else None)
    status = np.where(~answered, "error", np.where(expected.isna().to_numpy(), "off_label", "answer"))
    return pd.DataFrame({
        "variant": df["variant"].astype(object), "model": df["model"].astype(object),
        "case_id": df["case_id"].astype(object), "repeat": df["repeat"].astype(object),
        "expected_label": expected.astype(object),
        "predicted_label": [None if pd.isna(t) else reading.get(t) for t in outputs],
        "status": status}, index=df.index)


def _group_keys(keys: Any) -> dict[str, Any]:
    return dict(zip(GROUP, keys if isinstance(keys, tuple) else (keys,), strict=True))


# ---- the table ------------------------------------------------------------------------------------------------
def classification_table(results: Any, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0,
                         labels: Any = None) -> ClassificationTable:
    """`Results.classification`: the metrics of every variant × model (see `ClassificationTable`)."""
    label_tuple = label_set(results, labels)
    rows = labelled(results.df, label_tuple)
    summary, per_label, confusions = [], [], {}
    for keys, group in rows.groupby(GROUP, sort=False, dropna=False):
        used = group[group["status"] == "answer"]
        metrics = classification_metrics(used["expected_label"].tolist(), used["predicted_label"].tolist(),
                                         label_tuple, cases=used["case_id"].tolist(), confidence=confidence,
                                         n_boot=n_boot, seed=seed)
        key = _group_keys(keys)
        counts = {"n": len(group), "errors": int((group["status"] == "error").sum()),
                  "off_label": int((group["status"] == "off_label").sum()), "answers": len(used)}
        summary.append({**key, **metrics.summary, **counts})  # n: the group's calls, not only the answers
        per_label.append(metrics.per_label.assign(**key))
        confusions[tuple(key.values())] = metrics.confusion
    df = pd.DataFrame(summary, columns=COLUMNS)
    for column in COUNTS:
        df[column] = df[column].astype("int64")
    labels_df = pd.concat(per_label, ignore_index=True)[LABEL_COLUMNS] if per_label else pd.DataFrame(
        columns=LABEL_COLUMNS)
    return ClassificationTable(df, labels_df, confusions, labels=label_tuple, confidence=confidence,
                               n_boot=n_boot, seed=seed, rows=rows)


def table_or_none(results: Any) -> ClassificationTable | None:
    """`Results.classification` with its defaults for the card and the report, or None when there is nothing
    to show: no rows, no label set, or concatenated runs with different label sets."""
    if results.df.empty or not has_labels(results):
        return None
    try:
        return classification_table(results)
    except ArgumentError:  # runs with different label sets: the card and the report leave the section out
        return None


def card_rows(results: Any) -> list[dict[str, Any]] | None:
    """The results card's classification rows (plain dicts), or None when the run has nothing to classify."""
    table = table_or_none(results)
    return None if table is None else table.df.to_dict("records")


class ClassificationTable:
    """Classification metrics per variant × model, each with a bootstrap interval over cases.

    Attributes:
        df: one row per variant × model: counts, accuracy, macro-F1, micro-F1 and κ with intervals (`COLUMNS`).
        per_label: one row per variant × model × label: support, predicted, precision, recall and F1 with
            intervals; a ratio with nothing to divide by (no answer named the label) is NA, never 0.
        labels: the label set; confidence, n_boot, seed: how the intervals were drawn.
        rows: one row per call with its expected and read label (`labelled`), for your own slices.
    """

    def __init__(self, df: pd.DataFrame, per_label: pd.DataFrame, confusions: dict[tuple, pd.DataFrame], *,
                 labels: tuple[str, ...], confidence: float, n_boot: int, seed: int, rows: pd.DataFrame):
        self.df, self.per_label, self._confusions = df, per_label, confusions
        self.labels, self.confidence, self.n_boot, self.seed, self.rows = labels, confidence, n_boot, seed, rows

    def confusion(self, variant: str | None = None, model: str | None = None) -> pd.DataFrame:
        """The confusion matrix of one variant × model: rows expected, columns read, then ``(none)``.

        ``variant`` and ``model`` may be left out when only one group has them.

        Raises:
            UnknownNameError: no group matches (the message lists the groups).
        """
        keys = [k for k in self._confusions if (variant is None or k[0] == variant)
                and (model is None or k[1] == model)]
        if len(keys) != 1:
            groups = ", ".join(f"{v!r} @ {m!r}" for v, m in self._confusions)
            why = "no group matches" if not keys else "several groups match; name the variant and the model"
            raise UnknownNameError(f"confusion(variant={variant!r}, model={model!r}): {why}. Groups: {groups}.")
        return self._confusions[keys[0]].copy()

    def compare(self, baseline: str | None = None, alpha: float = 0.05) -> pd.DataFrame:
        """Macro-F1 of every variant against ``baseline`` (default: the first variant), paired by case.

        Answers are paired on (case, repeat) within one model; a pair where either side has no answer (or the
        case no label) is dropped and counted in ``n_dropped``. Each difference has a joint case bootstrap
        (`promptlab.stats.compare_macro_f1`, this table's ``n_boot`` and ``seed``); ``p_adj`` is Holm across the
        variants on a model, the displayed interval is at 1 − α/k (Bonferroni, the footing of Holm's p), the
        1 − α one beside it, and the verdict is `promptlab.compare`'s: ``better`` / ``worse`` only when the
        adjusted test and the interval agree, ``borderline`` when they do not. Columns: `COMPARE_COLUMNS`.
        """
        if not 0 < alpha < 1:
            raise ArgumentError(f"alpha={alpha!r} must be between 0 and 1, e.g. 0.05.")
        variants = list(dict.fromkeys(self.rows["variant"]))
        baseline = variants[0] if baseline is None else baseline
        if baseline not in variants:
            raise UnknownNameError(f"baseline {baseline!r} is not a variant in these results; the variants are "
                                   f"{variants!r}. Pass one of them as baseline=.")
        records = [record for variant in variants if variant != baseline
                   for record in self._pairs(baseline, variant)]
        return _finish(pd.DataFrame(records), alpha, self)

    def _pairs(self, baseline: str, variant: str) -> list[dict[str, Any]]:
        rows = self.rows
        base, other = rows[rows["variant"] == baseline], rows[rows["variant"] == variant]
        shared = [m for m in dict.fromkeys(other["model"]) if m in set(base["model"])]
        if shared:
            return [_pair_record(base[base["model"] == m], other[other["model"] == m], baseline, variant, m)
                    for m in shared]
        pooled = " + ".join(dict.fromkeys([*base["model"], *other["model"]]))
        return [_pair_record(base, other, baseline, variant, pooled)]

    def __repr__(self) -> str:
        parts = [f"{r['variant']}@{r['model']}: macro-F1 {_num(r['macro_f1'])} [{_num(r['macro_f1_ci_low'])}, "
                 f"{_num(r['macro_f1_ci_high'])}], κ {_num(r['kappa'])}" for r in self.df.to_dict("records")]
        return f"<ClassificationTable {len(self.labels)} labels; {'; '.join(parts) or 'no rows'}>"

    def _repr_html_(self) -> str:
        from .._display import classification_html

        return classification_html(card_data(self))


def _num(value: Any) -> str:
    return "NA" if value != value else f"{value:.3f}"


# ---- the paired comparison --------------------------------------------------------------------------------------
def _pair_record(base: pd.DataFrame, other: pd.DataFrame, baseline: str, variant: str,
                 model: str) -> dict[str, Any]:
    # a key seen twice in an arm (the same run concatenated twice) pairs first with first, never all with all
    keys = ["case_id", "repeat"]
    base, other = (arm.assign(_nth=arm.groupby(keys, dropna=False, sort=False).cumcount()) for arm in (base, other))
    pairs = base.merge(other, on=[*keys, "_nth"], suffixes=("_a", "_b"))
    usable = (pairs["status_a"] == "answer") & (pairs["status_b"] == "answer")
    used = pairs[usable]
    record = {"variant": variant, "baseline": baseline, "model": model, "n_dropped": int((~usable).sum()),
              "_data": (used["expected_label_a"].tolist(), used["predicted_label_a"].tolist(),
                        used["predicted_label_b"].tolist(), used["case_id"].tolist())}
    return record


def _finish(df: pd.DataFrame, alpha: float, table: ClassificationTable) -> pd.DataFrame:
    """Holm across the variants on each model, intervals at 1 − α/k beside 1 − α, and the verdicts."""
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COMPARE_COLUMNS})
    tested = df["_data"].map(lambda d: len(d[0]) > 0)
    k = tested.groupby(df["model"], sort=False).transform("sum").clip(lower=1)
    df["ci_level"] = 1 - alpha / k
    stats = [_pair_stats(data, level, alpha, table) for data, level in zip(df["_data"], df["ci_level"], strict=True)]
    df = pd.concat([df.drop(columns="_data"), pd.DataFrame(stats, index=df.index)], axis=1)
    df["p_adj"] = df["p_value"].where(tested).groupby(df["model"], sort=False).transform(holm).fillna(1.0)
    df["verdict"] = _verdicts(df, alpha)
    for i in df.index[df["verdict"] == "borderline"]:
        note = _borderline_note(df.loc[i], alpha, "macro_f1", "Holm")
        df.at[i, "note"] = f"{df.at[i, 'note']}; {note}" if df.at[i, "note"] else note
    df[["n", "cases", "n_dropped"]] = df[["n", "cases", "n_dropped"]].astype("int64")
    return df[COMPARE_COLUMNS].reset_index(drop=True)


def _pair_stats(data: tuple, level: float, alpha: float, table: ClassificationTable) -> dict[str, Any]:
    expected, pred_a, pred_b, cases = data
    if not expected:
        return {"n": 0, "cases": 0, "baseline_macro_f1": np.nan, "variant_macro_f1": np.nan, "diff": np.nan,
                "ci_low": np.nan, "ci_high": np.nan, "ci_low_unadj": np.nan, "ci_high_unadj": np.nan,
                "p_value": 1.0, "method": "", "note": "no complete pairs"}
    levels = (level, 1 - alpha) if not np.isclose(level, 1 - alpha) else (level,)
    results = _compare_levels(expected, pred_a, pred_b, table.labels, cases, levels, table.n_boot, table.seed)
    shown, unadj = results[0], results[-1]
    note = "" if shown.cases >= 2 else "fewer than 2 cases: no interval"
    return {"n": shown.n, "cases": shown.cases, "baseline_macro_f1": shown.macro_f1_a,
            "variant_macro_f1": shown.macro_f1_b, "diff": shown.diff, "ci_low": shown.ci_low,
            "ci_high": shown.ci_high, "ci_low_unadj": unadj.ci_low, "ci_high_unadj": unadj.ci_high,
            "p_value": shown.p_value, "method": shown.method, "note": note}


# ---- plain data for the cards (`promptlab._display` imports no room) ----------------------------------------------
def card_data(table: ClassificationTable) -> dict[str, Any]:
    """The table as plain lists and dicts: the summary rows, and per group its confusion matrix and labels."""
    groups = []
    for (variant, model), confusion in table._confusions.items():
        mine = table.per_label[(table.per_label["variant"] == variant) & (table.per_label["model"] == model)]
        groups.append({"title": f"{variant} @ {model}", "columns": list(confusion.columns),
                       "confusion": [[label, *map(int, counts)] for label, counts in
                                     zip(confusion.index, confusion.to_numpy(), strict=True)],
                       "per_label": mine.drop(columns=GROUP).to_dict("records")})
    return {"labels": list(table.labels), "confidence": table.confidence, "n_boot": table.n_boot,
            "summary": table.df.to_dict("records"), "groups": groups, "none": NONE_LABEL}
