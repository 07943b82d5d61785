"""Bias probes of an LLM judge: position swap (pairwise order) and length (padding an answer).

Both ask the judge's own model again and go through the response cache like every judge call; a call that fails
or cannot be read is a row with NA, never a crash. See `promptlab.evaluation._calibration` for how they enter a
judge card.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..authoring._suite import Case
from ..errors import ArgumentError, ProviderError
from ..providers import split_model_id
from ..providers._base import Message, Request
from ._cache import cache_key
from ._judge import _SYSTEM, Judge

PADDING = ("This answer has been carefully considered, double-checked and reviewed for completeness, clarity and "
           "accuracy, and it reflects a thorough and well-reasoned assessment of the task. ")
"""The length probe's padding: it says nothing about the task, it only makes the answer longer."""
_PICK = re.compile(r"[12]")


@dataclass(frozen=True)
class ProbeResult:
    """One probe's outcome: its statistic with an interval, counts, and one row per item probed (``rows``).

    position_swap: ``statistic`` is the share of pairs judged the same way in both orders (Wilson interval);
    ``first_share`` in ``counts`` is how often the first slot won (0.5 for no position preference).
    length: ``statistic`` is the mean change of the judge's score (its scale) when the answer is padded (t interval
    over cases); ``flipped_to_pass`` counts failing answers that passed once padded.
    """

    probe: str
    statistic: float
    ci_low: float
    ci_high: float
    counts: dict[str, Any]
    rows: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The numbers only (no rows), JSON-ready."""
        return {"probe": self.probe, "statistic": self.statistic, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "counts": self.counts}


def _answered(judged: Any) -> pd.DataFrame:
    frame = judged.df if hasattr(judged, "df") else judged
    if not isinstance(frame, pd.DataFrame) or not {"case_id", "input", "output"} <= set(frame.columns):
        raise ArgumentError("a probe needs the Results of a run (case_id, input, output columns), got "
                            f"{type(judged).__name__}.")
    return frame[frame["output"].notna()]


def _task(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


# ---- position swap ------------------------------------------------------------------------------------------
def swap_pairs(judged: Any, max_pairs: int = 50) -> pd.DataFrame:
    """Pairs to show in both orders: per case, the answers of the first two variants; with one variant, the
    answer beside the case's reference answer (when it has a different one)."""
    rows = _answered(judged)
    rows = rows.drop_duplicates(["case_id", "variant"] if "variant" in rows else ["case_id"])
    pairs = []
    for case_id, group in rows.groupby("case_id", sort=True):
        first = group.iloc[0]
        other = (str(group.iloc[1]["output"]) if len(group) > 1 else
                 (str(first["expected"]) if "expected" in group and pd.notna(first["expected"]) else None))
        if other is not None and other != str(first["output"]):
            pairs.append({"case_id": str(case_id), "input": _task(first["input"]), "a": str(first["output"]),
                          "b": other})
    return pd.DataFrame(pairs[:max_pairs], columns=["case_id", "input", "a", "b"])


def pairwise_request(judge: Judge, task: str, first: str, second: str) -> Request:
    """The judge's pairwise question: which of two responses better meets its rubric, answered 1 or 2."""
    low, high = judge.scale
    rubric = "\n".join(f"- {c.name}: {c.description}" for c in judge.criteria)
    text = (f"TASK:\n{task}\n\nRESPONSE 1:\n{first}\n\nRESPONSE 2:\n{second}\n\nCRITERIA:\n{rubric}\n\n"
            "Which response better meets the criteria? Answer with the number 1 or 2 only.")
    return Request(model=split_model_id(judge.model_id)[1], system=_SYSTEM.format(low=low, high=high),
                   messages=(Message("user", text),), temperature=judge.temperature, max_tokens=8)


async def _pick(judge: Judge, request: Request) -> int | None:
    """1 or 2 from the judge's answer (cached like every judge call); None when the call fails or says neither."""
    identity = judge.provider.cache_identity()
    key = cache_key(identity, request, 0, namespace="judge:pairwise")
    hit = judge.cache.get(key) if judge.cache is not None else None
    if hit is None:
        try:
            hit = await judge.provider.complete(request)
        except ProviderError:
            return None
        if judge.cache is not None:
            judge.cache.put(key, judge.provider.name, hit, endpoint=identity.get("endpoint"),
                            model_asked=judge.model_id)
    found = _PICK.search(hit.text or "")
    return int(found.group()) if found else None


async def aposition_swap(judged: Any, judge: Judge, max_pairs: int = 50) -> ProbeResult:
    """Show each pair in both orders; consistent when the same *answer* wins both times."""
    from ..stats._intervals import wilson_interval

    pairs = swap_pairs(judged, max_pairs)
    semaphore = asyncio.Semaphore(judge.concurrency)

    async def ask(first: str, second: str, task: str) -> int | None:
        async with semaphore:
            return await _pick(judge, pairwise_request(judge, task, first, second))

    try:
        picks = await asyncio.gather(*[ask(p.a, p.b, p.input) for p in pairs.itertuples()],
                                     *[ask(p.b, p.a, p.input) for p in pairs.itertuples()])
    finally:
        await judge.aclose()
    pairs["ab"], pairs["ba"] = pd.array(picks[:len(pairs)], "Int64"), pd.array(picks[len(pairs):], "Int64")
    read = pairs.dropna(subset=["ab", "ba"])
    pairs["consistent"] = pd.array([None if pd.isna(x) or pd.isna(y) else bool(x != y)
                                    for x, y in zip(pairs["ab"], pairs["ba"], strict=True)], "boolean")
    consistent = int(pairs["consistent"].sum(skipna=True))
    slots = pd.concat([pairs["ab"], pairs["ba"]]).dropna()
    interval = wilson_interval(consistent, len(read))  # scipy binomtest(k, n).proportion_ci(method="wilson")
    counts = {"pairs": len(pairs), "read": len(read), "consistent": consistent,
              "first_share": float((slots == 1).mean()) if len(slots) else None}
    return ProbeResult("position_swap", float(interval.estimate), float(interval.low), float(interval.high),
                       counts, pairs)


def position_swap(judged: Any, judge: Judge, max_pairs: int = 50) -> ProbeResult:
    """Synchronous `aposition_swap` (works inside Jupyter too)."""
    from .._sync import run_sync

    return run_sync(aposition_swap(judged, judge, max_pairs))


# ---- length -------------------------------------------------------------------------------------------------
async def alength_bias(judged: Any, judge: Judge, max_answers: int = 50, padding: str = PADDING,
                       times: int = 3) -> ProbeResult:
    """Score each answer as it is and with ``padding`` appended ``times``; report the mean score change."""
    from scipy import stats

    rows = _answered(judged).drop_duplicates(["case_id", "output"]).head(max_answers)
    semaphore = asyncio.Semaphore(judge.concurrency)

    async def score(row: Any, text: str) -> tuple[float, bool | None]:
        case = Case(id=str(row.case_id), input=row.input, expected=row.expected if hasattr(row, "expected") else None)
        async with semaphore:
            result = await judge.ascore(case, text)
        return (result.details or {}).get("overall_raw", np.nan), result.passed

    padded_text = "\n\n" + padding * times
    try:
        plain = await asyncio.gather(*[score(r, str(r.output)) for r in rows.itertuples()])
        padded = await asyncio.gather(*[score(r, str(r.output) + padded_text) for r in rows.itertuples()])
    finally:
        await judge.aclose()
    out = pd.DataFrame({"case_id": rows["case_id"].astype(str).to_numpy(),
                        "score": [s for s, _ in plain], "padded_score": [s for s, _ in padded],
                        "passed": pd.array([p for _, p in plain], "boolean"),
                        "padded_passed": pd.array([p for _, p in padded], "boolean")})
    out["change"] = out["padded_score"] - out["score"]
    per_case = out.dropna(subset=["change"]).groupby("case_id")["change"].mean()
    mean = float(per_case.mean()) if len(per_case) else float("nan")
    low = high = float("nan")
    if len(per_case) >= 2 and per_case.std() > 0:  # a t interval over cases (each case's answers averaged)
        interval = stats.ttest_1samp(per_case.to_numpy(), 0.0).confidence_interval(0.95)
        low, high = float(interval.low), float(interval.high)
    elif len(per_case) >= 2:
        low = high = mean
    flipped = int((out["passed"].eq(False) & out["padded_passed"].eq(True)).sum())
    counts = {"answers": len(out), "scored": int(out["change"].notna().sum()), "cases": len(per_case),
              "flipped_to_pass": flipped, "padding_chars": len(padded_text)}
    return ProbeResult("length", mean, low, high, counts, out)


def length_bias(judged: Any, judge: Judge, max_answers: int = 50, padding: str = PADDING,
                times: int = 3) -> ProbeResult:
    """Synchronous `alength_bias` (works inside Jupyter too)."""
    from .._sync import run_sync

    return run_sync(alength_bias(judged, judge, max_answers, padding, times))
