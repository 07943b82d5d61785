"""Run a suite against prompt variants and models: `await arun(...)` in a notebook cell, `run(...)` anywhere.

For every case × variant × model × repeat the runner renders the request, then (per provider, with bounded
concurrency) looks it up in the response cache or calls the provider with a timeout and retries, falls back
along ``fallbacks`` when a model fails for good, prices the call, and scores the answer. A failed call is a
row with ``error_type`` and ``error``, never an exception; the run raises only past ``max_error_rate``
(and the exception carries the results, so nothing is lost).

Calls are ordered by model, then variant, then repeat, then case, so calls that share a prompt prefix run
back to back — that is what lets the local model reuse its evaluated prefix.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._sync import on_interrupt, run_sync
from .._version import __version__
from ..authoring._prompt import Prompt
from ..authoring._suite import Suite
from ..errors import RunArgumentError, RunFailed
from ..providers import split_model_id
from ..providers._base import Completion, Provider, Request
from ..providers._prices import price_call, prices
from ._cache import ResponseCache, cache_key
from ._cost import Budget, estimate_frame, request_tokens, worst_case_cost
from ._plan import (  # noqa: F401 - Job, ProviderPool, as_variants and plan are read from here too
    Job,
    ModelConfig,
    ModelSpec,
    ProviderPool,
    Variants,
    as_model_list,
    as_variants,
    check_suite,
    models_meta,
    plan,
)
from ._retry import RetryPolicy, call_with_retries
from ._rowsink import RowMaker, RowSink, make_row
from ._runstore import RunRecorder, start_recording, suite_provenance
from ._transforms import Transform, as_transform

if TYPE_CHECKING:
    from ._results import Results
    from ._scoring import Scorer

@dataclass(frozen=True)
class RunOptions:
    """Everything that shapes a run besides the suite, the variants and the models (see `run`)."""

    repeats: int = 1
    scorer: Scorer | None = None
    concurrency: int | Mapping[str, int] | None = None
    timeout_s: float = 60.0  # per attempt, from when the rate limiter admits the call (waiting in line is free)
    retries: int = 4
    backoff: bool = True
    fallbacks: tuple[ModelSpec, ...] = ()
    cache: bool | ResponseCache = True
    budget: Budget | None = None
    max_error_rate: float = 0.5
    progress: bool = True
    seed: int = 0
    providers: Mapping[str, Provider] | None = None
    params: Mapping[str, Any] | None = None
    transform: Callable[[str], str] | Transform | None = None
    record: bool = True  # keep the run in the run store (`promptlab.evaluation._runstore`)


@dataclass
class Outcome:
    """What happened to one job."""

    job: Job
    completion: Completion | None = None
    error_type: str | None = None
    error: str | None = None
    attempts: int = 0
    cached: bool = False
    answered_by: str | None = None
    cost_usd: Decimal | None = None


# ---- calling ---------------------------------------------------------------------------------------------
class _Run:
    """The mutable state of one run in progress: providers, cache, budget, counters and the progress bar."""

    def __init__(self, options: RunOptions, pool: ProviderPool, total: int, recorder: RunRecorder | None = None):
        self.options = options
        self.recorder = recorder
        self.pool = pool
        self.cache = _open_cache(options.cache)
        self.hits = self.misses = self.errors = self.done = 0
        self.answered = 0  # jobs with an answer (cached when the cache is on): what an interruption keeps
        self.served: set[str] = set()  # the model ids that answered (as the providers report them)
        self._identities: dict[str, dict] = {}
        self.spent = Decimal(0)
        self.cost_unknown = False  # some answered call had no price: the running total is a lower bound
        self.stopped_reason: str | None = None
        self.total = total
        self.bar = _progress_bar(total, options.progress)
        self.rng = random.Random(options.seed)
        self.retry = RetryPolicy(retries=options.retries, timeout_s=options.timeout_s, wait=options.backoff)

    async def execute(self, job: Job) -> Outcome:
        """Run one job through its model and then its fallbacks, recording who answered."""
        chain = [job.model_id] + [self.pool.resolve(spec) for spec in self.options.fallbacks]
        outcome = Outcome(job)
        planned = job.request
        for model_id in chain:
            bare = split_model_id(model_id)[1]  # the planned request already names its own model: no copy then
            request = planned if planned.model == bare else replace(planned, model=bare)
            outcome = await self._call(job, model_id, request)
            if outcome.completion is not None:
                break
        self._account(outcome)
        return outcome

    def identity(self, provider: Provider) -> dict:
        """The provider's cache identity, asked once per run (it does not change while the run lasts)."""
        if provider.name not in self._identities:
            self._identities[provider.name] = provider.cache_identity()
        return self._identities[provider.name]

    async def _call(self, job: Job, model_id: str, request: Request) -> Outcome:
        provider = self.pool.for_model(model_id)
        identity = self.identity(provider)
        key = cache_key(identity, request, job.repeat)
        if self.cache is not None:
            if (hit := self.cache.get(key)) is not None:
                self.hits += 1
                return Outcome(job, hit, cached=True, answered_by=model_id, cost_usd=_price(model_id, hit))
            self.misses += 1
        reservation = await self._reserve(model_id, request)
        if reservation is None:
            return Outcome(job, error_type="budget_exceeded",
                           error=f"not called: the budget of {self.options.budget.usd} USD would be exceeded")
        outcome = await self._call_with_retries(job, provider, model_id, request)
        if self.options.budget is not None:
            self.options.budget.settle(reservation, outcome.cost_usd)
        if outcome.completion is not None and self.cache is not None:
            # queued: committed with the others of the next 50 ms in one transaction (`flush` at the end)
            self.cache.put_soon(key, provider.name, outcome.completion, endpoint=identity.get("endpoint"),
                                model_asked=model_id)
        return outcome

    async def _reserve(self, model_id: str, request: Request) -> Decimal | None:
        """Hold the call's worst-case cost; while other calls are in flight, wait for them to settle (their
        actual cost is usually far below the worst case) before giving up on the budget."""
        budget = self.options.budget
        if budget is None:
            return Decimal(0)
        worst = worst_case_cost(model_id, request)
        while worst is not None and self.stopped_reason is None:
            if budget.reserve(worst):
                return worst
            if budget.reserved == 0:
                break
            await asyncio.sleep(0.005)
        self.stopped_reason = self.stopped_reason or f"budget of {budget.usd} USD reached"
        return None

    async def _call_with_retries(self, job: Job, provider: Provider, model_id: str, request: Request) -> Outcome:
        result = await call_with_retries(provider, request, self.retry, self.rng)
        if result.completion is not None:
            return Outcome(job, result.completion, attempts=result.attempts, answered_by=model_id,
                           cost_usd=_price(model_id, result.completion))
        error = result.last_error
        return Outcome(job, error_type=error.error_type, error=str(error), attempts=result.attempts)

    def _account(self, outcome: Outcome) -> None:
        self.done += 1
        self.errors += outcome.completion is None
        if outcome.completion is not None:
            self.answered += 1
            self.served.add(outcome.completion.model)
        if self.recorder is not None:  # the journal: a crash keeps the calls made so far
            self.recorder.record(outcome)
        if not outcome.cached and outcome.completion is not None:  # "cost so far" is what this run paid
            if outcome.cost_usd is None:
                self.cost_unknown = True
            else:
                self.spent += outcome.cost_usd
        if self.bar is not None:  # postfix first, so the line update(1) draws includes this call
            cost = f"{self.spent:.4f}" + ("+?" if self.cost_unknown else "")  # unknown is never shown as 0
            self.bar.set_postfix(errors=self.errors, cost_usd=cost, refresh=False)
            self.bar.update(1)

    def too_many_errors(self) -> bool:
        """True once enough calls have finished to tell that the error rate is past the limit."""
        enough = self.done >= min(20, self.total)
        return enough and self.done > 0 and self.errors / self.done > self.options.max_error_rate

    def close(self) -> None:
        """The calls are over: commit the answers still queued for the cache, close the progress bar."""
        if self.cache is not None:
            self.cache.flush()
        if self.bar is not None:
            self.bar.close()

    def interrupted(self) -> RunInterrupted:
        """The exception that reports this run stopped part-way (Ctrl-C, a kernel interrupt); the answers it
        counts are committed to the cache first."""
        path = self.cache.path if self.cache is not None else None
        if self.cache is not None:
            self.cache.flush()
        return RunInterrupted(self.answered, self.total, path)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a Jupyter interrupt) stopped a run part-way. It is a `KeyboardInterrupt`, so it stops
    whatever called the run; it tells how much was done and where that is kept.

    Attributes:
        done: calls that had an answer when the run stopped (in the cache, when it is on).
        total: calls the run had planned.
        cache_path: the response cache holding the answers, or None when the cache was off.
    """

    def __init__(self, done: int, total: int, cache_path: Path | None):
        self.done, self.total, self.cache_path = done, total, cache_path
        super().__init__(self.summary("run it again to resume"))

    def summary(self, how_to_resume: str) -> str:
        """One line: ``N of M calls done and cached; <how_to_resume>`` (or why a rerun repeats them)."""
        if self.cache_path is None:
            return (f"{self.done} of {self.total} calls done; the cache was off, so a new run makes every "
                    "call again")
        return f"{self.done} of {self.total} calls done and cached; {how_to_resume}"


def _price(model_id: str, completion: Completion) -> Decimal | None:
    # Price by the model that answered when the table knows it (a dated id), else by the id asked for.
    served = completion.model if ":" in completion.model else f"{split_model_id(model_id)[0]}:{completion.model}"
    cost = price_call(served, completion.input_tokens, completion.output_tokens)
    return cost if cost is not None else price_call(model_id, completion.input_tokens, completion.output_tokens)


def _open_cache(cache: bool | ResponseCache) -> ResponseCache | None:
    if isinstance(cache, ResponseCache):
        return cache
    return ResponseCache() if cache else None


def _progress_bar(total: int, show: bool) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="promptlab", unit="call", leave=True)


async def _drain(state: _Run, jobs: list[Job], rows: RowMaker, sink: RowSink) -> None:
    """Run jobs with a worker pool per provider (bounded concurrency, jobs taken in plan order); each finished
    call becomes its scored row in ``sink`` at once, and the jobs never run (the run stopped) rows saying so."""
    done = bytearray(len(jobs))  # by plan position: which jobs have a row
    queues: dict[str, deque[Job]] = {}
    for job in jobs:
        queues.setdefault(split_model_id(job.model_id)[0], deque()).append(job)

    async def worker(queue: deque[Job]) -> None:
        while queue and state.stopped_reason is None:
            job = queue.popleft()
            outcome = await state.execute(job)
            sink.add(await rows.row(outcome))  # the call's objects go now: only its row is kept
            done[job.order] = 1
            if job.order % _YIELD_EVERY == 0:
                # a provider that answers without suspending (a fake, a custom one) would otherwise keep the loop
                # from its timers: the cache's commits, the calls' cancelled timeouts (memory), the progress bar
                await asyncio.sleep(0)
            if state.too_many_errors():
                state.stopped_reason = f"error rate past max_error_rate={state.options.max_error_rate}"

    workers = [worker(queue) for name, queue in queues.items()
               for _ in range(min(len(queue), _concurrency(state, name)))]
    await asyncio.gather(*workers)
    for job in jobs:
        if not done[job.order]:
            sink.add(make_row(_not_run(job, state.stopped_reason), None, None))


_YIELD_EVERY = 32  # jobs between a worker's explicit yields to the event loop (see `_drain`)


def _concurrency(state: _Run, provider_name: str) -> int:
    """Workers for one provider: the ``concurrency`` option, else the provider's default. The local model is
    one instance per process, so it always gets one worker."""
    if provider_name == "local":
        return 1
    wanted = state.options.concurrency
    if isinstance(wanted, Mapping):
        wanted = wanted.get(provider_name)
    return max(1, int(wanted)) if wanted else state.pool.instances[provider_name].max_concurrency


def _not_run(job: Job, reason: str | None) -> Outcome:
    error_type = "budget_exceeded" if reason and reason.startswith("budget") else "not_run"
    return Outcome(job, error_type=error_type, error=f"not called: {reason}")


# ---- assembling -------------------------------------------------------------------------------------------
def _metadata(run_id: str, prepared: _Prepared, state: _Run, started: dt.datetime) -> dict:
    opts = prepared.opts
    variants = {job.variant: job.prompt for job in prepared.jobs}  # named as they ran (with their params)
    return {
        "run_id": run_id, "promptlab_version": __version__, "seed": state.options.seed,
        # the label set travels with the results (classification metrics read the answers against it); the rows
        # carry the case ids. Worked out before the calls: hashing a big suite's cases builds their text, which
        # should not happen at the end, beside the results frame
        "suite": {key: value for key, value in prepared.provenance.items() if key != "case_ids"},
        "started_at": started.isoformat(), "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        "prompts": {name: {"ref": p.ref, "hash": p.content_hash, "model_pinned": p.model}
                    for name, p in variants.items()},
        "models_asked": sorted({job.model_id for job in prepared.jobs}), "models_served": sorted(state.served),
        "repeats": state.options.repeats, "cache": _cache_meta(state),
        "stopped": state.stopped_reason,
        "budget_usd": str(state.options.budget.usd) if state.options.budget else None,
        "params": dict(opts.params) if opts.params else None, "models": models_meta(prepared.models),
        "transform": prepared.transform.description if prepared.transform else None,
    }


def _cache_meta(state: _Run) -> dict:
    """Cache lookups of the run: ``hits`` (answered from the cache), ``misses`` (sent to a model; a call
    with fallbacks may miss once per model), whether the cache was on, and its file."""
    return {"hits": state.hits, "misses": state.misses, "enabled": state.cache is not None,
            "path": str(state.cache.path) if state.cache is not None else None}


# ---- the public faces ------------------------------------------------------------------------------------
async def arun(suite: Suite, variants: Variants, model: ModelSpec | Iterable[ModelSpec] | None = None,
               **options: Any) -> Results:
    """Run ``suite`` against ``variants`` on ``model`` (the async engine; ``await`` it in a notebook).

    Args:
        suite: the cases.
        variants: one `Prompt`, a list (named A, B, …) or a dict ``{name: Prompt}``.
        model: a model id (``"local:gemma-3-270m"``), a `Provider`, a `ModelConfig` (a model with its own
            params and label), or a list of them. None runs each
            prompt on the model it pins; naming a model runs every variant on it — an explicit choice that
            the results record (``model_pinned`` beside ``model`` and ``model_served``).
        **options: see `RunOptions`: ``repeats``, ``scorer``, ``concurrency``, ``timeout_s``, ``retries``,
            ``backoff``, ``fallbacks``, ``cache``, ``budget``, ``max_error_rate``, ``progress``, ``seed``,
            ``providers`` (``{"openai": OpenAIProvider(base_url=...)}``: your instances serve string ids),
            ``params`` (a grid of request params: ``{"temperature": [0, 0.4], "max_tokens": 64}``; see
            `promptlab.evaluation._plan`) and ``transform`` (applied to each answer before scoring: a
            `Transform`, a function ``str -> str``, or ``{regex|json_path|python: ...}``).

    Returns:
        `Results` with one row per case × variant × model × repeat.

    Raises:
        RunError: past ``max_error_rate`` (its ``results`` attribute holds every row), or on bad arguments.
    """
    return await _execute(_prepare(suite, variants, model, options))


def run(suite: Suite, variants: Variants, model: ModelSpec | Iterable[ModelSpec] | None = None,
        **options: Any) -> Results:
    """The synchronous face of `arun`; works in scripts and inside Jupyter (no nest_asyncio needed)."""
    # planned here, before the event loop starts: building the providers imports their SDKs (hundreds of ms),
    # which must not stall the loop once calls are in flight
    return run_sync(_execute(_prepare(suite, variants, model, options)))


@dataclass(frozen=True)
class _Prepared:
    """A checked, planned run: its suite, options, variants, providers and jobs."""

    suite: Suite
    opts: RunOptions
    named: dict[str, Prompt]
    pool: ProviderPool
    jobs: list[Job]
    models: list
    transform: Transform | None
    provenance: dict  # the suite as the run store and the results' meta record it (`suite_provenance`)


def _prepare(suite: Suite, variants: Variants, model: ModelSpec | Iterable[ModelSpec] | None,
             options: dict[str, Any]) -> _Prepared:
    """Check the arguments, build the providers and plan every call (synchronous: no call is made)."""
    opts = _options(options)
    check_suite(suite)
    named = as_variants(variants)
    transform = as_transform(opts.transform)
    pool = ProviderPool(dict(opts.providers or {}))
    models = as_model_list(model)
    jobs = plan(suite, named, models, opts.repeats, pool, opts.params)
    _check_budget_priced(jobs, opts)
    return _Prepared(suite, opts, named, pool, jobs, models, transform, suite_provenance(suite))


async def _execute(prepared: _Prepared) -> Results:
    """Make the planned calls, scoring each answer as it comes, and build the `Results`."""
    suite, opts, pool, jobs = prepared.suite, prepared.opts, prepared.pool, prepared.jobs
    run_id, started = uuid.uuid4().hex[:12], dt.datetime.now(dt.UTC)
    state = _Run(opts, pool, len(jobs), start_recording(run_id, prepared, started))
    on_interrupt(state.interrupted)
    sink = RowSink(run_id)
    try:
        rows = RowMaker(suite, opts.scorer, prepared.transform)
        try:
            await _drain(state, jobs, rows, sink)
        finally:
            state.close()
            await pool.aclose()
            await rows.aclose()  # the scorers' connections (judges)
        from ._results import Results  # pandas loads after the calls, not before the first one

        results = Results(sink.frame(), _metadata(run_id, prepared, state, started))
    except BaseException as exc:  # Ctrl-C, a cancelled task, a bug: the run is kept, marked as stopped
        sink.discard()
        if state.recorder is not None:
            state.recorder.stop(state, exc)
        raise
    if state.recorder is not None:
        state.recorder.finish(results, state)
    _raise_past_error_rate(results, state)
    return results


def _options(options: dict[str, Any]) -> RunOptions:
    unknown = set(options) - set(RunOptions.__dataclass_fields__)
    if unknown:
        known = sorted(RunOptions.__dataclass_fields__)
        raise RunArgumentError(f"unknown run option(s) {sorted(unknown)!r}. Known: {known}.")
    if "fallbacks" in options:
        options = {**options, "fallbacks": tuple(options["fallbacks"])}
    opts = RunOptions(**options)
    if opts.repeats < 1:
        raise RunArgumentError(f"repeats must be >= 1, got {opts.repeats!r}.")
    if not 0 <= opts.max_error_rate <= 1:
        raise RunArgumentError(f"max_error_rate must be within [0, 1], got {opts.max_error_rate!r}.")
    return opts


def _check_budget_priced(jobs: list[Job], opts: RunOptions) -> None:
    if opts.budget is None:
        return
    # Only the price matters here; each call's tokens are counted once, when its cost is reserved.
    unpriced = sorted({j.model_id for j in jobs if prices().get(j.model_id) is None})
    if unpriced:
        raise RunArgumentError(f"a budget needs prices, and {unpriced!r} have none. Add them with "
                       "pl.evaluation.set_price(model_id, input_per_1m, output_per_1m), or run without budget=.")


def _raise_past_error_rate(results: Results, state: _Run) -> None:
    # calls that failed: not the ones a budget skipped, nor answers a transform could not read (those are the
    # model's answers, counted as failures by accuracy, not broken calls)
    failed = results.df["error_type"].notna() & ~results.df["error_type"].isin(["budget_exceeded", "transform_error"])
    rate = failed.mean() if len(results.df) else 0.0
    if rate > state.options.max_error_rate:
        first = results.df.loc[failed, ["case_id", "model", "error_type", "error"]].head(3).to_dict("records")
        raise RunFailed(f"{failed.sum()} of {len(results.df)} calls failed ({rate:.0%}, above "
                        f"max_error_rate={state.options.max_error_rate}). First errors: {first!r}. "
                        "The rows are in this exception's `results` attribute.", results)


def estimate(suite: Suite, variants: Variants, models: ModelSpec | Iterable[ModelSpec] | None = None,
             repeats: int = 1, params: Mapping[str, Any] | None = None) -> Any:
    """What a run would cost, before any call: per variant × model, calls, input tokens (counted by real
    tokenizers where available), the output-token ceiling (``max_tokens``) and the worst-case cost in USD
    (NA for an unpriced model)."""
    check_suite(suite)
    pool = ProviderPool(connect=False)
    jobs = plan(suite, as_variants(variants), as_model_list(models), repeats, pool, params)
    rows = []
    for job in jobs:
        request = job.request
        tokens, method = request_tokens(job.model_id, request)
        cost = price_call(job.model_id, tokens, request.max_tokens)
        rows.append({"variant": job.variant, "model": job.model_id, "input_tokens": tokens,
                     "output_tokens_max": request.max_tokens, "tokenizer": method,
                     "cost_usd_max": float(cost) if cost is not None else float("nan")})
    return estimate_frame(rows)



def evaluate_prompt(prompt: Prompt, suite: Suite, model: ModelSpec | None = None, **options: Any) -> Any:
    """The article's ``evaluate_prompt``: run one prompt on a suite and return an `EvalResult`.

    Accuracy counts a call that failed as not correct (the article's definition: correct / total); the
    `Results` behind it (``.results``) keeps failed calls apart, with intervals.
    """
    from ._results import EvalResult

    return EvalResult(run(suite, {"A": prompt}, model, **options))
