"""`optimize_prompt`: search prompt variants on part of a suite, then prove the winner on cases the search never saw.

The flow:

1. **Split** the suite, seeded and stratified by label and category (`promptlab.optimize._search_split`): a
   training pool (the suite's train part, or ``pool=``), search cases and confirmation cases. The pool gets the
   prompt's own few-shot examples too, so the search may keep, drop or reorder them.
2. **Stages** of moves, in order (``moves=``): each stage generates candidates from the current best (the
   *incumbent*) with the generators of `promptlab.optimize._fewshot`, `_instructions` and `_moves`, and races them
   with the incumbent by successive halving on the search cases (`promptlab.optimize._search_race`). The stage's
   winner is the next stage's incumbent, so moves compose (few-shot selection on top of the best instruction).
3. **Confirm** once: the winner and the starting prompt answer the confirmation cases, and a paired test
   (`promptlab.stats.compare`: McNemar's mid-p, Newcombe's paired interval) says whether the gain is real. The
   search score is optimistic — it is the maximum over many candidates on the same cases — and is reported as such.

A budget in calls (``budget=100`` or ``max_calls=``) and/or dollars (``budget=pl.Budget(usd=...)``) covers the
whole search; the confirmation's calls are reserved before the search starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..authoring._prompt import Prompt
from ..authoring._suite import Case, Suite
from ..errors import ArgumentError
from ..evaluation._cache import ResponseCache
from ..evaluation._cost import Budget
from ._candidates import Candidate, start_candidate
from ._search_race import RaceStep, Scoreboard, Spend, model_key, race
from ._search_split import SearchSplit, split_suite, with_prompt_examples

MOVES = ("instruction", "proposer", "compression", "fewshot", "routing")
"""Stage names ``moves=`` accepts (a stage may also be a function ``(incumbent, context) -> [Candidate]``)."""
DEFAULT_MOVES = ("instruction", "proposer", "fewshot", "compression")
"""The default stages: ``proposer`` runs only with a ``proposer_model``, ``routing`` only with ``models=``."""


@dataclass
class SearchContext:
    """What a stage's generator may use: the pool, the labels, the model, the seed and the search so far."""

    pool: Suite
    labels: tuple[str, ...] | None
    model: Any
    seed: int
    board: Scoreboard
    search: Suite
    proposer_model: Any = None
    models: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)

    def failures(self, candidate: Candidate) -> list[dict]:
        """The candidate's failed search cases so far (what an OPRO/APE proposer is fed)."""
        return self.board.failures(candidate, list(self.search.cases))

    def demos(self, candidate: Candidate, max_cases: int | None = None) -> Suite | None:
        """Pool cases the candidate answers correctly (bootstrapped demonstrations), the calls counted in the
        budget; None when the budget cannot pay for them or none was answered correctly."""
        from ._fewshot import bootstrap_demos

        asked = min(len(self.pool), max_cases or len(self.pool))
        if not self.board.spend.affords(asked):
            return None
        options = {k: v for k, v in self.board.run_options().items() if k != "seed"}  # its own seed draws the sample
        boot = bootstrap_demos(candidate, self.pool, candidate.model or self.model, max_cases=max_cases,
                               seed=self.seed, **options)
        self.board.spend.account(boot.results.df)
        return boot.demos if len(boot.demos) else None  # none answered right: the bootstrap strategy is skipped


Stage = Callable[[Candidate, SearchContext], list[Candidate]]


def _stage_instruction(base: Candidate, ctx: SearchContext) -> list[Candidate]:
    from ._instructions import instruction_candidates

    return instruction_candidates(base, ctx.labels, **ctx.options.get("instruction", {}))


def _stage_proposer(base: Candidate, ctx: SearchContext) -> list[Candidate]:
    if ctx.proposer_model is None:
        return []
    from ._instructions import propose_instructions

    cases = list(ctx.search.cases)
    missing = ctx.board.missing([base], cases)
    if missing and ctx.board.spend.affords(missing):  # the proposer reads the base's failures on the search cases
        ctx.board.evaluate([base], ctx.search, cases, "proposer")
    shared = {k: v for k, v in ctx.board.run_options().items() if k in ("cache", "providers", "timeout_s", "retries")}
    scored = ctx.board.accuracy(base, list(ctx.search.cases))
    history = [] if not scored["n"] else [(base.prompt.system, float(scored["accuracy"]))]
    options = {"seed": ctx.seed, "history": history, **shared, **ctx.options.get("proposer", {})}
    return propose_instructions(base, ctx.failures(base), ctx.proposer_model, **options)


def _stage_compression(base: Candidate, ctx: SearchContext) -> list[Candidate]:
    from ._moves import compression_candidates

    return compression_candidates(base, **ctx.options.get("compression", {}))


def _stage_fewshot(base: Candidate, ctx: SearchContext) -> list[Candidate]:
    from ._fewshot import fewshot_candidates

    options = {"seed": ctx.seed, **ctx.options.get("fewshot", {})}
    max_demo_cases = options.pop("max_demo_cases", None)
    if "bootstrap" in options.get("strategies", ("bootstrap",)) and "demos" not in options:
        options["demos"] = ctx.demos(base, max_demo_cases)
    return fewshot_candidates(base, ctx.pool, **options)


def _stage_routing(base: Candidate, ctx: SearchContext) -> list[Candidate]:
    if not ctx.models:
        return []
    from ._moves import routing_candidates

    return routing_candidates(base, list(ctx.models), **ctx.options.get("routing", {}))


STAGES: dict[str, Stage] = {"instruction": _stage_instruction, "proposer": _stage_proposer,
                            "compression": _stage_compression, "fewshot": _stage_fewshot,
                            "routing": _stage_routing}


def _stages(moves: Sequence[str | Stage]) -> list[tuple[str, Stage]]:
    out = []
    for move in moves:
        if callable(move):
            out.append((getattr(move, "__name__", "custom").removeprefix("_stage_"), move))
        elif move in STAGES:
            out.append((move, STAGES[move]))
        else:
            raise ArgumentError(f"unknown search move {move!r}; use any of {list(MOVES)!r}, or a function "
                                "(incumbent, context) -> list[Candidate].")
    return out


def _spend(budget: Budget | int | float | str | Decimal | None, max_calls: int | None) -> Spend:
    """``budget``: a `Budget` (dollars) or a whole number of calls; ``max_calls`` caps calls besides a Budget."""
    if isinstance(budget, Budget):
        return Spend(max_calls=max_calls, budget=budget)
    if budget is None:
        return Spend(max_calls=max_calls)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ArgumentError(f"budget={budget!r}: give a number of calls (a whole number >= 1, e.g. budget=400) "
                            "or dollars as pl.Budget(usd=2.0).")
    return Spend(max_calls=min(budget, max_calls) if max_calls is not None else budget)


def _reserve(spend: Spend, split: SearchSplit) -> None:
    """Hold back the confirmation's calls: the start and the winner on every confirmation case."""
    spend.reserve_calls = 2 * len(split.confirm)
    if spend.max_calls is not None and spend.max_calls < spend.reserve_calls + len(split.search):
        raise ArgumentError(f"a budget of {spend.max_calls} calls cannot pay for the confirmation "
                            f"({spend.reserve_calls} calls: the start and the winner on {len(split.confirm)} cases) "
                            f"and one pass of the start over the {len(split.search)} search cases; give at least "
                            f"{spend.reserve_calls + len(split.search)} calls (a useful search needs several times "
                            "that).")


def _worst_usd(spend: Spend, model: Any, confirm: Suite, start: Candidate) -> Callable | None:
    """With a dollar budget: a function giving a rung's worst-case cost and the confirmation's reserve."""
    if spend.budget is None:
        return None
    from ..evaluation._runner import estimate

    def cost(candidates: Sequence[Candidate], suite: Suite) -> Decimal:
        total = Decimal(0)
        for cand in candidates:
            frame = estimate(suite, {cand.name: cand.prompt}, cand.model or model)
            value = frame["cost_usd_max"].sum()
            total += Decimal(0) if math.isnan(value) else Decimal(str(value))
        return total

    def worst(candidates: Sequence[Candidate], cases: Sequence[Case]) -> tuple[Decimal, Decimal]:
        dearest = max((cost([c], confirm) for c in candidates), default=Decimal(0))
        rung = cost(candidates, _suite_of(cases, confirm)) if cases else Decimal(0)
        return rung, cost([start], confirm) + dearest

    return worst


def _check_usd_reserve(spend: Spend, worst: Callable | None, start: Candidate) -> None:
    """Refuse a dollar budget that cannot pay for confirming the start against itself (the least a winner costs)."""
    if worst is None or spend.budget is None:
        return
    _, reserve = worst([start], [])
    if reserve > spend.budget.remaining:
        raise ArgumentError(f"a budget of {spend.budget.usd} USD cannot pay for the confirmation: the start and a "
                            f"winner on the confirmation cases may cost up to {reserve:.4f} USD (worst case: "
                            "max_tokens of output per call). Raise the budget, or lower split= to confirm on fewer "
                            "cases.")


def _suite_of(cases: Sequence[Case], like: Suite) -> Suite:
    return Suite(like.name, cases, labels=like.labels, description=like.description)


def _runner(cache: ResponseCache | bool, spend: Spend, seed: int, run_options: dict[str, Any]) -> Callable:
    """`promptlab.evaluation.run` with the search's options bound; ``run_part.options()`` gives them."""
    from ..evaluation._runner import run

    bound = {"cache": cache, "budget": spend.budget, "progress": False, "seed": seed, **run_options}

    def run_part(suite: Suite, variants: dict[str, Prompt], model_: Any, *, record: bool = False) -> Any:
        return run(suite, variants, model_, record=record, **bound)

    run_part.options = lambda: {**bound, "record": False}  # type: ignore[attr-defined]
    return run_part


def _progress(progress: bool | Callable[[dict], None], spend: Spend) -> Callable[[list[RaceStep]], None] | None:
    """One line per rung: stage, rung, cases, the best so far (its search score, optimistic) and calls spent."""
    if progress is False or progress is None:
        return None
    best: dict[str, Any] = {}

    def report(steps: list[RaceStep]) -> None:
        top = max(steps, key=lambda s: (s.accuracy if not math.isnan(s.accuracy) else -1))
        best.update(stage=top.stage, candidate=top.candidate.name, accuracy=top.accuracy, cases=top.cases)
        event = {"stage": steps[0].stage, "rung": steps[0].rung + 1, "candidates": len(steps),
                 "cases": steps[0].cases, "best": dict(best), "calls": spend.calls, "cached": spend.cached,
                 "max_calls": spend.max_calls}
        if callable(progress):
            progress(event)
            return
        cap = f"/{spend.max_calls}" if spend.max_calls is not None else ""
        print(f"[search] {event['stage']} rung {event['rung']}: {event['candidates']} candidates × "
              f"{event['cases']} cases · best so far {best['candidate']} {best['accuracy']:.0%} on the search "
              f"cases (optimistic) · calls {spend.calls}{cap}, {spend.cached} cached", flush=True)

    return report


def optimize_prompt(prompt: Prompt, suite: Suite, model: Any, *, pool: Suite | str | None = None,
                    split: float = 0.5, pool_share: float = 0.25, seed: int = 0,
                    budget: Budget | int | None = None, max_calls: int | None = None, eta: int = 2,
                    min_cases: int = 4, moves: Sequence[str | Stage] = DEFAULT_MOVES,
                    proposer_model: Any = None, models: Sequence[str] = (), progress: bool | Callable = True,
                    cache: ResponseCache | bool = True, move_options: dict[str, dict] | None = None,
                    **run_options: Any) -> Any:
    """Search variants of ``prompt`` on part of ``suite`` and confirm the winner on cases the search never saw.

    Args:
        prompt: the starting prompt (the hand-written one).
        suite: labelled cases; split into a training pool, search cases and confirmation cases.
        model: the model every candidate runs on (an id such as ``"local:gemma-3-270m"``, or a `Provider`).
        pool: training examples from elsewhere (a `Suite` or a suite file); default: a part of the suite.
        split: the share of the non-pool cases held out for confirmation.
        pool_share: without ``pool``, the share of the suite taken as training pool.
        seed: seeds the split, the generators and the runs.
        budget: a whole number of model calls, or a `Budget` in dollars; covers the search and the confirmation
            (whose calls are reserved first). Cache hits are free. None: no cap.
        max_calls: a cap on calls besides a dollar `Budget`.
        eta: successive halving keeps the best 1/eta of a rung's candidates and gives them eta times the cases.
        min_cases: the fewest cases a candidate is judged on (the first rung).
        moves: the stages, in order: names from `MOVES` or functions ``(incumbent, context) -> [Candidate]``.
        proposer_model: a hosted model that proposes instructions from the failures (the ``proposer`` stage).
        models: other model ids for the ``routing`` stage.
        progress: print one line per rung with the best so far; a function receives a dict per rung instead.
        cache: the response cache shared by every candidate (True: the project's; False: none).
        move_options: per stage, keyword arguments for its generator, e.g. ``{"fewshot": {"ks": (2, 4)}}``.
        **run_options: passed to every run: ``scorer``, ``providers``, ``concurrency``, ``timeout_s`` …

    Returns:
        A `SearchResult`: the winner, the confirmation with its paired test, what was tried and the calls spent.
    """
    from ._search_report import SearchResult

    if not isinstance(prompt, Prompt):
        raise ArgumentError(f"optimize_prompt needs a Prompt to start from, got {type(prompt).__name__}; load one "
                            "with pl.load_prompt(path).")
    if not isinstance(eta, int) or eta < 2:
        raise ArgumentError(f"eta must be a whole number >= 2 (2 halves the candidates each rung), got {eta!r}.")
    stages = _stages(moves)
    spend = _spend(budget, max_calls)
    parts = split_suite(suite, pool=pool, confirm_share=split, pool_share=pool_share, seed=seed)
    _reserve(spend, parts)
    shared = ResponseCache() if cache is True else cache
    board = Scoreboard(_runner(shared, spend, seed, run_options), model, spend)
    start = start_candidate(prompt)
    ctx = SearchContext(with_prompt_examples(parts.pool, prompt), suite.labels, model, seed, board, parts.search,
                        proposer_model, tuple(models), dict(move_options or {}))
    worst = _worst_usd(spend, model, parts.confirm, start)
    _check_usd_reserve(spend, worst, start)
    on_rung = _progress(progress, spend)
    incumbent, steps, tried = start, [], {}
    for name, stage in stages:
        if spend.stopped:
            break
        generated = _distinct(incumbent, stage(incumbent, ctx), model)
        tried[name] = len(generated)
        if not generated:
            continue
        incumbent, raced = race(name, generated, incumbent, parts.search, board, eta=eta, min_cases=min_cases,
                                worst_usd=worst, on_rung=on_rung)
        steps += raced
    confirmation = _confirm(board, start, incumbent, parts.confirm, model)
    return SearchResult(start=start, winner=incumbent, split=parts, steps=steps, generated=tried,
                        search_rows=board.frames, confirmation=confirmation, spend=spend, model=model_key(model),
                        seed=seed, eta=eta)


def _distinct(incumbent: Candidate, generated: list[Candidate], model: Any) -> list[Candidate]:
    """The generated candidates that differ from the incumbent and from each other (prompt and model), each with a
    name of its own (a repeated name gets ``~2``, ``~3`` …: names key the variants of a run)."""
    import dataclasses

    seen = {(incumbent.prompt.content_hash, model_key(incumbent.model or model))}
    names = {incumbent.name}
    out = []
    for cand in generated:
        identity = (cand.prompt.content_hash, model_key(cand.model or model))
        if identity in seen:
            continue
        seen.add(identity)
        name, n = cand.name, 1
        while name in names:
            n += 1
            name = f"{cand.name}~{n}"
        names.add(name)
        out.append(cand if name == cand.name else dataclasses.replace(cand, name=name))
    return out


def _confirm(board: Scoreboard, start: Candidate, winner: Candidate, confirm: Suite, model: Any) -> Any:
    """Run the start and the winner once on the confirmation cases (recorded in the run store) and return the
    `Results` (variants ``start`` and the winner's name)."""
    from ..evaluation._results import Results

    run = board.runner
    arms = [start] if winner.name == start.name else [start, winner]
    by_model: dict[str, list[Candidate]] = {}
    for cand in arms:
        by_model.setdefault(model_key(cand.model or model), []).append(cand)
    parts = []
    for members in by_model.values():
        results = run(confirm, {c.name: c.prompt for c in members}, members[0].model or model, record=True)
        board.spend.account(results.df)
        parts.append(results)
    return parts[0] if len(parts) == 1 else Results.concat(parts)
