"""A/B tests of prompts on live traffic: sticky assignment, outcomes to the event log, an always-valid read.

The starting document's ``PromptABTest`` assigned variants with ``random.random()`` on every call, read the
result with a one-sided pooled z-test, and took p95 as ``sorted(lat)[int(n*0.95)]``. Here:

* **Assignment is sticky and deterministic.** A unit (user, session, account) is hashed with the experiment
  id by SHA-256 (`assignment_bucket`) into [0, 1), and the bucket falls into an arm by the cumulative weights.
  The same unit gets the same arm in every process, on every machine, in every release (Python's ``hash()``
  is salted per process and would not do). Only calls without a unit id are assigned at random.
* **Outcomes go to the event log** (`promptlab.production._eventlog.EventLog`), one row per call, with the
  experiment, arm and the *hashed* unit id.
* **`analyze()`** reads the log (`promptlab.production._experiment.analyze_experiment`): per-arm n, success
  rate with its Wilson interval, latency p50/p95, cost per call, the always-valid decision, the SRM check,
  guardrails, and a plain status — ``keep running``, ``ship B`` or ``stop B``.

Example::

    test = PromptABTest("sentiment-v2", {"A": prompt_v1, "B": prompt_v2}, log=EventLog("events.db"))
    arm, prompt = test.prompt_for(user_id)
    ...                                   # call the model with `prompt`
    test.record(arm, unit_id=user_id, success=ok, latency_s=elapsed, cost_usd=cost)
    test.analyze()                        # safe to call as often as you like
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ExperimentError
from ..stats._sequential import DEFAULT_TUNING
from ._eventlog import Event, EventLog
from ._experiment import DEFAULT_LOOK_S, ABTestReport, Design, Guardrails, analyze_experiment
from ._query import EventFilter, Source


def assignment_bucket(experiment_id: str, unit_id: Any) -> float:
    """The unit's position in [0, 1) for this experiment: the first 8 bytes of SHA-256, as a fraction.

    Stable across processes and releases (it depends only on the two strings); different experiments
    shuffle units independently, so one test's arm does not predict another's.
    """
    digest = hashlib.sha256(f"promptlab.ab\x00{experiment_id}\x00{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def _thresholds(weights: Sequence[float]) -> list[float]:
    total = float(sum(weights))
    running, out = 0.0, []
    for w in weights[:-1]:
        running += w
        out.append(running / total)
    return out


def choose_arm(bucket: float, arms: Sequence[str], weights: Sequence[float]) -> str:
    """The arm a bucket in [0, 1) falls into, with arms laid out in order by their weights."""
    return arms[bisect.bisect_right(_thresholds(weights), bucket)]


def assign_arm(experiment_id: str, unit_id: Any, arms: Sequence[str], weights: Sequence[float]) -> str:
    """Sticky assignment: the arm of ``unit_id`` in ``experiment_id`` (same inputs, same arm, everywhere).

    Raises:
        ExperimentError: ``weights`` are not one positive number per arm.
    """
    _check_layout(arms, weights)
    return choose_arm(assignment_bucket(experiment_id, unit_id), arms, weights)


def _check_layout(arms: Sequence[str], weights: Sequence[float]) -> None:
    """One positive weight per arm: anything else would send units to the wrong arm without a word."""
    try:
        values = [] if isinstance(weights, str) else [float(w) for w in weights]
    except (TypeError, ValueError):
        values = []
    if len(values) != len(arms) or not all(0 < v < math.inf for v in values):
        raise ExperimentError(f"weights {weights!r} must be one positive number per arm {list(arms)!r}, "
                              "e.g. [1, 1] for an even split.")


def _normalise_arms(arms: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
    if isinstance(arms, Mapping):
        out = dict(arms)
    else:
        out = {chr(ord("A") + i): prompt for i, prompt in enumerate(arms)}
    if len(out) < 2:
        raise ExperimentError(f"an A/B test needs two or more arms; got {list(out)!r}. "
                              "Pass {'A': prompt_a, 'B': prompt_b}.")
    return out


def _identity(experiment_id: str, value: Any) -> tuple[str, str | None]:
    """(prompt name, version) to log for an arm: a `Prompt`'s own, or the experiment id and a label."""
    name, version = getattr(value, "name", None), getattr(value, "version", None)
    if isinstance(name, str) and name:
        return name, None if version is None else str(version)
    return experiment_id, None if value is None else str(value)


class PromptABTest:
    """A live A/B(/n) test of prompt versions with sticky assignment and an always-valid read.

    Args:
        experiment_id: a stable id; it seeds the assignment, so changing it reshuffles every unit.
        arms: ``{"A": prompt_a, "B": prompt_b, ...}`` (a list is named A, B, C …); values are `Prompt`\\ s
            (their name and version are logged) or plain labels.
        log: the event log outcomes are written to (and `analyze` reads by default).
        weights: planned traffic shares per arm (any scale; equal by default).
        baseline: the arm the others are compared with (the first by default).
        alpha: error rate of the decision (two-sided); guardrails are read at alpha too.
        guardrails: tolerated degradations (`Guardrails`).
        seed: seed for the random assignment of calls without a unit id.
    """

    def __init__(self, experiment_id: str, arms: Mapping[str, Any] | Sequence[Any], *, log: EventLog,
                 weights: Sequence[float] | None = None, baseline: str | None = None, alpha: float = 0.05,
                 guardrails: Guardrails | None = None, seed: int | None = None):
        if not isinstance(experiment_id, str) or not experiment_id:
            raise ExperimentError(f"experiment_id must be a non-empty string; got {experiment_id!r}.")
        self.arms = _normalise_arms(arms)
        names = tuple(self.arms)
        self.design = Design(experiment_id, names, tuple(float(w) for w in (weights or [1.0] * len(names))),
                             baseline or names[0], alpha, DEFAULT_TUNING, guardrails or Guardrails())
        self.log = log
        self._rng = random.Random(seed)

    @property
    def experiment_id(self) -> str:
        """The experiment's id."""
        return self.design.experiment

    def assign(self, unit_id: Any = None) -> str:
        """The arm for a unit: sticky by hashing (experiment id, unit id); random when ``unit_id`` is None."""
        if unit_id is None:
            return choose_arm(self._rng.random(), self.design.arms, self.design.weights)
        return assign_arm(self.design.experiment, unit_id, self.design.arms, self.design.weights)

    def prompt_for(self, unit_id: Any = None) -> tuple[str, Any]:
        """``(arm, prompt)`` for a unit — the prompt to call the model with."""
        arm = self.assign(unit_id)
        return arm, self.arms[arm]

    def record(self, arm: str, *, unit_id: Any = None, success: bool | None = None, **values: Any) -> Event:
        """Write one call's outcome to the event log (the unit id is hashed, never stored).

        Args:
            arm: the arm that served the call.
            unit_id: the unit's id (None for anonymous calls).
            success: whether the call did its job — the decision metric.
            **values: any other event column: ``latency_s``, ``cost_usd``, ``input_tokens``,
                ``output_tokens``, ``format_ok``, ``error_type``, ``quality``, ``model`` …
        """
        if arm not in self.arms:
            raise ExperimentError(f"arm {arm!r} is not in experiment {self.experiment_id!r}; arms are "
                                  f"{list(self.arms)!r}.")
        prompt, version = _identity(self.experiment_id, self.arms[arm])
        return self.log.record(prompt, version=version, experiment=self.experiment_id, arm=arm,
                               unit_id=unit_id, success=success, **values)

    def analyze(self, source: Source | None = None, *, look_every_s: float = DEFAULT_LOOK_S,
                where: EventFilter | None = None, bayesian: Any = False, cuped: Any = False) -> ABTestReport:
        """Read the test (from this test's log, or any `Source` such as a `ParquetLog` export).

        Args:
            source: where to read; the test's own log by default.
            look_every_s: look window for the running minimum of the always-valid p (hourly by default).
            where: an optional time range (`EventFilter.between`).
            bayesian: also GrowthBook's Bayesian read: True (flat prior) or a `promptlab.stats.GaussianPrior`.
            cuped: also the CUPED-adjusted read: True (success rate per unit, 14-day pre-period) or a
                `promptlab.production.PrePeriod`.
        """
        return analyze_experiment(self.log if source is None else source, self.design, look_every_s=look_every_s,
                                  where=where, bayesian=bayesian, cuped=cuped)

    def __repr__(self) -> str:
        split = ", ".join(f"{a}={w:g}" for a, w in zip(self.design.arms, self.design.weights, strict=True))
        return f"PromptABTest({self.experiment_id!r}, arms=[{split}], baseline={self.design.baseline!r})"

    def _repr_html_(self) -> str:
        return self.analyze()._repr_html_()
