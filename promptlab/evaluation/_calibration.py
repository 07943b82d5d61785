"""Judge calibration: how far an LLM judge agrees with human labels, two bias probes, and the judge card.

``agreement(judged, labels)`` pairs the judge's verdicts (the ``passed`` column of a judged run) with human
verdicts (the review file, read by `load_reviews`, or any labelled set: ``case_id`` plus ``human``
pass/fail and/or ``score`` on the judge's scale) and reports:

* **Cohen's κ**, raw agreement and the **confusion matrix** (rows: human, columns: judge, a judge failure in
  ``(none)``) — `promptlab.stats.classification_metrics`, pinned to ``sklearn.metrics.cohen_kappa_score`` and
  ``confusion_matrix``, with its percentile bootstrap over cases;
* **Krippendorff's α** on the verdicts (nominal) and, when humans gave scores, on the scores (ordinal) — the
  ``krippendorff`` package, its interval a seeded percentile bootstrap over cases (a case's rows move together).

Probes (each asks the judge's model again; calls are cached like every judge call):

* **position swap**: two answers to one task shown in both orders, "which is better, 1 or 2?"; a judge that
  reads content picks the same answer both times, one with position bias picks the same *slot*;
* **length bias**: each answer scored again with content-free padding appended; an unbiased judge's score does
  not move (the mean change over cases with a t interval, ``scipy.stats.ttest_1samp``).

`calibrate` bundles these into a `JudgeCard`, saved as JSON under ``$PROMPTLAB_JUDGES_DIR`` (else
``<project root>/.promptlab/judges/``) and keyed by the judge's rubric hash and model (`Judge.key`). The
registry's gates read the card of every judge whose scores back evidence (`card_failures`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ArgumentError
from ._judge import Judge

VERDICTS = ("pass", "fail")
_TRUE = {"pass", "passed", "true", "yes", "1", "ok"}
_FALSE = {"fail", "failed", "false", "no", "0"}


# ---- reading the inputs -------------------------------------------------------------------------------------
def _frame(judged: Any) -> pd.DataFrame:
    frame = judged.df if hasattr(judged, "df") else judged
    if not isinstance(frame, pd.DataFrame):
        raise ArgumentError(f"judged must be Results or a DataFrame of a judged run, got {type(judged).__name__}.")
    return frame


def _need(frame: pd.DataFrame, columns: tuple[str, ...], what: str, hint: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ArgumentError(f"{what} has no column {missing!r}; its columns are {list(frame.columns)!r}. {hint}")


def _verdict(value: Any) -> bool | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)  # 1 / 0 from a spreadsheet, also as 1.0 / 0.0
    text = str(value).strip().lower()
    if text in _TRUE or value is True:
        return True
    if text in _FALSE or value is False:
        return False
    raise ArgumentError(f"a human verdict must be pass or fail (or true/false), got {value!r}.")


def human_labels(labels: pd.DataFrame, pass_threshold: float | None = None) -> pd.DataFrame:
    """Human labels in one shape: ``case_id``, ``variant`` (NA: any), ``human`` (boolean), ``human_score``.

    ``labels`` is the review frame of `load_reviews` or a labelled set with ``case_id`` and ``human`` (pass /
    fail) and/or ``score`` (on the judge's scale; with no ``human`` column the verdict is score ≥ the judge's
    ``pass_threshold``). The newest label of a case and variant wins (the frame's order), like a re-review.
    """
    if not isinstance(labels, pd.DataFrame):
        raise ArgumentError(f"labels must be a DataFrame (case_id, human and/or score), got {type(labels).__name__}.")
    _need(labels, ("case_id",), "the labels", "Give one row per labelled case: case_id, human (pass/fail), score.")
    if "human" not in labels and "score" not in labels:
        raise ArgumentError(f"the labels need a human column (pass/fail) or a score column; they have "
                            f"{list(labels.columns)!r}.")
    out = pd.DataFrame({"case_id": labels["case_id"].astype("string"),
                        "variant": labels["variant"].astype("string") if "variant" in labels else pd.NA})
    scores = pd.to_numeric(labels["score"], errors="coerce") if "score" in labels else pd.Series(np.nan, labels.index)
    out["human_score"] = scores.astype(float)
    if "human" in labels:
        out["human"] = pd.array([_verdict(v) for v in labels["human"]], dtype="boolean")
    elif pass_threshold is None:
        raise ArgumentError("the labels have scores but no human verdicts, and the judge has no pass_threshold "
                            "to turn them into verdicts: add a human column or build the judge with pass_threshold=.")
    else:
        out["human"] = pd.array([None if np.isnan(s) else bool(s >= pass_threshold) for s in scores], "boolean")
    out = out.dropna(subset=["case_id"])
    return out.drop_duplicates(["case_id", "variant"], keep="last").reset_index(drop=True)


def _judge_rows(frame: pd.DataFrame, judge: Judge | None) -> pd.DataFrame:
    """The rows scored by ``judge`` (by its key in ``score_judge``; all judged rows when there is one judge)."""
    _need(frame, ("case_id", "passed"), "the judged run", "Pass the Results of pl.run(..., scorer=pl.judge(...)).")
    keys = frame["score_judge"].dropna().unique() if "score_judge" in frame else np.array([])
    if judge is not None and len(keys):
        rows = frame[frame["score_judge"] == judge.key]
        if rows.empty:
            raise ArgumentError(f"no row of the judged run was scored by {judge.key!r}; its judges are "
                                f"{sorted(map(str, keys))!r}. Re-run with this judge, or pass the judge that scored.")
        return rows
    if len(keys) > 1:
        raise ArgumentError(f"the run was scored by several judges {sorted(map(str, keys))!r}; pass judge=.")
    return frame[frame["output"].notna()] if "output" in frame else frame


def paired_labels(judged: Any, labels: Any = None, judge: Judge | None = None) -> pd.DataFrame:
    """One row per judged answer that has a human label: case_id, variant, judge (boolean, NA: judge failure),
    judge_score (on the judge's scale), human, human_score. A label without a variant applies to every variant."""
    rows = _judge_rows(_frame(judged), judge)
    if not isinstance(labels, pd.DataFrame):  # the review file of a suite (path, Suite) or of the run's suite
        from ._reviews import load_reviews

        labels = load_reviews(judged if labels is None else labels)
    human = human_labels(labels, judge.pass_threshold if judge else None).dropna(subset=["human"])
    mine = pd.DataFrame({"case_id": rows["case_id"].astype("string"),
                         "variant": rows["variant"].astype("string") if "variant" in rows else pd.NA,
                         "judge": rows["passed"].astype("boolean"),
                         "judge_score": pd.to_numeric(rows.get("score_overall_raw", rows.get("score")),
                                                      errors="coerce").astype(float)}).reset_index(drop=True)
    by_variant = mine.merge(human.dropna(subset=["variant"]), on=["case_id", "variant"], how="inner")
    any_variant = mine.merge(human[human["variant"].isna()].drop(columns="variant"), on="case_id", how="inner")
    own = pd.MultiIndex.from_frame(by_variant[["case_id", "variant"]].astype(str))
    # a label of the answer's own variant beats a label of the whole case
    any_variant = any_variant[~pd.MultiIndex.from_frame(any_variant[["case_id", "variant"]].astype(str)).isin(own)]
    paired = pd.concat([by_variant, any_variant], ignore_index=True)
    if paired.empty:
        raise ArgumentError(f"no judged answer has a human label: the labels name cases "
                            f"{sorted(human['case_id'].unique())[:8]!r}, the run has "
                            f"{sorted(mine['case_id'].unique())[:8]!r}. Label cases of this run.")
    if judge is None and paired["judge"].isna().all() and paired["judge_score"].notna().any():
        raise ArgumentError("the judge gave scores but no pass/fail: build it with pass_threshold=.")
    return paired


def score_answers(answers: pd.DataFrame, judge: Judge) -> pd.DataFrame:
    """Judge a labelled set's answers: ``answers`` has ``case_id``, ``input`` and ``output`` (the answer to judge),
    optionally ``variant`` and ``expected`` (the reference the judge is shown). Returns the rows with the judge's
    columns as a run has them (``score``, ``passed``, ``reason``, ``error_type``, ``score_<criterion>``,
    ``score_overall_raw``, ``score_judge``), ready for `agreement`, `calibrate` and the probes."""
    from .._sync import run_sync

    if not isinstance(answers, pd.DataFrame):
        raise ArgumentError(f"answers must be a DataFrame (case_id, input, output), got {type(answers).__name__}.")
    _need(answers, ("case_id", "input", "output"), "the answers", "Give the task and the answer to judge per row.")
    return run_sync(_ascore_answers(answers.reset_index(drop=True), judge))


async def _ascore_answers(answers: pd.DataFrame, judge: Judge) -> pd.DataFrame:
    import asyncio

    from ..authoring._suite import Case

    semaphore = asyncio.Semaphore(judge.concurrency)

    async def one(row: pd.Series) -> dict:
        expected = row.get("expected")
        case = Case(id=str(row["case_id"]), input=row["input"], expected=None if _missing(expected) else expected)
        async with semaphore:
            score = await judge.ascore(case, "" if _missing(row["output"]) else str(row["output"]))
        return {"score": score.value, "passed": score.passed, "reason": score.reason, "error_type": score.error_type,
                **{f"score_{k}": v for k, v in (score.details or {}).items()}}

    try:
        scored = await asyncio.gather(*[one(row) for _, row in answers.iterrows()])
    finally:
        await judge.aclose()
    out = pd.concat([answers.drop(columns=[c for c in ("score", "passed", "reason") if c in answers]),
                     pd.DataFrame(scored)], axis=1)
    out["passed"] = out["passed"].astype("boolean")
    if "variant" not in out:
        out["variant"] = "answer"
    return out


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, (list, dict)) and bool(pd.isna(value)))


# ---- agreement ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Agreement:
    """The judge against human labels (see the module docstring). Intervals are percentile bootstraps over cases.

    ``n`` judged answers with a label over ``cases`` cases; ``judge_failures`` of them had no verdict (they count
    as disagreement in κ and the confusion matrix, and are missing values in α).
    """

    n: int
    cases: int
    judge_failures: int
    raw_agreement: float
    kappa: float
    kappa_ci_low: float
    kappa_ci_high: float
    alpha: float
    alpha_ci_low: float
    alpha_ci_high: float
    alpha_scores: float | None
    alpha_scores_ci_low: float | None
    alpha_scores_ci_high: float | None
    confusion: pd.DataFrame = field(repr=False)
    confidence: float = 0.95
    n_boot: int = 2000
    seed: int = 0

    def __repr__(self) -> str:
        scores = "" if self.alpha_scores is None else f", α(scores) {self.alpha_scores:.2f}"
        return (f"Agreement(κ {self.kappa:.2f} [{self.kappa_ci_low:.2f}, {self.kappa_ci_high:.2f}], α "
                f"{self.alpha:.2f}{scores}, raw {self.raw_agreement:.0%} on {self.n} answers / {self.cases} cases)")


def krippendorff_alpha(coders: np.ndarray, level: str) -> float:
    """Krippendorff's α of a (coders × units) array, NaN for a missing value (the ``krippendorff`` package);
    NaN when it is undefined (fewer than two values, or every value the same)."""
    import krippendorff

    data = np.asarray(coders, dtype=float)
    if np.unique(data[~np.isnan(data)]).size < 2 or (~np.isnan(data)).sum(axis=0).max(initial=0) < 2:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


def bootstrap_alpha(coders: np.ndarray, cases: np.ndarray, level: str, *, n_boot: int, seed: int,
                    confidence: float) -> tuple[float, float]:
    """Percentile interval of α over cases: cases drawn with replacement (``numpy.random.default_rng(seed)
    .integers``), every column of a drawn case kept; resamples where α is undefined are left out."""
    ids = np.unique(cases)
    if n_boot == 0 or ids.size < 2:
        return float("nan"), float("nan")
    columns = [np.flatnonzero(cases == i) for i in ids]
    rng = np.random.default_rng(seed)
    values = []
    for draw in rng.integers(0, ids.size, size=(n_boot, ids.size)):
        values.append(krippendorff_alpha(coders[:, np.concatenate([columns[d] for d in draw])], level))
    values = np.asarray(values)
    values = values[~np.isnan(values)]
    if not values.size:
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def agreement(judged: Any, labels: Any = None, *, judge: Judge | None = None, confidence: float = 0.95,
              n_boot: int = 2000, seed: int = 0) -> Agreement:
    """How far the judge's verdicts agree with human labels: κ, α, confusion matrix, intervals over cases.

    Args:
        judged: the `Results` (or its frame) of a run scored by the judge (the judge needs a ``pass_threshold``).
        labels: human labels: a DataFrame with ``case_id`` and ``human`` and/or ``score`` (`load_reviews`' frame
            is one), or what `load_reviews` reads (a suite file, a `Suite`, a review file); None: the review file
            of the run's suite.
        judge: the judge, to pick its rows when several judges scored the run.
        confidence, n_boot, seed: the bootstrap intervals.
    """
    from ..stats._classification import classification_metrics

    paired = paired_labels(judged, labels, judge)
    human = np.where(paired["human"].astype(bool), "pass", "fail")
    said = [None if pd.isna(v) else ("pass" if v else "fail") for v in paired["judge"]]
    cases = paired["case_id"].astype(str).to_numpy()
    metrics = classification_metrics(human, said, VERDICTS, cases=cases, confidence=confidence, n_boot=n_boot,
                                     seed=seed)
    s = metrics.summary
    verdicts = np.vstack([paired["human"].astype(float).to_numpy(),
                          paired["judge"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)])
    alpha = krippendorff_alpha(verdicts, "nominal")
    alpha_ci = bootstrap_alpha(verdicts, cases, "nominal", n_boot=n_boot, seed=seed, confidence=confidence)
    scored = paired.dropna(subset=["human_score"])
    alpha_scores = scores_ci = None
    if len(scored):
        grid = np.vstack([scored["human_score"].to_numpy(float), scored["judge_score"].to_numpy(float)])
        alpha_scores = krippendorff_alpha(grid, "ordinal")
        scores_ci = bootstrap_alpha(grid, scored["case_id"].astype(str).to_numpy(), "ordinal", n_boot=n_boot,
                                    seed=seed, confidence=confidence)
    return Agreement(n=int(s["n"]), cases=int(s["cases"]), judge_failures=int(s["no_label"]),
                     raw_agreement=float(s["accuracy"]), kappa=float(s["kappa"]), kappa_ci_low=float(s["kappa_ci_low"]),
                     kappa_ci_high=float(s["kappa_ci_high"]), alpha=alpha, alpha_ci_low=alpha_ci[0],
                     alpha_ci_high=alpha_ci[1], alpha_scores=alpha_scores,
                     alpha_scores_ci_low=scores_ci[0] if scores_ci else None,
                     alpha_scores_ci_high=scores_ci[1] if scores_ci else None,
                     confusion=metrics.confusion.rename_axis(index="human", columns="judge"), confidence=confidence,
                     n_boot=n_boot, seed=seed)


# ---- the judge card -----------------------------------------------------------------------------------------
def judges_dir() -> Path:
    """Where judge cards live: ``$PROMPTLAB_JUDGES_DIR``, else ``<project root>/.promptlab/judges/``."""
    from ._cache import project_folder

    return project_folder("judges")


def card_path(key: str, folder: Path | None = None) -> Path:
    """The card file of judge ``key`` (``<rubric hash>@<model>``): ``<hash>__<model, file-safe>.json``."""
    rubric, _, model = key.partition("@")
    return (folder or judges_dir()) / f"{rubric}__{re.sub(r'[^A-Za-z0-9._-]', '_', model)}.json"


@dataclass(frozen=True)
class JudgeCard:
    """What is known about one judge (rubric hash + model): its agreement with humans and its bias probes."""

    key: str
    rubric_hash: str
    model: str
    criteria: list[str]
    scale: list[int]
    pass_threshold: float | None
    agreement: dict[str, Any]
    confusion: dict[str, dict[str, int]]
    probes: dict[str, dict[str, Any]]
    labels: str
    created: str

    @property
    def kappa(self) -> float:
        """Cohen's κ against the human labels (NaN when undefined)."""
        value = self.agreement.get("kappa")
        return float("nan") if value is None else float(value)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready card (NaN becomes null)."""
        return json.loads(json.dumps(asdict(self), default=_plain), parse_constant=lambda _: None)

    def save(self, folder: str | Path | None = None) -> Path:
        """Write the card as JSON (atomically) under `judges_dir` or ``folder``; returns the path."""
        from .._files import atomic_write

        path = card_path(self.key, Path(folder) if folder else None)
        atomic_write(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path

    def __repr__(self) -> str:
        a = self.agreement
        return (f"JudgeCard({self.key!r}: κ {_num(a.get('kappa'))} [{_num(a.get('kappa_ci_low'))}, "
                f"{_num(a.get('kappa_ci_high'))}], α {_num(a.get('alpha'))} on {a.get('n')} labelled answers; "
                f"probes {sorted(self.probes)!r})")


def _num(value: Any) -> str:
    return "NA" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.2f}"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not np.isfinite(value) else value


def load_judge_card(judge_or_key: Judge | str, folder: str | Path | None = None) -> JudgeCard | None:
    """The saved card of a judge (a `Judge` or its key), or None when it has none."""
    key = judge_or_key.key if isinstance(judge_or_key, Judge) else str(judge_or_key)
    path = card_path(key, Path(folder) if folder else None)
    if not path.is_file():
        return None
    from ..errors import EvidenceError

    try:
        return JudgeCard(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise EvidenceError(f"judge card {str(path)!r} cannot be read ({exc}). Calibrate the judge again: "
                            "pl.evaluation.calibrate(results, labels, judge).") from None


def calibrate(judged: Any, labels: Any, judge: Judge, *, probes: bool = True, max_probe_items: int = 50,
              confidence: float = 0.95, n_boot: int = 2000, seed: int = 0, save: bool = True,
              source: str | None = None) -> JudgeCard:
    """Measure ``judge`` against human labels (and probe it), and save its `JudgeCard`.

    Args:
        judged: the `Results` of a run scored by ``judge``.
        labels: human labels, as for `agreement` (None: the review file of the run's suite).
        judge: the judge calibrated (its `Judge.key` keys the card).
        probes: also run the position-swap and length probes (they call the judge's model).
        max_probe_items: pairs / answers each probe asks about at most.
        confidence, n_boot, seed: the agreement's intervals.
        save: write the card under `judges_dir` (the registry's gates read it there).
        source: where the labels come from, in words, for the card (default: the review file or a labelled set).
    """
    from ._judge_probes import length_bias, position_swap

    if not isinstance(judge, Judge):
        raise ArgumentError(f"judge must be the Judge that scored the run (pl.judge(...)), got {judge!r}.")
    found = agreement(judged, labels, judge=judge, confidence=confidence, n_boot=n_boot, seed=seed)
    numbers = {k: _finite(v) for k, v in asdict(found).items() if k != "confusion"}
    confusion = {str(h): {str(j): int(n) for j, n in row.items()} for h, row in found.confusion.iterrows()}
    probed = {}
    if probes:
        probed = {p.probe: p.to_dict() for p in (position_swap(judged, judge, max_probe_items),
                                                 length_bias(judged, judge, max_probe_items))}
    source = source or ("labelled set" if isinstance(labels, pd.DataFrame) else "review file")
    card = JudgeCard(judge.key, judge.rubric_hash, judge.model_id, [c.name for c in judge.criteria],
                     list(judge.scale), judge.pass_threshold, numbers, confusion, probed, source,
                     dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    if save:
        card.save()
    return card


def card_failures(keys: Any, min_agreement: float, folder: str | Path | None = None) -> list[str]:
    """Why judges cannot back evidence: no card, or Cohen's κ on their card below ``min_agreement`` (empty: all
    calibrated). ``keys`` are `Judge.key` values as the rows' ``score_judge`` column records them."""
    failures = []
    for key in sorted(set(map(str, keys))):
        card = load_judge_card(key, folder)
        if card is None:
            failures.append(f"judge {key} has no judge card: it was never calibrated against human labels "
                            f"(looked in {str(card_path(key, Path(folder) if folder else None).parent)!r})")
        elif not card.kappa >= min_agreement:
            a = card.agreement
            failures.append(f"judge {key} agrees with human labels at Cohen's κ {_num(a.get('kappa'))} "
                            f"[{_num(a.get('kappa_ci_low'))}, {_num(a.get('kappa_ci_high'))}] on {a.get('n')} "
                            f"labelled answers, below min_judge_agreement {min_agreement:g}")
    return failures
