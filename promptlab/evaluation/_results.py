"""`Results`: one row per call in a fixed, documented schema, and the summaries users ask for.

Columns (`COLUMNS`; units in names; unknown is NA, never 0):

============== ======== =====================================================================
column         dtype    meaning (extra columns follow: ``score_<criterion>`` per judge criterion)
============== ======== =====================================================================
run_id         string   the run that produced the row
case_id        string   the case's id in its suite
category       string   happy_path, edge_case, adversarial, …
difficulty     string   easy / medium / hard, or NA
variant        string   the variant's name in the run (``A``, ``B`` … or the dict key)
prompt_name    string   the prompt file's ``name``
prompt_version string   the prompt file's ``version``
prompt_hash    string   `Prompt.content_hash` of the behaviour-defining fields
model_pinned   string   the model the prompt file pins
model          string   the model asked (``provider:model``)
model_served   string   the model id the provider reported as having answered (NA if no answer)
answered_by    string   which model of the fallback chain answered (NA if none)
served_by      string   which server answered: the base URL a server pool chose (NA for a single endpoint,
                        a failed call, or an answer cached before the column existed)
repeat         Int64    repeat index, 0-based
params         object   the request params the run applied (dict: grid point and model params), NA when none
input          object   the case's input (text or dict of variables)
output         string   the answer scored: the model's text, transformed when the run has a ``transform``
                        (NA when the call failed or the transform could not read the answer)
output_raw     string   the model's text before the transform (NA when the run has no transform)
parsed         object   the answer read against the prompt's declared ``output:``: the label (text) or the JSON
                        value; NA when the prompt declares no output, the call failed, or the answer broke the
                        format (a JSON ``null`` answer is None, not NA)
format_ok      boolean  the answer has the declared shape (one of the labels, valid against the JSON Schema,
                        matching the regex); NA when the prompt declares no output or the call failed
format_error   string   why the answer broke the format, after the re-asks (NA when it did not)
enforced       string   how the format was held: ``native`` (the provider constrained generation: a grammar, a
                        response format, a forced tool), ``validated`` (checked after, re-asked on a miss), NA
                        when the prompt declares no output
expected       object   the case's expected answer
score          float64  the scorer's value (NaN when not scored)
passed         boolean  pass/fail (NA when the call failed or the scorer gives no verdict)
reason         string   why it failed, from the scorer
input_tokens   Int64    tokens in, as reported by the provider (NA when not reported)
output_tokens  Int64    tokens out, as reported (NA when not reported)
cost_usd       float64  USD the call costs (NaN when unpriced; 0 for the local model); a cached answer was
                        paid once, when first made — ``cached`` tells
latency_s      float64  seconds the provider took (NaN for failed calls; for a cached answer, when first
                        made — latency summaries leave cached rows out)
finish_reason  string   stop, length, … as the provider says
cached         bool     answered from the response cache (no call paid)
attempts       Int64    calls made, retries included (0 for cached or skipped)
error_type     string   timeout, rate_limit, server, connection, budget_exceeded, scoring_error,
                        transform_error …
error          string   the error message (never contains a key)
============== ======== =====================================================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ArgumentError, UnknownNameError

COLUMNS: dict[str, str] = {
    "run_id": "string", "case_id": "string", "category": "string", "difficulty": "string",
    "variant": "string", "prompt_name": "string", "prompt_version": "string", "prompt_hash": "string",
    "model_pinned": "string", "model": "string", "model_served": "string", "answered_by": "string",
    "served_by": "string", "repeat": "Int64", "params": "object", "input": "object", "output": "string",
    "output_raw": "string",
    "parsed": "object", "format_ok": "boolean", "format_error": "string", "enforced": "string",
    "expected": "object", "score": "float64",
    "passed": "boolean", "reason": "string", "input_tokens": "Int64", "output_tokens": "Int64",
    "cost_usd": "float64", "latency_s": "float64", "finish_reason": "string", "cached": "bool",
    "attempts": "Int64", "error_type": "string", "error": "string",
}
GROUP = ["variant", "model"]
# Columns holding Python objects (text or dicts) that are stored as JSON text on disk.
_JSON_COLUMNS = ("params", "input", "parsed", "expected")
_SAVE_SLICE_ROWS = 5_000  # rows converted to Arrow at a time by `Results.save` (one Parquet row group each)


# pandas 3 copies on write: a shallow copy is then as independent as a deep one, and costs no second frame (a
# 100,000-row run would otherwise hold its results twice while `Results` conforms them). Before pandas 3 a
# shallow copy could share values with the caller's frame, so it stays deep there.
_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3


def release_arrow_memory() -> None:
    """Hand the memory Arrow's allocator kept after a conversion back to the OS (its default pool, mimalloc or
    jemalloc, holds freed blocks for reuse: after writing or reading a big run's rows that is tens of MB the
    process would otherwise keep)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _as_stored(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows as `Results.save` writes them: the JSON columns as JSON text."""
    stored = frame.copy(deep=False)  # whole columns are replaced below: the frame's own data is never written
    for column in _JSON_COLUMNS:
        # NA (a column the rows did not fill) stays a Parquet null; None is JSON null (an expected of None)
        stored[column] = pd.Series([None if value is pd.NA else _to_json(value) for value in frame[column].tolist()],
                                   index=frame.index, dtype=object)
    return stored


_to_json = json.JSONEncoder(ensure_ascii=False).encode  # `json.dumps(value, ensure_ascii=False)`, built once


def _typed_rows(frame: pd.DataFrame) -> list[int]:
    """Row positions holding a value of every column that has one (the first row, when a column has none)."""
    if not len(frame):
        return []
    return sorted({int(frame[column].notna().to_numpy().argmax()) for column in frame.columns} | {0})


def build_frame(rows: list[dict], run_id: str) -> pd.DataFrame:
    """A results DataFrame in the fixed schema from row dicts (missing keys become NA).

    Rows that carry every schema column (the runner's always do) are built a column at a time, each column going
    from its Python values straight to its dtype — a third of the cost of a frame of objects cast column by column,
    which is paid once per run. Any other rows take the general path (`conform`); both give the same frame."""
    if not rows:
        frame = pd.DataFrame(columns=[c for c in COLUMNS if c != "run_id"])
        frame.insert(0, "run_id", run_id)
        return conform(frame)
    try:
        columns = {name: [row[name] for row in rows] for name in COLUMNS if name != "run_id"}
    except KeyError:  # a row without some schema column: those are NA, as `conform` makes them
        frame = pd.DataFrame(rows)
        frame.insert(0, "run_id", run_id)
        return conform(frame)
    built = {"run_id": pd.array([run_id] * len(rows), dtype="string")}
    built.update({name: _typed(values, COLUMNS[name], parsed=name == "parsed") for name, values in columns.items()})
    frame = pd.DataFrame(built, copy=False)
    extra = list(dict.fromkeys(key for row in rows for key in row if key not in COLUMNS))
    if extra:  # ``score_<criterion>`` columns: typed by pandas, a key a row lacks is NA
        frame = pd.concat([frame, pd.DataFrame([{key: row[key] for key in extra if key in row} for row in rows],
                                               columns=extra)], axis=1)
    return frame


def _typed(values: list, dtype: str, *, parsed: bool = False) -> Any:
    """One schema column from its Python values (None is NA), as `_cast` makes it from an object column."""
    try:
        if dtype in ("string", "Int64", "boolean"):
            return pd.array(values, dtype=dtype)
        if dtype == "float64":
            return np.array([np.nan if value is None else value for value in values], dtype="float64")
        if dtype == "bool" and all(value is True or value is False for value in values):
            return np.array(values, dtype=bool)
    except (TypeError, ValueError):  # a value of another type: the general cast says what it becomes
        pass
    return _cast(pd.Series(values, dtype=object), dtype, parsed=parsed)


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast every schema column to its dtype (None → NA), keeping extra columns as they are."""
    out = frame.copy(deep=not _COPY_ON_WRITE)
    for column, dtype in COLUMNS.items():
        if column not in out:
            out[column] = {"float64": np.nan, "bool": False}.get(dtype, pd.NA)
        elif dtype != "object" and str(out[column].dtype) == dtype:
            continue  # already cast (a frame conformed before: `Results` of `build_frame`'s frame, a loaded file)
        out[column] = _cast(out[column], dtype, parsed=column == "parsed")
    return out[list(COLUMNS) + [c for c in out.columns if c not in COLUMNS]]


def _cast(column: pd.Series, dtype: str, *, parsed: bool = False) -> pd.Series:
    """One column cast to its schema dtype (None and NaN → NA; NaN stays in float columns)."""
    if dtype == "float64":
        return pd.to_numeric(column.astype(object).where(column.notna(), np.nan), errors="coerce").astype("float64")
    if dtype == "object":
        column = column.astype(object)
        if parsed:  # no JSON value is NaN: a NaN is pandas' stand-in for NA in a mixed column
            column = pd.Series([pd.NA if isinstance(v, float) and np.isnan(v) else v for v in column],
                               index=column.index, dtype=object)
        return column
    if dtype == "bool":
        return column.fillna(False).astype(bool)
    return column.astype(dtype)


class Results:
    """The rows of one or more runs and their metadata, with the summaries users ask for.

    Attributes:
        df: one row per call, in the `COLUMNS` schema.
        meta: run id, prompt versions and hashes, models asked and served, seed, timestamps, cache stats.
    """

    def __init__(self, df: pd.DataFrame, meta: dict[str, Any] | None = None):
        if not isinstance(df, pd.DataFrame):
            raise ArgumentError(f"Results needs a results DataFrame, got {type(df).__name__}. Use what pl.run(...) "
                                "returned, or Results.load(path).")
        self.df = conform(df)
        self.meta = dict(meta or {})

    # ---- summaries --------------------------------------------------------------------------------------
    def accuracy(self, by: list[str] | None = None, confidence: float = 0.95) -> pd.DataFrame:
        """Accuracy per group (default variant × model): passed / calls, with its interval.

        A call with no verdict (failed call, scoring error, judge failure) counts as a failure — the one
        definition (`promptlab.evaluation._summaries.accuracy_row`) that the card, `EvalResult`, the registry's evidence
        and ``promptlab eval --min-accuracy`` use too.

        Columns: the group keys, ``n`` (calls), ``scored`` (calls with a verdict), ``errors`` (calls with no
        verdict), ``passed``, ``accuracy`` (passed / n), ``ci_low``, ``ci_high`` (Wilson over the calls; with
        repeats, over cases and never narrower than Wilson at the effective sample size), ``accuracy_scored``
        (passed / scored, for diagnosis), ``cases`` and ``se_cases`` (with repeats, the SE of per-case pass
        rates over cases).
        """
        from ._summaries import accuracy_table

        return accuracy_table(self.df, self._columns(by or GROUP), confidence)

    def human_accuracy(self, reviews: Any = None, by: list[str] | None = None,
                       confidence: float = 0.95) -> pd.DataFrame:
        """`accuracy` with the human verdicts of the review file in place of the scorer's where a human judged.

        Same columns as `accuracy`, plus ``reviewed`` (calls a human verdict covers) and ``overridden`` (calls
        whose verdict the human changed); ``accuracy_scorer`` is the scorer's accuracy beside it.

        Args:
            reviews: the verdicts: a frame from `promptlab.evaluation.load_reviews`, a review or suite file path,
                or a `Suite`; default: the review file of the suite these results ran (see ``pl.view``).
            by: the groups (default variant × model).
            confidence: coverage of the intervals.
        """
        from ._reviews import apply_reviews, load_reviews
        from ._summaries import accuracy_table

        frame = reviews if isinstance(reviews, pd.DataFrame) else load_reviews(self if reviews is None else reviews)
        by = self._columns(by or GROUP)
        corrected = apply_reviews(self.df, frame)
        table = accuracy_table(corrected, by, confidence)
        scorer = accuracy_table(self.df, by, confidence)["accuracy"].to_numpy() if len(table) else []
        counts = corrected.groupby(by, sort=False, dropna=False).agg(
            reviewed=("human", lambda s: int(s.notna().sum())), overridden=("overridden", "sum")).reset_index()
        table = table.merge(counts, on=by, how="left", sort=False)
        return table.assign(accuracy_scorer=scorer, reviewed=table["reviewed"].astype("Int64"),
                            overridden=table["overridden"].astype("Int64"))

    def by_category(self, confidence: float = 0.95) -> pd.DataFrame:
        """`accuracy` per variant × model × category."""
        return self.accuracy(GROUP + ["category"], confidence)

    def failures(self, limit: int | None = None) -> pd.DataFrame:
        """Answers that failed their scorer: case, category, input, expected, actual, reason."""
        from ._summaries import failures_table

        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ArgumentError(f"limit={limit!r} must be a whole number >= 0, or None for every failure.")
        return failures_table(self.df, limit)

    def errors(self) -> pd.DataFrame:
        """Calls that produced no usable answer (or could not be scored), with their error type and message."""
        cols = ["case_id", "variant", "model", "repeat", "error_type", "error"]
        return self.df.loc[self.df["error_type"].notna(), cols].reset_index(drop=True)

    def latency(self, confidence: float = 0.95) -> pd.DataFrame:
        """p50 and p95 latency (seconds) per variant × model, each with an order-statistic interval.

        Only calls made in this run count: a cached answer's latency is that of the past call that made it, so
        cached rows are left out (``cached_excluded`` counts them), as in the comparison's p95 guardrail.
        """
        from ._summaries import latency_table

        return latency_table(self.df, GROUP, confidence)

    def cost(self) -> pd.DataFrame:
        """Tokens and USD per variant × model: totals, per call, and per 1,000 calls (NA when unpriced)."""
        from ._summaries import cost_table

        return cost_table(self.df, GROUP)

    def format_compliance(self, scorer: Any = None, confidence: float = 0.95) -> pd.DataFrame:
        """Share of answers in the required format per variant × model, with its Wilson interval.

        Rows that carry ``format_ok`` (the prompt declared its ``output:``) are read as recorded; ``scorer``, when
        given, checks every answer instead; results without format verdicts fall back to "the answer is valid
        JSON". Failed calls have no answer to check: they are left out and counted (``failed_calls``), and a
        group with no verdict at all has NA compliance, never 0. Columns: the group keys, then
        `promptlab.evaluation.FORMAT_COLUMNS` (``n``, ``format_ok``, ``compliance``, ``ci_low``,
        ``ci_high``, ``calls``, ``failed_calls``, ``source``, ``enforced``).
        """
        from ._summaries import format_table

        return format_table(self.df, GROUP, scorer, confidence)

    def check_format(self, check: Any = None, *, labels: list[str] | None = None) -> Results:
        """These results with a format verdict for every answer that has none, so a variant that declared no
        ``output:`` can be compared with one that did (``pl.compare(r.check_format(), metric="format_ok")``).

        Recorded verdicts are kept. The others come from ``check``: an `OutputConstraint` (the check the
        providers apply when they validate; it fills ``parsed`` too) or a scorer such as ``pl.JsonSchema(schema)``.
        By default, with a label set (``labels``, else the suite's in ``meta``), the answer must be one of the
        labels as a validating provider reads it (``OutputConstraint.from_labels``); without one, valid JSON.
        A failed check's reason goes to ``format_error``; failed calls stay without a verdict.
        """
        from ..providers._base import OutputConstraint
        from ._scoring import JsonValid
        from ._summaries import with_format_checked

        if isinstance(labels, str):
            raise ArgumentError(f"labels={labels!r} must be a list of labels, such as ['positive', 'negative'].")
        if check is None:
            labels = labels or (self.meta.get("suite") or {}).get("labels")
            check = OutputConstraint.from_labels(labels) if labels else JsonValid()
        return Results(with_format_checked(self.df, check), {**self.meta, "format_check": repr(check)})

    def summary(self) -> pd.DataFrame:
        """One row per variant × model: accuracy with interval, errors, latency p50/p95, tokens and cost."""
        from ._summaries import summary_table

        return summary_table(self)

    def classification(self, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0, *,
                       labels: list[str] | None = None) -> Any:
        """Classification metrics per variant × model against the suite's labels, as a `ClassificationTable`.

        The confusion matrix (with a ``(none)`` column for answers naming no label), per-label precision,
        recall, F1 and support, macro- and micro-F1, Cohen's κ and accuracy over answers, each with a seeded
        percentile bootstrap interval over cases (a case's repeats move together); failed calls are left out
        and counted. ``.compare(baseline)`` compares macro-F1 between variants, paired by case.

        Args:
            confidence: coverage of the intervals.
            n_boot: bootstrap resamples (0: no intervals).
            seed: the bootstrap's seed (same seed, same intervals).
            labels: the label set, when the results do not carry the suite's (``meta["suite"]["labels"]``).

        Raises:
            ArgumentError: the results have no label set (the message says how to give one).
        """
        from ._classification import classification_table

        return classification_table(self, confidence=confidence, n_boot=n_boot, seed=seed, labels=labels)

    def _columns(self, by: list[str]) -> list[str]:
        """``by`` as a list of this frame's columns (one name alone is accepted), or `UnknownNameError`."""
        by = [by] if isinstance(by, str) else list(by)
        unknown = [column for column in by if column not in self.df.columns]
        if unknown:
            raise UnknownNameError(f"by={unknown!r} names no column of the results; group by columns such as "
                                   f"{GROUP + ['category']!r}.")
        return by

    # ---- combining, saving ------------------------------------------------------------------------------
    @classmethod
    def concat(cls, results: list[Results]) -> Results:
        """Results of several runs as one; ``meta["runs"]`` keeps each run's metadata."""
        strays = [type(r).__name__ for r in results if not isinstance(r, Results)]
        if strays:
            raise ArgumentError(f"Results.concat takes a list of Results; got {strays!r} among them.")
        frames = [r.df for r in results]
        metas = [m for r in results for m in (r.meta.get("runs") or [r.meta])]
        return cls(pd.concat(frames, ignore_index=True), {"runs": metas})

    def save(self, path: str | Path) -> Path:
        """Write rows and metadata to one Parquet file (the metadata rides in the file's schema)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Rows are converted (JSON columns to text, then to Arrow) a slice at a time, so a big run's file is
        # written without a second copy of all its rows; the types come from a sample holding a value of every
        # column that has one, so every slice is written with the same schema.
        # (A frame of one slice is converted once, and its own types are the schema.)
        extra = {b"promptlab": json.dumps(self.meta, default=str).encode("utf-8")}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if len(self.df) <= _SAVE_SLICE_ROWS:
            table = pa.Table.from_pandas(_as_stored(self.df), preserve_index=False)
            pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **extra}), path)
            release_arrow_memory()
            return path
        schema = pa.Schema.from_pandas(_as_stored(self.df.iloc[_typed_rows(self.df)]), preserve_index=False)
        schema = schema.with_metadata({**(schema.metadata or {}), **extra})
        with pq.ParquetWriter(path, schema) as writer:
            for start in range(0, len(self.df), _SAVE_SLICE_ROWS):
                part = _as_stored(self.df.iloc[start:start + _SAVE_SLICE_ROWS])
                writer.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False))
        release_arrow_memory()
        return path

    @classmethod
    def load(cls, path: str | Path) -> Results:
        """Read a file written by `save`: the same rows, dtypes and metadata."""
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(b"promptlab", b"{}"))
        frame = table.to_pandas()
        for column in _JSON_COLUMNS:
            if column in frame:  # files saved before a column joined the schema lack it (it loads as NA)
                # a Parquet null (NA) reads back as None or NaN, depending on how pandas maps strings
                frame[column] = frame[column].map(lambda v: json.loads(v) if isinstance(v, str) else pd.NA,
                                                  na_action=None)
        return cls(frame, meta)

    # ---- display ----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.df)

    def __repr__(self) -> str:
        from ._summaries import headline

        return headline(self)

    def _repr_html_(self) -> str:
        from .._display import results_html
        from ._classification import card_rows

        return results_html(self, card_rows(self))


# ---- the article's face -----------------------------------------------------------------------------------
class EvalResult:
    """The article's evaluation result: ``total``, ``correct``, ``accuracy``, ``by_category``, ``failures``.

    A thin view of `Results` for one variant on one model, so code written against the article keeps
    working; ``results`` holds the full frame with intervals, latency and cost. ``accuracy`` is the one
    definition (`Results.accuracy`): ``correct / total``, a call with no verdict counting as a failure;
    ``scored`` and ``errors`` say what it is made of.
    """

    def __init__(self, results: Results):
        from ._summaries import accuracy_row

        self.results = results
        overall = accuracy_row(results.df)
        self.total = int(overall["n"])
        self.correct = int(overall["passed"])
        self.scored = int(overall["scored"])
        self.errors = int(overall["errors"])
        self.accuracy = float(overall["accuracy"])
        by_cat = results.accuracy(["category"])
        self.by_category = {k: float(v) for k, v in zip(by_cat["category"], by_cat["accuracy"], strict=True)}
        self.failures = results.failures()[["input", "expected", "actual", "category", "reason"]].to_dict("records")

    def __repr__(self) -> str:
        return (f"EvalResult(total={self.total}, correct={self.correct}, accuracy={self.accuracy:.3f}; "
                f"{self.scored} scored · {self.errors} errors)")

    def _repr_html_(self) -> str:
        return self.results._repr_html_()
