"""The review file: human verdicts on a suite's answers, kept beside the suite and read strictly.

A reviewer (in ``pl.view``, or by hand) overrides the scorer's pass/fail on a case's answer and says why. The
verdicts live in ``<suite file without extension>.review.yaml`` beside the suite file (for a suite with no file:
``<runs dir>/reviews/<suite name>.review.yaml``), so they travel with the suite in git::

    suite: suites/sentiment.yaml
    suite_hash: <sha256 of the suite file>
    verdicts:
      - {case_id: neg-003, variant: A, run_id: <id>, human: pass, comment: "sarcasm, the label is right",
         reviewer: ann, at: 2026-12-02T10:00:00Z}

``human`` is ``pass`` or ``fail``; a judged task may add ``score`` on the judge's scale. A verdict without a
``run_id`` holds for every run, one without a ``variant`` for every variant. `load_reviews` reads the file as a
DataFrame (judge calibration reads it too); `record_verdict` writes one verdict, atomically and under a lock;
`apply_reviews` gives a results frame the human verdicts in place of the scorer's (human-corrected accuracy).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .._files import atomic_write, current_actor
from .._yaml import load_model
from ..errors import ArgumentError, SuiteFileError
from ._cache import project_folder, project_root

REVIEW_SUFFIX = ".review.yaml"
REVIEW_COLUMNS: dict[str, str] = {
    "case_id": "string", "variant": "string", "run_id": "string", "human": "string", "score": "float64",
    "comment": "string", "reviewer": "string", "at": "datetime64[ns, UTC]",
}
_FIX = "Fix the file by hand, or delete the verdict and record it again in pl.view."
_KEY = ("case_id", "variant", "run_id")


class Verdict(BaseModel):
    """One human verdict on a case's answer (one variant, one run; either left out means all)."""

    model_config = ConfigDict(extra="forbid")

    case_id: str = Field(min_length=1, description="Write the case's id, as in the suite")
    variant: str | None = Field(None, description="Write the variant's name (A, B ...), or leave it out for all")
    run_id: str | None = Field(None, description="Write the run's id, or leave it out for every run")
    human: Literal["pass", "fail"] = Field(description="Write pass or fail")
    score: float | None = Field(None, description="Write a number on the judge's scale, or leave it out")
    comment: str = ""
    reviewer: str | None = None
    at: dt.datetime | None = Field(None, description="Write a UTC time such as 2026-12-02T10:00:00Z")

    @field_validator("case_id", "variant", "run_id", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        # a case id written as a bare number is still the id (as the suite reads it)
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ReviewFile(BaseModel):
    """The review file: which suite (path and content hash) and the verdicts."""

    model_config = ConfigDict(extra="forbid")

    suite: str | None = None
    suite_hash: str | None = None
    verdicts: list[Verdict] = Field(default_factory=list, description="Write a list of verdicts")


# ---- where the file is --------------------------------------------------------------------------------------
def suite_file_of(source: Any) -> Path | None:
    """The suite file behind ``source`` (a path, a `Suite` loaded from a file, or `Results` whose run recorded
    its suite file), or None when nothing records one."""

    if isinstance(source, str | os.PathLike):
        return Path(source)
    if hasattr(source, "meta"):  # Results: the run's provenance names its suite file, relative to the project root
        found = (source.meta.get("suite") or {}).get("path")
        if not found:
            return None
        path = Path(found)
        return path if path.is_absolute() or path.exists() else project_root() / path
    known = getattr(source, "source", None)  # a Suite loaded from a file knows it
    found = known.get("path") if isinstance(known, dict) else None
    return Path(found) if found else None


def suite_name_of(source: Any) -> str | None:
    """The suite's name from a `Suite` or `Results` (None when neither records it)."""
    if hasattr(source, "meta"):
        return (source.meta.get("suite") or {}).get("name")
    return getattr(source, "name", None) if not isinstance(source, str | os.PathLike) else None


def review_path(source: Any) -> Path:
    """The review file of ``source``: a review file path as given; a suite file's ``<stem>.review.yaml`` beside
    it; for a suite with no file, ``<runs dir>/reviews/<suite name>.review.yaml``.

    Args:
        source: a suite file path, a review file path, a `Suite`, or `Results` (its ``meta["suite"]``).
    """
    path = suite_file_of(source)
    if path is not None:
        return path if path.name.endswith(REVIEW_SUFFIX) else path.with_name(path.stem + REVIEW_SUFFIX)
    name = suite_name_of(source)
    if not name:
        raise ArgumentError(f"cannot tell which suite {type(source).__name__} {str(source)[:80]!r} belongs to, so "
                            "not where its review file is. Pass the suite file's path, the Suite, or review_file=.")
    safe = re.sub(r"[^\w.-]+", "_", str(name)).strip("._") or "suite"
    return project_folder("runs") / "reviews" / f"{safe}{REVIEW_SUFFIX}"  # beside the run store




def file_hash(path: Path) -> str | None:
    """The sha256 of a file's bytes (None when it does not exist)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


# ---- reading ------------------------------------------------------------------------------------------------
def read_review_file(path: str | Path) -> ReviewFile:
    """The review file at ``path``, strictly read (a missing or empty file has no verdicts)."""
    review = load_model(path, ReviewFile, SuiteFileError, "review file", fix=_FIX, missing_ok=True)
    seen: dict[tuple[Any, ...], int] = {}
    for index, verdict in enumerate(review.verdicts):
        key = tuple(getattr(verdict, k) for k in _KEY)
        if key in seen:
            raise SuiteFileError(f"{path}: review file: verdicts {seen[key]} and {index} (counting from 0) both judge "
                                 f"case {verdict.case_id!r}, variant {verdict.variant!r}, run {verdict.run_id!r}. "
                                 f"Keep one of them. {_FIX}")
        seen[key] = index
    return review


def load_reviews(suite_or_path: Any) -> pd.DataFrame:
    """The human verdicts on a suite as a DataFrame, one row per verdict.

    Columns (`REVIEW_COLUMNS`): ``case_id``, ``variant`` and ``run_id`` (NA: every variant / run), ``human``
    (``pass`` / ``fail``), ``score`` (NaN when not given), ``comment``, ``reviewer``, ``at`` (UTC).

    Args:
        suite_or_path: a suite file path (its review file beside it), a review file path (``*.review.yaml``),
            a `Suite`, or `Results` (the suite in its metadata). No review file yet: no rows.

    Raises:
        SuiteFileError: the review file is not valid (every problem with its line).
    """
    path = review_path(suite_or_path)
    if isinstance(suite_or_path, str | os.PathLike) and path.name.endswith(REVIEW_SUFFIX) \
            and Path(suite_or_path) == path and not path.exists():
        raise ArgumentError(f"review file {str(path)!r} does not exist. Check the path, or pass the suite file "
                            "(its review file is found beside it, and may not exist yet).")
    return reviews_frame(read_review_file(path).verdicts)


def reviews_frame(verdicts: list[Verdict]) -> pd.DataFrame:
    """Verdicts as a frame in the `REVIEW_COLUMNS` schema."""
    frame = pd.DataFrame([v.model_dump() for v in verdicts], columns=list(REVIEW_COLUMNS))
    for column, dtype in REVIEW_COLUMNS.items():
        if column == "at":
            frame[column] = pd.to_datetime(frame[column], utc=True).astype(dtype)
        elif dtype == "float64":
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        else:
            frame[column] = frame[column].astype(dtype)
    return frame


# ---- writing ------------------------------------------------------------------------------------------------
def record_verdict(path: str | Path, case_id: str, human: str | None, *, variant: str | None = None,
                   run_id: str | None = None, comment: str = "", score: float | None = None,
                   reviewer: str | None = None, suite_file: str | Path | None = None,
                   suite_name: str | None = None) -> Path:
    """Write one verdict into the review file at ``path`` (replacing the verdict on the same case, variant and
    run), or remove it when ``human`` is None. Atomic, and under a lock so two reviewers both land.

    Args:
        path: the review file (see `review_path`).
        case_id: the case judged.
        human: ``"pass"`` or ``"fail"``; None removes the verdict.
        variant, run_id: what was judged (None: every variant / every run).
        comment: why.
        score: the human's score on the judge's scale, for a judged task.
        reviewer: who (default: the acting user, `current_actor`).
        suite_file: the suite file, recorded with its content hash.
        suite_name: the suite's name, recorded as ``suite`` when it has no file (and the file names none yet).
    """
    from filelock import FileLock

    if human not in ("pass", "fail", None):
        raise ArgumentError(f"human={human!r} must be 'pass' or 'fail' (or None to remove the verdict).")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=30):
        review = read_review_file(path)
        key = (str(case_id), variant, run_id)
        kept = [v for v in review.verdicts if (v.case_id, v.variant, v.run_id) != key]
        if human is not None:
            kept.append(Verdict(case_id=str(case_id), variant=variant, run_id=run_id, human=human, score=score,
                                comment=comment or "", reviewer=reviewer or current_actor(),
                                at=dt.datetime.now(dt.UTC).replace(microsecond=0)))
        if suite_file is not None:
            review.suite, review.suite_hash = _shown(Path(suite_file)), file_hash(Path(suite_file))
        elif suite_name and not review.suite:
            review.suite = str(suite_name)
        review.verdicts = kept
        atomic_write(path, _dump(review))
    return path


def _shown(suite_file: Path) -> str:
    """The suite file as the review file names it: relative to the project root when inside it."""
    from ._cache import project_root

    resolved = suite_file.resolve()
    try:
        return resolved.relative_to(project_root(resolved.parent)).as_posix()
    except ValueError:
        return resolved.as_posix()


def _dump(review: ReviewFile) -> str:
    verdicts = []
    for verdict in review.verdicts:
        item = {k: v for k, v in verdict.model_dump().items() if v is not None and v != ""}
        item["at"] = verdict.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if verdict.at else None
        verdicts.append({k: v for k, v in item.items() if v is not None})
    data = {"suite": review.suite, "suite_hash": review.suite_hash, "verdicts": verdicts}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


# ---- using the verdicts -------------------------------------------------------------------------------------
def apply_reviews(df: pd.DataFrame, reviews: pd.DataFrame) -> pd.DataFrame:
    """``df`` (a results frame) with ``passed`` set from the human verdicts that match a row, and ``human``
    (the verdict, NA where none), ``human_comment`` and ``overridden`` (the human changed the scorer's verdict)
    added.

    A verdict matches a row on ``case_id``, and on ``variant`` and ``run_id`` when it names them; a verdict
    naming the run wins over one for every run, one naming the variant over one for every variant. It holds
    for every model and repeat of its case.
    """
    missing = [c for c in ("case_id", "human") if c not in reviews.columns]
    if missing:
        raise ArgumentError(f"the reviews lack columns {missing!r}; they have {list(reviews.columns)!r}. Use "
                            "pl.evaluation.load_reviews(suite) or a frame with case_id, variant, run_id, human.")
    out = df.copy()
    human = pd.Series(pd.NA, index=out.index, dtype="string")
    comment = pd.Series(pd.NA, index=out.index, dtype="string")
    # least specific first, so a verdict naming the variant and the run is written last and wins
    ranked = reviews.assign(_rank=reviews.get("variant", pd.Series(pd.NA, index=reviews.index)).notna().astype(int)
                            + 2 * reviews.get("run_id", pd.Series(pd.NA, index=reviews.index)).notna().astype(int))
    for record in ranked.sort_values("_rank", kind="stable").to_dict("records"):
        match = out["case_id"].astype("string") == str(record["case_id"])
        for column in ("variant", "run_id"):
            value = record.get(column)
            if value is not None and value is not pd.NA and not (isinstance(value, float) and value != value):
                match &= out[column].astype("string") == str(value)
        match = match.fillna(False).astype(bool)
        human[match] = record["human"]
        comment[match] = record.get("comment") if isinstance(record.get("comment"), str) else pd.NA
    verdict = human.map({"pass": True, "fail": False}, na_action="ignore").astype("boolean")
    out["overridden"] = (verdict.notna() & (out["passed"].astype("boolean") != verdict).fillna(True)).astype(bool)
    out["passed"] = verdict.where(verdict.notna(), out["passed"].astype("boolean")).astype("boolean")
    out["human"], out["human_comment"] = human, comment
    return out
