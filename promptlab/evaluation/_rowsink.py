"""A run's rows as its calls finish: each outcome transformed, scored and turned into a row at once, then kept
in memory up to a chunk and spilled to disk past it.

The runner hands every finished call to `RowMaker` (the answer's transform, its scorer, the row in the
`promptlab.evaluation._results.COLUMNS` schema) and the row to `RowSink`; the call's objects (request, completion,
provider payload) are then dropped. A run of up to `CHUNK_ROWS` calls keeps its row dicts in memory; past that,
every `CHUNK_ROWS` rows become a Parquet file in a temporary folder (`Results.save`'s format: the one owner of
rows on disk) and are read back once, as columns, when the run ends. A 100,000-call run therefore never holds
100,000 row dicts or call objects — only the final frame, which is what it returns.

Rows come in the order calls finish; each carries its job's plan position (``_order``), and the frame is put back
in plan order at the end.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import tempfile
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._transforms import Transform, TransformFailed

if TYPE_CHECKING:
    import pandas as pd

    from ..authoring._suite import Suite
    from ..providers._base import Completion
    from ._scoring import Scorer

CHUNK_ROWS = 5000
"""Rows kept in memory before the sink spills them to disk (a run this size or smaller never touches disk)."""

_ORDER = "_order"  # the job's position in the plan, carried by each row until the frame is sorted


class RowMaker:
    """Turns one finished call into its row: transform, scorer (a judge's calls run within its own concurrency
    limit) and the schema's columns. Built once per run; `aclose` closes the scorers' connections."""

    def __init__(self, suite: Suite, scorer: Scorer | None, transform: Transform | None):
        from ._scorer_specs import CaseScorers
        from ._scoring import default_scorer

        self.scorer = scorer if isinstance(scorer, CaseScorers) else CaseScorers(scorer or default_scorer(suite.labels))
        self.transform = transform
        self._semaphore = asyncio.Semaphore(getattr(self.scorer, "concurrency", 8))

    async def row(self, outcome: Any) -> dict:
        """The row of one call (an ``Outcome`` of the runner): scored when it has an answer."""
        from ._scoring import ascore_one

        if outcome.completion is None:
            return make_row(outcome, None, None)
        text = outcome.completion.text
        raw = text if self.transform is not None else None
        output, failed = transformed(self.transform, text)
        if failed is not None:
            return make_row(outcome, None, failed, output=None, output_raw=raw, error_type="transform_error")
        async with self._semaphore:
            score, scoring_error = await ascore_one(self.scorer, outcome.job.case, output)
        return make_row(outcome, score, scoring_error, output=output, output_raw=raw)

    async def aclose(self) -> None:
        """Close the connections of the scorers (judges)."""
        await self.scorer.aclose()


def transformed(transform: Transform | None, text: str) -> tuple[str, str | None]:
    """The answer the scorer reads, and why the transform failed (None when it did not)."""
    if transform is None:
        return text, None
    try:
        return transform(text), None
    except TransformFailed as exc:
        return text, str(exc)
    except Exception as exc:  # a user's transform may raise anything; it is recorded on the row
        return text, f"{transform.description} raised {type(exc).__name__}: {exc}"


_UNSET: Any = object()


def make_row(outcome: Any, score: Any, scoring_error: str | None, *, output: Any = _UNSET,
             output_raw: str | None = None, error_type: str | None = None) -> dict:
    """One row of the results schema from a call's outcome and its score (None when not scored)."""
    job, completion = outcome.job, outcome.completion
    output = (completion.text if completion else None) if output is _UNSET else output
    error = outcome.error
    error_type = error_type or outcome.error_type
    if scoring_error is not None:
        error_type, error = (error_type or (score.error_type if score else None) or "scoring_error"), scoring_error
    details = {f"score_{name}": value for name, value in (score.details if score else {}).items()}
    return details | _format_fields(completion) | {
        _ORDER: job.order,
        "case_id": job.case.id, "category": job.case.category, "difficulty": job.case.difficulty,
        "variant": job.variant, "prompt_name": job.prompt.name, "prompt_version": job.prompt.version,
        "prompt_hash": job.prompt.content_hash, "model_pinned": job.prompt.model, "model": job.model_id,
        "model_served": completion.model if completion else None, "answered_by": outcome.answered_by,
        "served_by": getattr(completion, "served_by", None), "repeat": job.repeat, "params": job.params,
        "input": job.case.input, "output": output, "output_raw": output_raw,
        "expected": job.case.expected, "score": score.value if score else None,
        "passed": score.passed if score else None, "reason": score.reason if score else None,
        "input_tokens": completion.input_tokens if completion else None,
        "output_tokens": completion.output_tokens if completion else None,
        "cost_usd": outcome.cost_usd, "latency_s": completion.latency_s if completion else None,
        "finish_reason": completion.finish_reason if completion else None, "cached": outcome.cached,
        "attempts": outcome.attempts, "error_type": error_type, "error": error,
    }


def _format_fields(completion: Completion | None) -> dict:
    """The answer read against the prompt's declared output: NA when none was declared or the call failed;
    ``parsed`` only for an answer in the format (a JSON null answer stays None, apart from NA). NA in ``parsed``
    is written NaN here — no JSON value is NaN, and `conform` reads it as NA — so rows need no pandas while the
    calls run."""
    format_ok = getattr(completion, "format_ok", None)
    if format_ok is None:
        return {"parsed": math.nan, "format_ok": None, "format_error": None, "enforced": None}
    return {"parsed": completion.parsed if format_ok else math.nan, "format_ok": bool(format_ok),
            "format_error": completion.format_error, "enforced": completion.enforced}


class RowSink:
    """Rows in memory up to ``chunk_rows``, then spilled to Parquet files in a temporary folder; `frame` gives
    them all back, in plan order, and removes the folder."""

    def __init__(self, run_id: str, chunk_rows: int | None = None):
        self.run_id, self.chunk_rows = run_id, chunk_rows or CHUNK_ROWS
        self.rows: list[dict] = []
        self.spilled = 0  # rows written to disk so far
        self._chunks: list[Path] = []
        self._folder: Path | None = None

    def __len__(self) -> int:
        return self.spilled + len(self.rows)

    def add(self, row: dict) -> None:
        """Keep one row (spilling the chunk once it is full)."""
        self.rows.append(row)
        if len(self.rows) >= self.chunk_rows:
            self._spill()

    def _spill(self) -> None:
        from ._results import Results, build_frame

        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="promptlab-rows-"))
        path = self._folder / f"{len(self._chunks):06d}.parquet"
        Results(build_frame(self.rows, self.run_id)).save(path)
        self._chunks.append(path)
        self.spilled += len(self.rows)
        self.rows = []

    def frame(self) -> pd.DataFrame:
        """Every row as a results frame in plan order (the schema's columns, then any ``score_*``)."""
        import pandas as pd

        from ._results import Results, build_frame, release_arrow_memory

        try:
            parts = [Results.load(path).df for path in self._chunks]
        finally:
            self.discard()
        if parts:
            release_arrow_memory()  # what reading the chunks left in Arrow's allocator
        else:  # the rows alone: put them in plan order before the frame is built (no frame to sort)
            self.rows.sort(key=itemgetter(_ORDER))
        parts.append(build_frame(self.rows, self.run_id))
        self.rows = []
        frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        parts.clear()  # the chunks' frames go before sorting copies the whole: two frames at most, never three
        if _ORDER in frame:
            if len(frame) and not frame[_ORDER].is_monotonic_increasing:
                frame = frame.sort_values(_ORDER, kind="stable").reset_index(drop=True)
            frame = frame.drop(columns=_ORDER)
        return frame

    def discard(self) -> None:
        """Remove the spilled files (the rows still in memory stay)."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder, self._chunks = None, []
