"""Classification metrics on label arrays, with intervals from a bootstrap over cases.

What is computed (each reference call is pinned in ``tests/test_classification.py``; the page is
``docs/statistics.md``, section "Classification metrics"):

* the **confusion matrix**: rows are the expected labels, columns the labels read plus a last column
  `NONE_LABEL` (``"(none)"``) for answers naming no label (or several, none of them leading) —
  ``sklearn.metrics.confusion_matrix`` on the rows with ``"(none)"`` as one more predicted class;
* per label: **support** (answers expected to be it), **predicted** (answers naming it), **precision**
  TP / predicted, **recall** TP / support, **F1** 2·TP / (predicted + support) —
  ``precision_recall_fscore_support(..., labels=labels, zero_division=np.nan)``: a ratio whose denominator is 0
  (the precision of a label no answer named, the recall of a label no case expects) is **NaN**, never 0;
  an F1 is NaN only for a label neither expected nor named;
* **macro-F1**: the mean of the per-label F1 over the labels where it is defined (``f1_score(...,
  average="macro", zero_division=np.nan)`` leaves the NaNs out); **micro-F1** over the declared labels, so an
  answer naming no label lowers recall but not precision (``average="micro"``);
* **accuracy** TP / answers (an answer naming no label is wrong; ``accuracy_score``) and **Cohen's κ**
  between the expected and the read labels, ``(none)`` a category of its own (``cohen_kappa_score``; NaN when
  the chance agreement is 1).

Intervals: a seeded percentile bootstrap over **cases**: cases are drawn with replacement and all the answers of
a drawn case (its repeats) come with it, so answers to one case are never treated as independent. The draws are
counted per case over the cases in sorted-id order, so a shuffled input gives identical intervals. A
resample where a value is undefined (0/0) is left out of that value's percentiles. Fewer than two cases → NA
intervals (one case says nothing about the spread). Accuracy, precision and recall are proportions: their
interval is never narrower than Wilson's at the estimate over the distinct cases behind the denominator (a
percentile interval of 4 right answers out of 4 would read [1, 1]). F1, macro/micro-F1 and κ are percentile
only, so at a boundary (every answer right) their interval is a point.

`compare_macro_f1` compares two arms answered on the same cases: one set of case draws serves both arms, so the
interval of the difference keeps the pairing; its p-value is the bootstrap's two-sided
``2·min(#{d* ≤ 0} + 1, #{d* ≥ 0} + 1) / (B + 1)``, which is below α only when the percentile interval at 1 − α
excludes 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import StatsError
from ._checks import _check_confidence
from ._intervals import wilson_bounds

NONE_LABEL = "(none)"
"""The confusion matrix's last column: answers naming no label (or several without one leading)."""
METRICS = ("accuracy", "macro_f1", "micro_f1", "kappa")
"""The whole-run metrics, each reported with ``<metric>_ci_low`` / ``<metric>_ci_high``."""
PER_LABEL = ("precision", "recall", "f1")
"""The per-label metrics, each with ``<metric>_ci_low`` / ``<metric>_ci_high``."""
_CHUNK_CELLS = 4_000_000  # case-draw counts held at once (resamples × cases): bounds memory on large suites


@dataclass(frozen=True)
class ClassificationMetrics:
    """Classification metrics of one set of answers against their expected labels.

    Attributes:
        labels: the label set, in the order given.
        confusion: counts, index the expected labels, columns the labels read then ``"(none)"``.
        summary: ``n`` (answers), ``cases``, ``no_label`` (answers naming no label), then each of `METRICS`
            with ``_ci_low`` / ``_ci_high``.
        per_label: one row per label: ``label``, ``support``, ``predicted``, then each of `PER_LABEL` with its
            interval.
        confidence, n_boot, seed: the intervals' coverage, resamples and seed (same seed, same intervals).
    """

    labels: tuple[str, ...]
    confusion: pd.DataFrame
    summary: dict[str, float]
    per_label: pd.DataFrame
    confidence: float
    n_boot: int
    seed: int


@dataclass(frozen=True)
class MacroF1Comparison:
    """Macro-F1 of arm B against arm A on the same answers' cases (B − A), by a paired case bootstrap.

    Attributes:
        n: answer pairs used; cases: distinct cases among them (the unit resampled).
        macro_f1_a, macro_f1_b: each arm's macro-F1; diff: B − A.
        ci_low, ci_high: the percentile interval for ``diff`` at ``confidence`` (±inf with fewer than 2 cases).
        p_value: the two-sided bootstrap p (1 with fewer than 2 cases or when the arms never differ).
        n_boot, seed: resamples and seed; method: in words.
    """

    n: int
    cases: int
    macro_f1_a: float
    macro_f1_b: float
    diff: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    n_boot: int
    seed: int
    method: str


# ---- encoding ----------------------------------------------------------------------------------------------
def _check_labels(labels: Sequence[Any]) -> tuple[str, ...]:
    if isinstance(labels, str) or labels is None or len(list(labels)) == 0:
        raise StatsError(f"labels={labels!r}: give the label set as a non-empty list, e.g. ['positive', "
                         "'negative'].")
    out = tuple(str(label) for label in labels)
    twice = sorted({label for label in out if out.count(label) > 1})
    if twice or NONE_LABEL in out:
        raise StatsError(f"labels {twice or [NONE_LABEL]!r} cannot be used: list each label once, and not "
                         f"{NONE_LABEL!r}, which stands for answers naming no label.")
    return out


def _missing(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and not isinstance(value, str) and bool(pd.isna(value)))


def _codes(values: Sequence[Any], labels: tuple[str, ...], what: str, none_allowed: bool) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    codes = np.empty(len(values), dtype=np.int64)
    unknown = []
    for i, value in enumerate(values):
        if none_allowed and _missing(value):
            codes[i] = len(labels)
        elif not _missing(value) and str(value) in index:
            codes[i] = index[str(value)]
        else:
            unknown.append(value)
    if unknown:
        shown = list(dict.fromkeys(map(repr, unknown)))[:5]
        fix = " or None for an answer naming no label" if none_allowed else ""
        raise StatsError(f"{len(unknown)} {what} value(s) are not labels: {', '.join(shown)}. Labels: "
                         f"{', '.join(labels)}. Map each to one of the labels{fix} first.")
    return codes


def _case_codes(cases: Sequence[Any] | None, n: int) -> tuple[np.ndarray, int]:
    """Codes that follow the sorted case ids (each row its own case when None), and how many cases."""
    if cases is None:
        return np.arange(n, dtype=np.int64), n
    column = pd.Series(list(cases), dtype=object)
    if len(column) != n:
        raise StatsError(f"cases has {len(column)} values for {n} answers; give one case id per answer.")
    try:
        codes, uniques = pd.factorize(column, sort=True, use_na_sentinel=False)
    except TypeError:  # mixed types (ints and strings as case ids): sort them as text
        codes, uniques = pd.factorize(column.astype(str), sort=True, use_na_sentinel=False)
    return codes.astype(np.int64), len(uniques)


def _case_cells(expected: np.ndarray, predicted: np.ndarray, case: np.ndarray, n_cases: int,
                n_labels: int) -> Any:
    """A sparse (cases × confusion cells) count matrix: what each case adds to the confusion matrix."""
    from scipy import sparse

    width = n_labels * (n_labels + 1)
    cells = expected * (n_labels + 1) + predicted
    return sparse.csr_array((np.ones(len(cells), dtype=np.int64), (case, cells)), shape=(n_cases, width))


def _check_boot(n_boot: int, seed: int) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise StatsError(f"n_boot={n_boot!r} must be a whole number >= 0 (0: no intervals), e.g. 2000.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise StatsError(f"seed={seed!r} must be a whole number, e.g. 0.")


# ---- metrics on (stacks of) confusion matrices -----------------------------------------------------------------
def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _nanmean(values: np.ndarray) -> np.ndarray:
    defined = ~np.isnan(values)
    count = defined.sum(axis=-1)
    return _ratio(np.where(defined, values, 0).sum(axis=-1), count)


def _metrics(conf: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of a stack of confusion matrices (..., L, L + 1); NaN where a ratio is 0/0."""
    n_labels = conf.shape[-2]
    tp = conf[..., np.arange(n_labels), np.arange(n_labels)]
    support = conf.sum(axis=-1)
    predicted = conf[..., :n_labels].sum(axis=-2)
    n, hits, named = support.sum(axis=-1), tp.sum(axis=-1), predicted.sum(axis=-1)
    f1 = _ratio(2 * tp, predicted + support)
    chance = _ratio((support * predicted).sum(axis=-1), n * n)  # the (none) column's row is empty: adds 0
    accuracy = _ratio(hits, n)
    return {"precision": _ratio(tp, predicted), "recall": _ratio(tp, support), "f1": f1,
            "accuracy": accuracy, "macro_f1": _nanmean(f1), "micro_f1": _ratio(2 * hits, named + n),
            "kappa": _ratio(accuracy - chance, 1 - chance)}


def _case_draws(rng: np.random.Generator, n_cases: int, size: int) -> np.ndarray:
    """``size`` resamples of the cases as counts (resamples, cases): each resample draws ``n_cases`` cases
    uniformly with replacement (``rng.integers``), counted per case — multinomial counts, drawn fast."""
    picks = rng.integers(0, n_cases, size=(size, n_cases)) + (np.arange(size) * n_cases)[:, None]
    return np.bincount(picks.ravel(), minlength=size * n_cases).reshape(size, n_cases)


def _resampled(cells: Any, n_boot: int, seed: int) -> Any:
    """Seeded bootstrap confusion matrices, in chunks: (resamples, cells) counts from case draws."""
    rng = np.random.default_rng(seed)
    n_cases = cells.shape[0]
    chunk = max(1, min(n_boot, _CHUNK_CELLS // max(n_cases, 1)))
    for start in range(0, n_boot, chunk):
        draws = _case_draws(rng, n_cases, min(chunk, n_boot - start))
        yield np.asarray(cells.T @ draws.T).T.astype(float)


def _bootstrap(cells: Any, n_labels: int, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for flat in _resampled(cells, n_boot, seed):
        for name, values in _metrics(flat.reshape(-1, n_labels, n_labels + 1)).items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(values) for name, values in parts.items()}


def _cases_in(cells: Any, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per label: how many distinct cases have an answer naming it, and how many expect it."""
    coo = cells.tocoo()
    case, cell = coo.row.astype(np.int64), coo.col.astype(np.int64)
    expected, predicted = cell // (n_labels + 1), cell % (n_labels + 1)
    named = np.unique(case * (n_labels + 1) + predicted) % (n_labels + 1)
    expects = np.unique(case * n_labels + expected) % n_labels
    return (np.bincount(named, minlength=n_labels + 1)[:n_labels].astype(float),
            np.bincount(expects, minlength=n_labels).astype(float))


def _wilson_floor(bounds: tuple[np.ndarray, np.ndarray], share: np.ndarray, cases: np.ndarray,
                  confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bounds of a proportion widened to at least Wilson's at the estimate over the distinct cases
    behind its denominator, so 4 answers of 4 right never read as [1, 1] (as `Results.accuracy` with repeats)."""
    low, high = (np.atleast_1d(np.array(b, dtype=float)) for b in bounds)
    for i in np.flatnonzero(~np.isnan(np.atleast_1d(share)) & (np.atleast_1d(cases) > 0)):
        w_low, w_high = wilson_bounds(float(np.atleast_1d(share)[i]), float(np.atleast_1d(cases)[i]), confidence)
        low[i] = w_low if np.isnan(low[i]) else min(low[i], w_low)
        high[i] = w_high if np.isnan(high[i]) else max(high[i], w_high)
    return low, high


def _percentiles(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bounds along the resamples (axis 0), over the resamples where the value is defined."""
    tail = (1 - confidence) / 2
    defined = ~np.isnan(values)
    low, high = np.full(values.shape[1:], np.nan), np.full(values.shape[1:], np.nan)
    for index in np.ndindex(values.shape[1:]):
        column = values[(slice(None), *index)][defined[(slice(None), *index)]]
        if column.size:
            low[index], high[index] = np.quantile(column, [tail, 1 - tail])
    return low, high


def _bounds(boot: dict[str, np.ndarray] | None, name: str, floors: dict[str, tuple], confidence: float,
            size: int) -> tuple[np.ndarray, np.ndarray]:
    """A metric's interval: NA without resamples; percentile, with a Wilson floor for the proportions."""
    if boot is None:
        return np.full(size, np.nan), np.full(size, np.nan)
    values = boot[name] if boot[name].ndim == 2 else boot[name][:, None]
    bounds = _percentiles(values, confidence)
    return _wilson_floor(bounds, *floors[name], confidence) if name in floors else bounds


# ---- the face ------------------------------------------------------------------------------------------------
def classification_metrics(expected: Sequence[Any], predicted: Sequence[Any], labels: Sequence[Any], *,
                           cases: Sequence[Any] | None = None, confidence: float = 0.95, n_boot: int = 2000,
                           seed: int = 0) -> ClassificationMetrics:
    """Confusion matrix, per-label precision/recall/F1/support, macro/micro-F1, κ and accuracy with intervals.

    Args:
        expected: the expected label of each answer (each one of ``labels``).
        predicted: the label each answer names, or None when it names none.
        labels: the label set.
        cases: the case of each answer; a case's answers are resampled together (default: each answer alone).
        confidence: coverage of the percentile intervals.
        n_boot: bootstrap resamples (0: no intervals, NA).
        seed: the bootstrap's seed.

    Raises:
        StatsError: a value outside the labels, arrays of different lengths, or a bad confidence / n_boot.
    """
    labels = _check_labels(labels)
    _check_confidence(confidence)
    _check_boot(n_boot, seed)
    if len(expected) != len(predicted):
        raise StatsError(f"expected has {len(expected)} values and predicted {len(predicted)}; give one of each "
                         "per answer.")
    exp = _codes(expected, labels, "expected", none_allowed=False)
    pred = _codes(predicted, labels, "predicted", none_allowed=True)
    case, n_cases = _case_codes(cases, len(exp))
    cells = _case_cells(exp, pred, case, n_cases, len(labels))
    conf = np.asarray(cells.sum(axis=0)).reshape(len(labels), len(labels) + 1)
    point = _metrics(conf.astype(float))
    boot = _bootstrap(cells, len(labels), n_boot, seed) if n_boot and n_cases >= 2 else None
    # the proportions' Wilson floors: (estimate, distinct cases behind the denominator)
    naming, expecting = _cases_in(cells, len(labels))
    floors = {"accuracy": (point["accuracy"], np.float64(n_cases)), "precision": (point["precision"], naming),
              "recall": (point["recall"], expecting)}
    summary: dict[str, float] = {"n": int(conf.sum()), "cases": n_cases, "no_label": int(conf[:, -1].sum())}
    for name in METRICS:
        low, high = _bounds(boot, name, floors, confidence, 1)
        summary.update({name: float(point[name]), f"{name}_ci_low": float(low[0]), f"{name}_ci_high": float(high[0])})
    per_label = pd.DataFrame({"label": labels, "support": conf.sum(axis=1).astype("int64"),
                              "predicted": conf[:, :-1].sum(axis=0).astype("int64")})
    for name in PER_LABEL:
        low, high = _bounds(boot, name, floors, confidence, len(labels))
        per_label[name], per_label[f"{name}_ci_low"], per_label[f"{name}_ci_high"] = point[name], low, high
    confusion = pd.DataFrame(conf.astype("int64"), index=pd.Index(labels, name="expected"),
                             columns=pd.Index([*labels, NONE_LABEL], name="predicted"))
    return ClassificationMetrics(labels, confusion, summary, per_label, confidence, int(n_boot), int(seed))


def compare_macro_f1(expected: Sequence[Any], predicted_a: Sequence[Any], predicted_b: Sequence[Any],
                     labels: Sequence[Any], *, cases: Sequence[Any] | None = None, confidence: float = 0.95,
                     n_boot: int = 2000, seed: int = 0) -> MacroF1Comparison:
    """Paired comparison of macro-F1, B − A, on the same cases: a joint case bootstrap of both arms.

    Position i holds one expected label and the labels arms A and B named for it (the same case and repeat;
    None: no label named). Cases are drawn with replacement once per resample and both arms' answers to each
    drawn case come with it, so the interval keeps the pairing. The p-value is the bootstrap's two-sided
    ``2·min(#{d* ≤ 0} + 1, #{d* ≥ 0} + 1) / (B + 1)`` (capped at 1; Davison & Hinkley's count + 1), below α
    only when the percentile interval at 1 − α excludes 0, so a p below α never sits beside an interval that
    includes 0. Fewer than 2 cases: p 1 and the interval (−inf, inf); no pairs: NaN macro-F1s as well.

    Args:
        expected: expected label of each pair; predicted_a, predicted_b: the label each arm named, or None.
        labels: the label set.
        cases: the case of each pair (its repeats move together); default each pair alone.
        confidence: coverage of the interval for the difference.
        n_boot: resamples; seed: their seed (same seed, same interval and p).

    Reference: each arm's macro-F1 is ``sklearn.metrics.f1_score(expected, predicted, labels=labels,
    average="macro", zero_division=np.nan)`` with no label read as ``"(none)"``.
    """
    return _compare_levels(expected, predicted_a, predicted_b, labels, cases, (confidence,), n_boot, seed)[0]


def _compare_levels(expected: Sequence[Any], predicted_a: Sequence[Any], predicted_b: Sequence[Any],
                    labels: Sequence[Any], cases: Sequence[Any] | None, levels: Sequence[float], n_boot: int,
                    seed: int) -> tuple[MacroF1Comparison, ...]:
    """`compare_macro_f1` at several confidence levels from one set of resamples (a simultaneous and an
    unadjusted interval); each equals ``compare_macro_f1(..., confidence=level)`` with the same seed."""
    labels = _check_labels(labels)
    for level in levels:
        _check_confidence(level)
    _check_boot(n_boot, seed)
    if not len(expected) == len(predicted_a) == len(predicted_b):
        raise StatsError(f"expected, predicted_a and predicted_b have {len(expected)}, {len(predicted_a)} and "
                         f"{len(predicted_b)} values; give one of each per pair.")
    exp = _codes(expected, labels, "expected", none_allowed=False)
    arms = [_codes(p, labels, f"predicted_{arm}", none_allowed=True) for p, arm in ((predicted_a, "a"),
                                                                                       (predicted_b, "b"))]
    case, n_cases = _case_codes(cases, len(exp))
    n_labels = len(labels)
    cells = [_case_cells(exp, pred, case, n_cases, n_labels) for pred in arms]
    a, b = (float(_metrics(np.asarray(c.sum(axis=0)).reshape(n_labels, n_labels + 1))["macro_f1"]) for c in cells)
    method = f"paired case bootstrap (percentile, {n_boot} resamples)"
    if n_cases < 2 or not n_boot:
        return tuple(MacroF1Comparison(len(exp), n_cases, a, b, b - a, -math.inf, math.inf, level, 1.0, n_boot,
                                       seed, "fewer than 2 cases: no interval" if n_boot else "no resamples")
                     for level in levels)
    from scipy import sparse

    both = sparse.hstack(cells, format="csr")  # one draw of cases serves both arms: the pairing is kept
    width = n_labels * (n_labels + 1)
    diffs = np.concatenate([
        _metrics(flat[:, width:].reshape(-1, n_labels, n_labels + 1))["macro_f1"]
        - _metrics(flat[:, :width].reshape(-1, n_labels, n_labels + 1))["macro_f1"]
        for flat in _resampled(both, n_boot, seed)])
    count = min(int((diffs <= 0).sum()), int((diffs >= 0).sum()))
    p_value = min(1.0, 2 * (count + 1) / (n_boot + 1))
    out = []
    for level in levels:
        low, high = _percentiles(diffs[:, None], level)
        out.append(MacroF1Comparison(len(exp), n_cases, a, b, b - a, float(low[0]), float(high[0]), level, p_value,
                                     n_boot, seed, method))
    return tuple(out)
