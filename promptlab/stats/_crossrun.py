"""Runs compared with each other: ``compare(run_a, run_b)`` pairs the rows of two (or more) runs by case.

Each run's variants are renamed after the run (``<run_id>`` for a one-variant run, ``<run_id>:<variant>``
otherwise), the rows are stacked, and the usual comparison pairs them on ``(case_id, repeat)`` within a model
(across models when the runs used different ones). The first run is the baseline. What differs between the
runs beyond the answers (the suite file's hash, cases only one run has) is said in the comparison's messages.

Runs are `Results` (``pl.load_run(id)`` gives a stored one); this room reads their ``df`` and ``meta`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..errors import StatsError


def is_runs(results: Any, baseline: Any) -> bool:
    """Whether ``compare`` was given runs to compare with each other (a list of them, or two as its first
    arguments) rather than one results object and a baseline variant."""
    return (_is_run(baseline) or (isinstance(results, Sequence) and not isinstance(results, str | pd.DataFrame)
                                  and len(results) > 0 and all(_is_run(r) for r in results)))


def runs_frame(results: Any, baseline: Any) -> tuple[pd.DataFrame, str, list[str]]:
    """The runs' rows as one frame whose variants are named by run, the baseline's name, and notes."""
    runs = [*results, *([] if baseline is None else [baseline])] if not _is_run(results) else [results, baseline]
    strays = [type(r).__name__ for r in runs if not _is_run(r)]
    if strays or len(runs) < 2:
        raise StatsError(f"compare(run_a, run_b) pairs two or more runs, each a Results (pl.load_run(id) gives a "
                         f"stored run); got {strays or [type(r).__name__ for r in runs]!r}.")
    frames, names, ids = [], [], []
    for run in runs:
        frame, run_id = _renamed(run)
        if run_id in ids:
            raise StatsError(f"run {run_id!r} is given twice; compare two different runs.")
        ids.append(run_id)
        names.append(list(pd.unique(frame["variant"])))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), names[0][0], _notes(runs, ids)


def _is_run(value: Any) -> bool:
    return isinstance(getattr(value, "df", None), pd.DataFrame) and isinstance(getattr(value, "meta", None), dict)


def _run_id(run: Any) -> str:
    ids = [str(i) for i in pd.unique(run.df["run_id"].dropna())] if "run_id" in run.df else []
    if len(ids) > 1:
        raise StatsError(f"these results hold several runs ({ids!r}); compare runs one Results each "
                         "(pl.load_run(id)).")
    return str(run.meta.get("run_id") or (ids[0] if ids else f"run{id(run)}"))


def _renamed(run: Any) -> tuple[pd.DataFrame, str]:
    run_id = _run_id(run)
    frame = run.df.copy()
    variants = list(pd.unique(frame["variant"].dropna()))
    rename = {v: run_id if len(variants) == 1 else f"{run_id}:{v}" for v in variants}
    frame["variant"] = frame["variant"].map(rename).astype("string")
    return frame, run_id


def _notes(runs: list[Any], ids: list[str]) -> list[str]:
    notes = [f"runs compared, paired by case: {ids[0]!r} (baseline) against {ids[1:]!r}"]
    hashes = {i: ((r.meta.get("suite") or {}).get("sha256")) for i, r in zip(ids, runs, strict=True)}
    if len({h for h in hashes.values()}) > 1:
        notes.append(f"the runs used different suite files (sha256 {hashes!r}): only cases with the same id pair")
    cases = [set(r.df["case_id"].dropna()) for r in runs]
    for run_id, own in zip(ids[1:], cases[1:], strict=True):
        only = len(own ^ cases[0])
        if only:
            notes.append(f"{only} case(s) are in only one of {ids[0]!r} and {run_id!r}: they have no pair")
    return notes
