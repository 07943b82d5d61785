"""Spending the search's calls where they matter: the scores each candidate earned, the call and dollar budget,
and successive halving over one stage's candidates.

`Scoreboard` keeps one verdict per (prompt content hash, model, case): a candidate is never asked the same case
twice in one search, and a candidate several stages share (the incumbent) keeps the scores it earned. Calls the
board does make go through `promptlab.evaluation.run` with one response cache shared by every candidate, so a
request two candidates share (or an earlier search made) is answered from the cache.

`Spend` holds the budget: calls sent to a model (cache hits are free) and, with a `Budget`, dollars. It reserves
what the confirmation will need before the search begins, so the search can never eat the confirmation.

`race` is successive halving (Jamieson & Talwalkar 2016; Li et al. 2018, Hyperband's inner loop): every candidate
answers the first few search cases, the best 1/eta go on to eta times as many cases, and so on, until the last
few answer every search case. The incumbent goes on at every rung and ties go to it (then to the earlier
candidate), so a move must *beat* what it replaces on every search case to be kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd

from ..authoring._suite import Case, Suite
from ..evaluation._cost import Budget
from ..evaluation._summaries import accuracy_row
from ._candidates import Candidate

NOT_SCORED = ("budget_exceeded", "not_run")
"""Rows of calls never made: they say nothing about a candidate, so they are not scores."""


def model_key(model: Any) -> str:
    """A model's key on the scoreboard: its id, or for a provider object its class and identity."""
    return model if isinstance(model, str) else f"{type(model).__name__}@{id(model):x}"


@dataclass
class Spend:
    """The search's budget: ``max_calls`` model calls and/or a `Budget` in dollars (None: no cap).

    ``calls`` counts calls sent to a model (answers from the cache are free and counted in ``cached``); ``usd``
    the dollars they cost (None once a call had no price). ``reserve_calls`` is held back for the confirmation.
    """

    max_calls: int | None = None
    budget: Budget | None = None
    reserve_calls: int = 0
    calls: int = 0
    cached: int = 0
    usd: Decimal | None = Decimal(0)
    stopped: str | None = None

    def remaining_calls(self) -> float:
        """Calls the search may still make (the confirmation's reserve excluded); inf without a cap."""
        return math.inf if self.max_calls is None else self.max_calls - self.reserve_calls - self.calls

    def affords(self, calls: int, worst_usd: Decimal | None = None, reserve_usd: Decimal = Decimal(0)) -> bool:
        """Whether ``calls`` more calls (at most ``worst_usd``) fit, keeping the confirmation's reserve."""
        if calls > self.remaining_calls():
            return False
        if self.budget is not None and worst_usd is not None:
            return self.budget.remaining - worst_usd >= reserve_usd
        return True

    def account(self, frame: pd.DataFrame) -> None:
        """Count the calls of one run's rows: made (not cached, not skipped), cached, and their cost."""
        made = frame[~frame["cached"].astype(bool) & ~frame["error_type"].isin(NOT_SCORED)]
        self.calls += len(made)
        self.cached += int(frame["cached"].astype(bool).sum())
        answered = made[made["output"].notna()]
        if self.usd is not None and len(answered):
            costs = answered["cost_usd"]
            self.usd = None if costs.isna().any() else self.usd + sum((Decimal(str(c)) for c in costs), Decimal(0))


@dataclass
class Scoreboard:
    """Every verdict of the search, by (prompt hash, model, case id), and the runs that produced them.

    ``runner`` is `promptlab.evaluation.run` with the search's options bound (cache, scorer, providers, budget);
    tests give a fake one.
    """

    runner: Callable[..., Any]
    model: Any
    spend: Spend
    rows: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    frames: list[pd.DataFrame] = field(default_factory=list)

    def run_options(self) -> dict[str, Any]:
        """The options every run of the search shares (cache, budget, scorer, providers …)."""
        options = getattr(self.runner, "options", None)
        return options() if callable(options) else {}

    def _model_of(self, candidate: Candidate) -> Any:
        return candidate.model if candidate.model is not None else self.model

    def _key(self, candidate: Candidate, case: Case) -> tuple[str, str, str]:
        return (candidate.prompt.content_hash, model_key(self._model_of(candidate)), case.id)

    def missing(self, candidates: Sequence[Candidate], cases: Sequence[Case]) -> int:
        """How many answers these candidates lack on these cases (the calls a rung needs at most)."""
        return sum(self._key(c, case) not in self.rows for c in _unique(candidates) for case in cases)

    def evaluate(self, candidates: Sequence[Candidate], suite: Suite, cases: Sequence[Case], stage: str) -> None:
        """Answer every case each candidate lacks: one run per model and set of missing cases."""
        groups: dict[tuple[str, frozenset[str]], list[Candidate]] = {}
        for cand in _unique(candidates):
            lacking = frozenset(case.id for case in cases if self._key(cand, case) not in self.rows)
            if lacking:
                groups.setdefault((model_key(self._model_of(cand)), lacking), []).append(cand)
        for (_, lacking), members in groups.items():
            if self.spend.stopped:
                return
            part = suite.filter(lambda c, wanted=lacking: c.id in wanted)
            results = self.runner(part, {c.name: c.prompt for c in members}, self._model_of(members[0]))
            self._keep(results.df, members, stage)

    def _keep(self, frame: pd.DataFrame, members: list[Candidate], stage: str) -> None:
        self.spend.account(frame)
        self.frames.append(frame.assign(stage=stage))
        by_name = {c.name: c for c in members}
        for row in frame.to_dict("records"):
            if isinstance(row["error_type"], str) and row["error_type"] in NOT_SCORED:
                self.spend.stopped = self.spend.stopped or f"budget reached ({row['error']})"
                continue
            cand = by_name[row["variant"]]
            self.rows[(cand.prompt.content_hash, model_key(self._model_of(cand)), row["case_id"])] = row

    def accuracy(self, candidate: Candidate, cases: Sequence[Case]) -> dict[str, Any]:
        """`accuracy_row` (the one definition of accuracy) of the candidate's answers to these cases."""
        got = [self.rows[k] for case in cases if (k := self._key(candidate, case)) in self.rows]
        if not got:
            return {"n": 0, "passed": 0, "accuracy": math.nan, "ci_low": math.nan, "ci_high": math.nan}
        return accuracy_row(pd.DataFrame(got, columns=["passed", "case_id", "error_type"]))

    def failures(self, candidate: Candidate, cases: Sequence[Case]) -> list[dict]:
        """The candidate's rows that did not pass (input, expected, output, reason), for a proposer."""
        rows = [self.rows.get(self._key(candidate, case)) for case in cases]
        return [{k: r.get(k) for k in ("case_id", "input", "expected", "output", "reason")}
                for r in rows if r is not None and not _passed(r.get("passed"))]


def _passed(value: Any) -> bool:
    """A verdict that is a pass (NA and None are not)."""
    return value is not None and value is not pd.NA and bool(value)


def _unique(candidates: Sequence[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    out = []
    for cand in candidates:
        if cand.name not in seen:
            seen.add(cand.name)
            out.append(cand)
    return out


def rung_sizes(n_candidates: int, n_cases: int, eta: int, min_cases: int) -> list[int]:
    """Cases per rung of successive halving: the last rung is every search case; each earlier one 1/eta of the
    next, never below ``min_cases`` (nor above every case). One rung when there is one candidate."""
    rungs = 1 if n_candidates <= 1 else 1 + math.ceil(math.log(n_candidates, eta) - 1e-9)
    sizes = [min(n_cases, max(min_cases, math.ceil(n_cases / eta ** (rungs - 1 - r)))) for r in range(rungs)]
    return sorted(set(sizes))


@dataclass
class RaceStep:
    """One rung of one stage: who ran on how many cases, with what search accuracy, who went on (``kept``) and
    who ranked first (``best``; the last rung's best is the stage's winner)."""

    stage: str
    rung: int
    cases: int
    candidate: Candidate
    accuracy: float
    passed: int
    n: int
    kept: bool
    best: bool = False


def race(stage: str, candidates: Sequence[Candidate], incumbent: Candidate, suite: Suite, board: Scoreboard, *,
         eta: int, min_cases: int, worst_usd: Callable[[Sequence[Candidate], Sequence[Case]], Any] | None = None,
         on_rung: Callable[[list[RaceStep]], None] | None = None) -> tuple[Candidate, list[RaceStep]]:
    """Successive halving of ``candidates`` (the incumbent among them) on ``suite``'s cases, in suite order.

    Returns the stage's winner — the best at the last rung run (the incumbent when no rung could be run) — and
    every rung's steps. A rung the budget cannot pay for is not run: the race stops with the best so far.
    """
    field_ = _unique([incumbent, *candidates])
    cases = list(suite.cases)
    steps: list[RaceStep] = []
    best = incumbent
    for rung, size in enumerate(rung_sizes(len(field_), len(cases), eta, min_cases)):
        subset = cases[:size]
        needed = board.missing(field_, subset)
        worst, reserve = worst_usd(field_, subset) if worst_usd is not None else (None, Decimal(0))
        if not board.spend.affords(needed, worst, reserve):
            board.spend.stopped = board.spend.stopped or (
                f"budget: {stage} rung {rung + 1} needs {needed} calls, {_left(board.spend)} left after the "
                "confirmation's reserve")
            break
        board.evaluate(field_, suite, subset, stage)
        ranked = _ranked(field_, incumbent, subset, board)
        keep = max(1, math.ceil(len(field_) / eta))
        # the incumbent always goes on (its answers are usually on the board already): a move must beat it on
        # every search case, not only outlast it on a few noisy ones
        survivors = ranked[:keep] + [c for c in ranked[keep:] if c.name == incumbent.name]
        kept = {c.name for c in survivors}
        rows = [RaceStep(stage, rung, size, c, float(a["accuracy"]), int(a["passed"]), int(a["n"]), c.name in kept,
                         c.name == ranked[0].name) for c in field_ for a in [board.accuracy(c, subset)]]
        steps += rows
        best = ranked[0]
        if on_rung is not None:
            on_rung(rows)
        if board.spend.stopped or size == len(cases):
            break
        field_ = survivors
    return best, steps


def _left(spend: Spend) -> str:
    left = spend.remaining_calls()
    return "unlimited calls" if left == math.inf else f"{int(left)} calls"


def _ranked(field_: list[Candidate], incumbent: Candidate, cases: Sequence[Case], board: Scoreboard) -> list[Candidate]:
    """Best first: higher accuracy; ties to the incumbent, then to the earlier candidate. A candidate with no
    answer (the budget stopped its run) ranks last."""
    def key(item: tuple[int, Candidate]) -> tuple:
        position, cand = item
        acc = board.accuracy(cand, cases)["accuracy"]
        acc = -1.0 if acc is None or (isinstance(acc, float) and math.isnan(acc)) else float(acc)
        return (-acc, cand.name != incumbent.name, position)

    return [cand for _, cand in sorted(enumerate(field_), key=key)]
