"""The pre-period covariate of CUPED, read from the event log: each unit's metric before the experiment began.

For every unit (``unit_hash``) exposed in the experiment, ``y`` is its metric over its events in its arm, and
``x`` the same metric over its events of the same prompts in the ``lookback_s`` seconds before the experiment's
start — before it could be exposed, so x cannot carry the treatment's effect. Three plain GROUP BY queries with
``?`` parameters (the portable SQL of `promptlab.production._query`), so any `Source` runs them:

1. the experiment's start and its prompts (its first event; the prompts its arms logged);
2. per arm and unit: COUNT and SUM of the metric during the experiment;
3. per unit: COUNT and SUM of the metric in [start − lookback, start) on those prompts.

A unit's value is the mean of the metric over its events (``per_unit="mean"``, e.g. its success rate) or the
sum (``per_unit="sum"``, e.g. its cost). Units seen in more than one arm are left out (their exposure is
ambiguous) and counted; units with no pre-period event get the pooled pre-period mean of the units that have
one (a value fixed before assignment, so the estimate stays unbiased) and are counted too. The sums per arm
(`promptlab.stats._cuped.CupedArm`) are what the CUPED read takes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ExperimentError
from ..stats._cuped import CupedArm
from ._query import EventFilter, Source, aggregate
from ._schema import TABLE, to_ms

PRE_METRICS = ("success", "quality", "format_ok", "latency_s", "cost_usd", "input_tokens", "output_tokens")
"""Event columns a pre-period covariate can be read from (the metric compared, per unit)."""
PER_UNIT = ("mean", "sum")
DEFAULT_LOOKBACK_S = 14 * 86400.0


@dataclass(frozen=True)
class PrePeriod:
    """What CUPED reads: the metric, how a unit's events make one value, and the pre-period window.

    Attributes:
        metric: the event column compared per unit (``success`` by default), one of `PRE_METRICS`.
        per_unit: ``"mean"`` (a unit's mean over its events, default) or ``"sum"`` (its total).
        lookback_s: length of the pre-period before the start, in seconds (14 days by default).
        start: when the experiment started (datetime, ISO string or Unix ms); its first event by default.
        prompts: the prompts whose pre-period events count; by default those the experiment's arms logged.
    """

    metric: str = "success"
    per_unit: str = "mean"
    lookback_s: float = DEFAULT_LOOKBACK_S
    start: Any = None
    prompts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.metric not in PRE_METRICS:
            raise ExperimentError(f"PrePeriod metric={self.metric!r} is not an event column CUPED can read; use "
                                  f"one of {PRE_METRICS!r}.")
        if self.per_unit not in PER_UNIT:
            raise ExperimentError(f"PrePeriod per_unit={self.per_unit!r} is not one of {PER_UNIT!r}.")
        if not (isinstance(self.lookback_s, int | float) and math.isfinite(self.lookback_s) and self.lookback_s > 0):
            raise ExperimentError(f"PrePeriod lookback_s={self.lookback_s!r} must be a positive number of "
                                  "seconds, e.g. 14 * 86400.")


@dataclass(frozen=True)
class UnitCovariates:
    """Per-arm CUPED sums read from the log, and how many units the reading set aside or filled in.

    Attributes:
        arms: ``{arm: CupedArm}`` for arms with at least one unit.
        units: units with a value per arm.
        with_pre: of them, units with a pre-period value (the others got the pooled pre-period mean).
        ambiguous: units seen in more than one arm, left out.
        start_ms, since_ms: the pre-period is [since_ms, start_ms).
        pre_mean: the pooled pre-period mean used for units without one (NaN when no unit has one).
    """

    arms: dict[str, CupedArm]
    units: dict[str, int]
    with_pre: dict[str, int]
    ambiguous: int
    start_ms: int | None
    since_ms: int | None
    pre_mean: float


def _unit_sql(metric: str, clause: str, by_arm: bool) -> str:
    keys = "arm, unit_hash" if by_arm else "unit_hash"
    return (f"SELECT {keys}, COUNT({metric}) AS k, SUM({metric}) AS total FROM {TABLE} "
            f"WHERE {clause} AND unit_hash IS NOT NULL AND {metric} IS NOT NULL GROUP BY {keys}")


def _values(frame: pd.DataFrame, per_unit: str) -> pd.Series:
    k = pd.to_numeric(frame["k"]).astype(float)
    total = pd.to_numeric(frame["total"]).astype(float)
    return total / k if per_unit == "mean" else total


def _window(source: Source, filt: EventFilter, options: PrePeriod) -> tuple[int | None, tuple[str, ...]]:
    """The experiment's start (its first event unless given) and the prompts its arms logged."""
    seen = aggregate(source, ["prompt"], where=filt)
    prompts = options.prompts if options.prompts is not None else tuple(str(p) for p in seen["prompt"].dropna())
    if options.start is not None:
        return to_ms(options.start), prompts
    return (int(seen["first_ms"].min()) if len(seen) else None), prompts


def _pre_values(source: Source, metric: str, per_unit: str, since_ms: int, start_ms: int,
                prompts: Sequence[str], experiment: str | None) -> pd.Series:
    """x per unit over [since, start) on the prompts, never from the experiment itself (a start given later
    than its first event must not turn exposed events into covariates); empty when there are no prompts."""
    if not prompts:
        return pd.Series(dtype=float)
    clause, params = EventFilter(since_ms=since_ms, until_ms=start_ms).sql()
    clause += f" AND prompt IN ({', '.join('?' * len(prompts))}) AND (experiment IS NULL OR experiment <> ?)"
    frame = source.query(_unit_sql(metric, clause, by_arm=False), [*params, *prompts, experiment or ""])
    if frame.empty:
        return pd.Series(dtype=float)
    return pd.Series(_values(frame, per_unit).to_numpy(), index=frame["unit_hash"].astype(str))


def read_covariates(source: Source, filt: EventFilter, options: PrePeriod) -> UnitCovariates:
    """Each arm's CUPED sums (y during the experiment, x before it) for the experiment ``filt`` selects."""
    start_ms, prompts = _window(source, filt, options)
    clause, params = filt.sql()
    if start_ms is not None:  # the post period starts at the start, whatever the filter says
        clause, params = f"{clause} AND ts_ms >= ?", [*params, start_ms]
    post = source.query(_unit_sql(options.metric, clause, by_arm=True), params)
    if post.empty or start_ms is None:
        return UnitCovariates({}, {}, {}, 0, start_ms, None, math.nan)
    post = post.assign(unit_hash=post["unit_hash"].astype(str), y=_values(post, options.per_unit).to_numpy())
    arms_per_unit = post.groupby("unit_hash")["arm"].transform("nunique")
    ambiguous = int(post.loc[arms_per_unit > 1, "unit_hash"].nunique())
    post = post[arms_per_unit == 1]
    since_ms = int(start_ms - round(options.lookback_s * 1000))
    pre = _pre_values(source, options.metric, options.per_unit, since_ms, start_ms, prompts, filt.experiment)
    x = post["unit_hash"].map(pre)
    pre_mean = float(x.mean()) if x.notna().any() else math.nan
    post = post.assign(x=x.fillna(pre_mean if x.notna().any() else 0.0), has_pre=x.notna())
    arms, units, with_pre = {}, {}, {}
    for arm, part in post.groupby("arm", sort=False):
        y_, x_ = part["y"].to_numpy(dtype=float), part["x"].to_numpy(dtype=float)
        arms[str(arm)] = CupedArm(int(y_.size), float(y_.sum()), float(y_ @ y_), float(x_.sum()), float(x_ @ x_),
                                  float(x_ @ y_))
        units[str(arm)], with_pre[str(arm)] = int(y_.size), int(np.sum(part["has_pre"]))
    return UnitCovariates(arms, units, with_pre, ambiguous, start_ms, since_ms, pre_mean)
