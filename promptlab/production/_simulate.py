"""Seeded, realistic production traffic for notebooks, tests and benchmarks — with an injectable degradation.

`simulate_traffic` draws a log of an A/B test the way production looks: call volume follows the time of day
(Poisson counts per minute around a diurnal curve), units (users) come back with heavy-tailed activity and
keep their arm (sticky hashing, exactly as `PromptABTest` assigns), latency is lognormal, a few calls fail
(timeouts, rate limits, server errors), answers sometimes break the format, and a fifth of calls get a
quality score. A `Degradation` changes one arm from a given hour on — by default arm B's format failures rise
to 12% and its latency doubles (so its p95 doubles) from hour 30 — which is what the monitoring and staging
notebooks detect.

Everything is vectorised: 50,000 events take well under a second to draw; `write_traffic` writes them to an
`EventLog` (SQLite) or a Parquet file in one batch.

Cost uses fixed illustrative prices (`PRICE_IN_PER_1M`, `PRICE_OUT_PER_1M`, USD per 1M tokens), not the
price table, so the simulated log does not change when prices are updated.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ExperimentError
from ._abtest import assign_arm
from ._eventlog import EventLog, write_parquet
from ._schema import hash_unit, to_ms

PRICE_IN_PER_1M = 3.0
PRICE_OUT_PER_1M = 15.0
ERROR_TYPES = ("timeout", "rate_limit", "server")
ERROR_SHARES = (0.4, 0.35, 0.25)
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ArmBehaviour:
    """How one arm behaves in simulated traffic.

    Attributes:
        version: the prompt version the arm serves.
        success_rate: share of answered, in-format calls that succeed (overall success is lower: errors and
            format failures are failures too).
        format_failure_rate: share of answered calls whose format is broken (they count as failures).
        error_rate: share of calls that fail with an error (timeouts, rate limits, server errors).
        latency_median_s: median latency of answered calls.
        latency_sigma: lognormal shape (0.45 puts p95 at about 2.1 × the median).
        quality_mean: mean judge score (1–5) of good answers.
        model: the model that answers.
    """

    version: str
    success_rate: float = 0.99
    format_failure_rate: float = 0.015
    error_rate: float = 0.005
    latency_median_s: float = 0.9
    latency_sigma: float = 0.45
    quality_mean: float = 4.1
    model: str = "anthropic:claude-3-5-sonnet-20241022"


def _default_arms() -> dict[str, ArmBehaviour]:
    return {"A": ArmBehaviour("1.0.0"), "B": ArmBehaviour("1.1.0", success_rate=0.995)}


@dataclass(frozen=True)
class TrafficSpec:
    """The shape of simulated traffic.

    Attributes:
        hours: how long the log runs.
        calls_per_hour: mean call volume (the diurnal curve swings ±60% around it, peaking mid-afternoon).
        arms: behaviour per arm (A: 1.0.0, about 97% overall success; B: 1.1.0, about half a point better).
        weights: traffic shares per arm (equal by default).
        prompt: the prompt name.
        experiment: the experiment id (also seeds the sticky assignment).
        users: distinct units.
        start: the first hour, UTC.
    """

    hours: float = 48.0
    calls_per_hour: float = 1200.0
    arms: Mapping[str, ArmBehaviour] = field(default_factory=_default_arms)
    weights: tuple[float, ...] | None = None
    prompt: str = "sentiment_classifier"
    experiment: str = "sentiment-rollout"
    users: int = 20_000
    start: dt.datetime = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Degradation:
    """A change injected into one arm from a given hour on.

    Attributes:
        arm: the arm that degrades.
        start_hour: hours after the log's start when it begins.
        format_failure_rate: the arm's format failure rate from then on.
        latency_factor: latency is multiplied by this from then on (2.0 doubles p50 and p95).
        error_rate: the arm's error rate from then on (None: unchanged).
    """

    arm: str = "B"
    start_hour: float = 30.0
    format_failure_rate: float = 0.12
    latency_factor: float = 2.0
    error_rate: float | None = None


def _times(spec: TrafficSpec, rng: np.random.Generator) -> np.ndarray:
    """Call times in ms: Poisson counts per minute around a diurnal curve, uniform within the minute."""
    minutes = int(math.ceil(spec.hours * 60))
    start = to_ms(spec.start)
    hour_of_day = (np.arange(minutes) / 60.0 + spec.start.hour) % 24
    rate = spec.calls_per_hour / 60.0 * (1 + 0.6 * np.sin(2 * np.pi * (hour_of_day - 8.0) / 24))
    counts = rng.poisson(rate)
    minute_of_call = np.repeat(np.arange(minutes), counts)
    offsets = rng.uniform(0, 60_000, size=minute_of_call.size)
    return np.sort(start + (minute_of_call * 60_000 + offsets).astype(np.int64))


def _units(spec: TrafficSpec, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per call: unit index, unit hash, arm (sticky per unit by `assign_arm`)."""
    activity = rng.lognormal(0.0, 1.0, size=spec.users)
    unit = rng.choice(spec.users, size=n, p=activity / activity.sum())
    arms = list(spec.arms)
    weights = list(spec.weights or [1.0] * len(arms))
    ids = [f"user-{i}" for i in range(spec.users)]
    unit_arm = np.array([assign_arm(spec.experiment, u, arms, weights) for u in ids], dtype=object)
    unit_hash = np.array([hash_unit(u) for u in ids], dtype=object)
    return unit, unit_hash[unit], unit_arm[unit]


def _arm_parameters(spec: TrafficSpec, arm: np.ndarray, hours: np.ndarray,
                    degradation: Degradation | None) -> dict[str, np.ndarray]:
    params = {name: np.empty(arm.size) for name in ("success", "format", "error", "median", "sigma", "quality")}
    for name, behaviour in spec.arms.items():
        mask = arm == name
        params["success"][mask] = behaviour.success_rate
        params["format"][mask] = behaviour.format_failure_rate
        params["error"][mask] = behaviour.error_rate
        params["median"][mask] = behaviour.latency_median_s
        params["sigma"][mask] = behaviour.latency_sigma
        params["quality"][mask] = behaviour.quality_mean
    if degradation is not None:
        hit = (arm == degradation.arm) & (hours >= degradation.start_hour)
        params["format"][hit] = degradation.format_failure_rate
        params["median"][hit] *= degradation.latency_factor
        if degradation.error_rate is not None:
            params["error"][hit] = degradation.error_rate
    return params


def _outcomes(params: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = params["success"].size
    errored = rng.random(n) < params["error"]
    error_type = np.where(errored, rng.choice(np.array(ERROR_TYPES, dtype=object), size=n, p=ERROR_SHARES), None)
    format_ok = ~errored & (rng.random(n) >= params["format"])
    success = format_ok & (rng.random(n) < params["success"])
    latency = params["median"] * rng.lognormal(0.0, 1.0, n) ** params["sigma"]
    latency = np.where(error_type == "timeout", TIMEOUT_S, np.where(errored, 0.05 + 0.2 * rng.random(n), latency))
    input_tokens = rng.poisson(160, n) + 40
    output_tokens = np.where(errored, -1, rng.poisson(4, n) + 1)
    scored = ~errored & (rng.random(n) < 0.2)
    quality_mean = np.where(format_ok, params["quality"], 2.0)
    quality = np.where(scored, np.clip(np.round(rng.normal(quality_mean, 0.7), 1), 1.0, 5.0), np.nan)
    return {"errored": errored, "error_type": error_type, "format_ok": format_ok, "success": success,
            "latency_s": np.round(latency, 4), "input_tokens": input_tokens, "output_tokens": output_tokens,
            "quality": quality}


def simulate_traffic(spec: TrafficSpec | None = None, *, degradation: Degradation | None = None,
                     seed: int = 0) -> pd.DataFrame:
    """Draw a production event log (columns of `EVENT_COLUMNS`, sorted by time).

    Args:
        spec: the traffic's shape (48 hours, ~1,200 calls an hour, arms A and B by default).
        degradation: a change injected into one arm from a given hour (none by default).
        seed: the random seed; the same seed gives the same log.
    """
    spec = spec or TrafficSpec()
    if degradation is not None and degradation.arm not in spec.arms:
        raise ExperimentError(f"degradation arm {degradation.arm!r} is not one of {list(spec.arms)!r}.")
    rng = np.random.default_rng(seed)
    ts = _times(spec, rng)
    unit, unit_hash, arm = _units(spec, ts.size, rng)
    hours = (ts - to_ms(spec.start)) / 3_600_000
    out = _outcomes(_arm_parameters(spec, arm, hours, degradation), rng)
    version = np.array([spec.arms[a].version for a in arm], dtype=object)
    model = np.array([spec.arms[a].model for a in arm], dtype=object)
    output = np.where(out["errored"], np.nan, out["output_tokens"]).astype(float)
    cost = (out["input_tokens"] * PRICE_IN_PER_1M + output * PRICE_OUT_PER_1M) / 1e6
    return pd.DataFrame({
        "ts_ms": ts, "experiment": spec.experiment, "prompt": spec.prompt, "version": version, "arm": arm,
        "unit_hash": unit_hash, "latency_s": out["latency_s"],
        "input_tokens": np.where(out["errored"], np.nan, out["input_tokens"]), "output_tokens": output,
        "cost_usd": cost, "success": out["success"].astype(np.int8),
        "format_ok": np.where(out["errored"], np.nan, out["format_ok"].astype(float)),
        "error_type": out["error_type"], "quality": out["quality"], "model": np.where(out["errored"], None, model),
        "outcome": np.where(out["errored"], "escalated", "answered"),
    })


def write_traffic(target: EventLog | str | Path, spec: TrafficSpec | None = None, *,
                  degradation: Degradation | None = None, seed: int = 0) -> pd.DataFrame:
    """Draw traffic with `simulate_traffic` and write it to an `EventLog` or a ``.parquet`` path.

    Returns the drawn events. A path ending in ``.parquet`` gets a Parquet file; any other path is opened as
    an `EventLog` (SQLite), written, and closed.
    """
    frame = simulate_traffic(spec, degradation=degradation, seed=seed)
    if isinstance(target, EventLog):
        target.append_frame(frame)
    elif str(target).endswith(".parquet"):
        write_parquet(frame, target)
    else:
        with EventLog(target) as log:
            log.append_frame(frame)
    return frame
