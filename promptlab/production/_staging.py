"""Staging a candidate version on live traffic: shadow mode and canary releases.

**Shadow** (`Shadow`): every live request (or a sampled share) is also answered by the candidate, on a
background thread with its own event loop, *after* the live answer is returned. The candidate's answer is
logged with ``arm="shadow"`` and the live call's ``request_id``, and never served; nothing the candidate
does — an exception, a timeout, a render error — reaches the served answer or delays it. `Shadow.compare`
pairs the two answers of each request (McNemar on success, `promptlab.stats._paired.mcnemar`).

**Canary** (`Canary`): a small share of units (``percent``) gets the candidate, chosen by the same sticky
hashing as A/B tests, so a user does not flip between versions. Every ``check_every`` calls the canary is
read like an A/B test (`promptlab.production._experiment.analyze_experiment`, always-valid, so checking often
is safe): when a guardrail (errors, p95 tail, cost) or the success rate is significantly worse than the
stable version, the canary rolls back by itself — all traffic returns to stable — and ``on_rollback`` is
called with the report (for example a registry rollback of the staging alias).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ExperimentError
from ..stats._paired import McNemarResult, mcnemar
from ._abtest import assign_arm, choose_arm
from ._client import Answer, ProductionClient
from ._experiment import ABTestReport, Design, Guardrails, analyze_experiment
from ._monitor import MetricsReport, prompt_metrics
from ._query import EventFilter, run_sql
from ._schema import TABLE

logger = logging.getLogger(__name__)

LIVE, SHADOW, STABLE, CANARY = "live", "shadow", "stable", "canary"


class _LoopThread:
    """A daemon thread running an event loop, for work that must outlive the caller's loop."""

    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def submit(self, coroutine: Any) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


# ---- shadow ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ShadowReport:
    """Live against shadow on the same requests.

    Attributes:
        paired: McNemar on the requests both answered (b: only live succeeded, c: only the shadow did);
            ``effect`` is shadow − live success rate with Newcombe's paired interval.
        metrics: `MetricsReport` per arm (live, shadow) over the whole shadow period.
    """

    paired: McNemarResult
    metrics: MetricsReport

    def __repr__(self) -> str:
        p = self.paired
        return (f"ShadowReport(pairs={p.n}, shadow−live={p.effect:+.3f} [{p.ci_low:+.3f}, {p.ci_high:+.3f}], "
                f"live only={p.b}, shadow only={p.c}, p={p.p_value:.3g})")

    def _repr_html_(self) -> str:
        from .._display import shadow_html

        return shadow_html(self)


class Shadow:
    """Serve the live version; answer the same inputs with a candidate in the background, log it, never serve it.

    Args:
        client: the `ProductionClient` serving live traffic (its log receives the shadow's events too).
        candidate: the candidate `Prompt`.
        provider: the candidate's provider (default: the client's).
        sample_rate: share of requests shadowed (1.0: all).
        experiment: the id the live and shadow events are logged under (default ``shadow:<prompt name>``).
        seed: seed of the sampling draw.
    """

    def __init__(self, client: ProductionClient, candidate: Any, *, provider: Any = None, sample_rate: float = 1.0,
                 experiment: str | None = None, seed: int | None = None):
        if not 0 <= sample_rate <= 1:
            raise ExperimentError(f"sample_rate={sample_rate!r} must be between 0 and 1 (a share of requests).")
        if client.log is None:
            raise ExperimentError("a shadow compares logged events; give the client an EventLog (log=...).")
        self.client, self.candidate, self.sample_rate = client, candidate, sample_rate
        self.experiment = experiment or f"shadow:{client.prompt_name}"
        self._candidate_client = ProductionClient(None, client.prompt_name, provider or client.provider,
                                                  log=client.log, validator=client.validator, policy=client.policy)
        self._rng = random.Random(seed)
        self._loop: _LoopThread | None = None
        self._pending: set[concurrent.futures.Future] = set()
        self._lock = threading.Lock()
        self.shadowed = self.failures = 0

    async def acomplete(self, case_input: str | dict[str, Any], *, unit_id: Any = None) -> Answer:
        """Answer with the live version (logged as ``live``) and start the candidate in the background."""
        request_id = uuid.uuid4().hex
        answer = await self.client.acall(self.client.resolve(), case_input, unit_id=unit_id,
                                         experiment=self.experiment, arm=LIVE, request_id=request_id)
        self._launch(case_input, unit_id, request_id)
        return answer

    def complete(self, case_input: str | dict[str, Any], *, unit_id: Any = None) -> Answer:
        """The sync face of `acomplete`."""
        from .._sync import run_sync

        return run_sync(self.acomplete(case_input, unit_id=unit_id))

    def _launch(self, case_input: Any, unit_id: Any, request_id: str) -> None:
        try:
            if self._rng.random() >= self.sample_rate:
                return
            with self._lock:
                if self._loop is None:
                    self._loop = _LoopThread(f"promptlab-shadow-{self.experiment}")
                future = self._loop.submit(self._run(case_input, unit_id, request_id))
                self._pending.add(future)
                self.shadowed += 1
            future.add_done_callback(self._done)
        except Exception as exc:  # the shadow must never reach the served answer
            self.failures += 1
            logger.warning("shadow could not start: %s", type(exc).__name__)

    async def _run(self, case_input: Any, unit_id: Any, request_id: str) -> None:
        try:
            await self._candidate_client.acall(self.candidate, case_input, unit_id=unit_id,
                                               experiment=self.experiment, arm=SHADOW, request_id=request_id)
        except Exception as exc:
            self.failures += 1
            logger.warning("shadow call failed: %s", type(exc).__name__)
            self._record_failure(unit_id, request_id)

    def _record_failure(self, unit_id: Any, request_id: str) -> None:
        try:
            self.client.log.record(getattr(self.candidate, "name", self.client.prompt_name),
                                   version=str(getattr(self.candidate, "version", "")), experiment=self.experiment,
                                   arm=SHADOW, request_id=request_id, unit_id=unit_id, success=False,
                                   error_type="exception", outcome="escalated")
        except Exception as exc:
            logger.warning("shadow failure could not be logged: %s", type(exc).__name__)

    def _done(self, future: concurrent.futures.Future) -> None:
        with self._lock:
            self._pending.discard(future)

    def drain(self, timeout_s: float | None = 30.0) -> int:
        """Wait for the shadow calls in flight; returns how many were still running at the deadline."""
        with self._lock:
            pending = list(self._pending)
        _, not_done = concurrent.futures.wait(pending, timeout=timeout_s)
        return len(not_done)

    def close(self) -> None:
        """Drain and stop the background loop."""
        self.drain()
        with self._lock:
            if self._loop is not None:
                self._loop.stop()
                self._loop = None

    def compare(self, source: Any = None) -> ShadowReport:
        """Pair live and shadow answers by request and compare them (needs the shadow calls drained)."""
        source = self.client.log if source is None else source
        sql = (f"SELECT l.success AS live, s.success AS shadow, COUNT(*) AS n FROM {TABLE} l JOIN {TABLE} s "
               "ON l.request_id = s.request_id WHERE l.experiment = ? AND s.experiment = ? AND l.arm = ? "
               "AND s.arm = ? AND l.success IS NOT NULL AND s.success IS NOT NULL GROUP BY l.success, s.success")
        table = run_sql(source, sql, [self.experiment, self.experiment, LIVE, SHADOW])
        cells = {(int(r.live), int(r.shadow)): int(r.n) for r in table.itertuples()}
        paired = mcnemar(b=cells.get((1, 0), 0), c=cells.get((0, 1), 0), a=cells.get((1, 1), 0),
                         d=cells.get((0, 0), 0))
        metrics = prompt_metrics(source, window_s=None, by=("arm", "version"),
                                 where=EventFilter(experiment=self.experiment))
        return ShadowReport(paired, metrics)

    def __repr__(self) -> str:
        return (f"Shadow({self.experiment!r}, candidate={getattr(self.candidate, 'ref', self.candidate)!r}, "
                f"sample_rate={self.sample_rate:g}, shadowed={self.shadowed}, failures={self.failures})")


# ---- canary ------------------------------------------------------------------------------------------------
class Canary:
    """Send ``percent`` of units to a candidate; roll back by itself when it is significantly worse.

    Args:
        client: the `ProductionClient` serving the stable version (its log receives the canary's events).
        candidate: the candidate `Prompt`.
        percent: share of units (0–100) routed to the candidate, sticky per unit.
        on_rollback: called once with the `ABTestReport` when the canary rolls back (e.g. a registry rollback).
        check_every: read the canary after this many calls (None: only when `check` is called).
        guardrails: tolerated degradations (`Guardrails`; none by default).
        alpha: error rate of the always-valid reads.
        experiment: the id its events are logged under (default ``canary:<name>@<candidate version>``).
    """

    look_every_s: float = 60.0
    """Look window of the always-valid read (the running minimum of p runs over minutes)."""

    def __init__(self, client: ProductionClient, candidate: Any, *, percent: float = 5.0,
                 on_rollback: Callable[[ABTestReport], Any] | None = None, check_every: int | None = 200,
                 guardrails: Guardrails | None = None, alpha: float = 0.05, experiment: str | None = None):
        if not 0 < percent < 100:
            raise ExperimentError(f"percent={percent!r} must be between 0 and 100 (exclusive), e.g. 5.")
        if client.log is None:
            raise ExperimentError("a canary reads its own events; give the client an EventLog (log=...).")
        self.client, self.candidate, self.on_rollback, self.check_every = client, candidate, on_rollback, check_every
        version = getattr(candidate, "version", "candidate")
        self.design = Design(experiment or f"canary:{client.prompt_name}@{version}", (STABLE, CANARY),
                             (100.0 - percent, float(percent)), STABLE, alpha, guardrails=guardrails or Guardrails())
        self.rolled_back = False
        self.last_report: ABTestReport | None = None
        self.calls = 0
        self._rng = random.Random()
        self._lock = threading.Lock()

    @property
    def percent(self) -> float:
        """The candidate's share of units (0 after a rollback)."""
        return 0.0 if self.rolled_back else self.design.weights[1]

    def assign(self, unit_id: Any = None) -> str:
        """``stable`` or ``canary`` for a unit (sticky; random without a unit id; stable after a rollback)."""
        if self.rolled_back:
            return STABLE
        if unit_id is None:
            return choose_arm(self._rng.random(), self.design.arms, self.design.weights)
        return assign_arm(self.design.experiment, unit_id, self.design.arms, self.design.weights)

    async def acomplete(self, case_input: str | dict[str, Any], *, unit_id: Any = None) -> Answer:
        """Answer with the stable version or the candidate, log it, and check the canary when due."""
        arm = self.assign(unit_id)
        prompt = self.candidate if arm == CANARY else self.client.resolve()
        answer = await self.client.acall(prompt, case_input, unit_id=unit_id, experiment=self.design.experiment,
                                         arm=arm)
        with self._lock:
            self.calls += 1
            due = bool(self.check_every) and self.calls % self.check_every == 0 and not self.rolled_back
        if due:
            self.check()
        return answer

    def complete(self, case_input: str | dict[str, Any], *, unit_id: Any = None) -> Answer:
        """The sync face of `acomplete`."""
        from .._sync import run_sync

        return run_sync(self.acomplete(case_input, unit_id=unit_id))

    def check(self, source: Any = None) -> ABTestReport:
        """Read the canary now; roll back when the candidate is significantly worse (status ``stop canary``)."""
        source = self.client.log if source is None else source
        report = analyze_experiment(source, self.design, look_every_s=self.look_every_s)
        self.last_report = report
        if report.status.startswith("stop") and not self.rolled_back:
            self._rollback(report)
        return report

    def _rollback(self, report: ABTestReport) -> None:
        with self._lock:
            if self.rolled_back:
                return
            self.rolled_back = True
        logger.warning("canary %s rolled back: %s", self.design.experiment, "; ".join(report.reasons))
        if self.on_rollback is not None:
            try:
                self.on_rollback(report)
            except Exception as exc:  # the rollback already happened here; report the callback's failure
                logger.error("canary on_rollback callback failed: %s", type(exc).__name__)

    def __repr__(self) -> str:
        state = "rolled back" if self.rolled_back else f"{self.percent:g}% to candidate"
        return (f"Canary({self.design.experiment!r}, {state}, calls={self.calls}, "
                f"last status={None if self.last_report is None else self.last_report.status!r})")

    def _repr_html_(self) -> str:
        from .._display import canary_html

        return canary_html(self)

