"""Reading a live experiment from the event log: per-arm numbers, the always-valid decision, SRM, guardrails.

`analyze_experiment` is what `PromptABTest.analyze` and the canary's automatic rollback both run. It reads
only aggregates — counts and sums per arm and per look window, the arms' distinct units, and latency sketch
bucket counts per arm for the quantiles (`promptlab.production._sketch`) — so it runs the same on every backend
and on a warehouse's aggregate table (`promptlab.production.analyze`).

The decision metric is the success rate. Each non-baseline arm is compared with the baseline by the
normal-mixture always-valid test (`promptlab.stats._sequential.always_valid_proportions`, tuning S) on the cumulative
counts at every look window: the p-value is the running minimum over looks and the interval is the running
intersection of the confidence sequences, so the read is valid however often anyone looks. With more than
two arms the decision family is Bonferroni-corrected (p × (K − 1), sequences at α / (K − 1)), which keeps
p and interval in agreement.

Guardrails are read beside the decision, each at α, outside its multiplicity family, with the same
always-valid machinery, in the direction that hurts:

* ``error_rate`` — the share of calls with an error;
* ``latency_tail`` — the share of calls slower than the p95 of all arms pooled (about 5% in every arm when
  nothing changed), a count-based test of "p95 got worse". The threshold is pooled, not the baseline's own
  p95, so its estimation error is common to both arms and cancels in the difference. It is the upper edge of
  the pooled p95's sketch bucket (`LatencySketch.tail_threshold`, within 2% of the p95: any threshold common
  to both arms keeps the test valid), so the calls above it are counted from the bucket counts of the same
  scan that gives the looks' sums — no second read of the events;
* ``cost_per_call_usd`` — the mean cost of calls with a known price.

A guardrail *degrades* when its confidence sequence for B − A lies entirely above its margin.

An arm whose count is degenerate at a look (no events, or only events) gets the Agresti–Caffo adjustment
(`smooth_counts`) before the test, so that a zero variance cannot hide a difference such as "every canary call
fails, no stable call does".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..errors import ExperimentError
from ..stats._bayesian import GaussianPrior
from ..stats._intervals import wilson_interval
from ..stats._sequential import DEFAULT_TUNING, SRMResult, always_valid, always_valid_proportions, srm_check
from ..stats._srm import sequential_srm
from ._experiment_reads import bayesian_option, bayesian_table, cuped_option, cuped_table, extra_tables
from ._preperiod import PrePeriod
from ._query import WINDOW_KEY, EventFilter, Source, aggregate, first_seen_units, mean_var, quantile_row
from ._sketch import COUNT_COLUMN, DEFAULT_ALPHA, KEY_COLUMN, LatencySketch, group_sketches, merge_all

STATUS_KEEP = "keep running"
DEFAULT_LOOK_S = 3600.0
GUARDRAILS = ("error_rate", "latency_tail", "cost_per_call_usd")
LOOK_MEASURES = ("successes", "success_n", "errors", "latency_n", "latency_sum", "cost_n", "cost_sum", "cost_sumsq")
"""The sums the looks need (`promptlab.production._query.MEASURES`): fewer sums, a faster scan of big logs."""
ARM_COLUMNS = ["arm", "weight", "n", "units", "success_rate", "success_low", "success_high", "error_rate",
               "mean_latency_s", "p50_s", "p95_s", "p95_low_s", "p95_high_s", "cost_per_call_usd"]
DECISION_COLUMNS = ["arm", "n", "baseline_rate", "arm_rate", "diff", "ci_low", "ci_high", "p_value", "p_adj",
                    "alpha_family", "verdict", "note"]
CHANGED_NOTE = ("the effect changed over time (the confidence sequences of earlier looks exclude the latest "
                "one); read from the last look alone")
GUARDRAIL_COLUMNS = ["arm", "guardrail", "baseline", "value", "diff", "ci_low", "ci_high", "p_value", "margin",
                     "degraded"]


@dataclass(frozen=True)
class Guardrails:
    """How much worse than the baseline a guardrail may get before the arm is stopped.

    Attributes:
        error_rate: tolerated increase of the error rate (absolute, e.g. 0.01 = one point).
        latency_tail: tolerated increase of the share of calls slower than the baseline's p95.
        cost_per_call_usd: tolerated increase of the mean cost per call, in USD.
    """

    error_rate: float = 0.0
    latency_tail: float = 0.0
    cost_per_call_usd: float = 0.0


@dataclass(frozen=True)
class Design:
    """What an experiment is: its id, arms and planned weights, the baseline, and the test's settings.

    Attributes:
        experiment: the experiment id (the ``experiment`` column of its events).
        arms: arm names, baseline included.
        weights: planned traffic shares, one per arm (any scale).
        baseline: the arm the others are compared with.
        alpha: error rate of the decision family (two-sided); each guardrail is read at alpha too.
        tuning: S of the normal mixture (the sample size the test is most sensitive around).
        guardrails: tolerated degradations.
    """

    experiment: str
    arms: tuple[str, ...]
    weights: tuple[float, ...]
    baseline: str
    alpha: float = 0.05
    tuning: float = DEFAULT_TUNING
    guardrails: Guardrails = field(default_factory=Guardrails)

    def __post_init__(self) -> None:
        if len(self.arms) < 2 or len(set(self.arms)) != len(self.arms):
            raise ExperimentError(f"an experiment needs two or more distinct arms; got {list(self.arms)!r}.")
        if len(self.weights) != len(self.arms) or not all(w > 0 and math.isfinite(w) for w in self.weights):
            raise ExperimentError(f"weights {list(self.weights)!r} need one positive number per arm "
                                  f"{list(self.arms)!r}.")
        if self.baseline not in self.arms:
            raise ExperimentError(f"baseline {self.baseline!r} is not one of the arms {list(self.arms)!r}.")
        if not 0 < self.alpha < 1:
            raise ExperimentError(f"alpha={self.alpha!r} must be between 0 and 1, e.g. 0.05.")

    @property
    def challengers(self) -> tuple[str, ...]:
        """The arms compared with the baseline, in order."""
        return tuple(a for a in self.arms if a != self.baseline)


@dataclass(frozen=True, eq=False)
class ABTestReport:
    """One read of a live experiment.

    Attributes:
        design: the experiment's `Design`.
        arms: one row per arm (`ARM_COLUMNS`): calls, units, success rate with its Wilson interval, error
            rate, latency mean/p50/p95 (from sketches, within 1% of the exact sample quantiles; the p95's
            order-statistic interval widened to its buckets' edges), cost per call.
        decision: one row per challenger (`DECISION_COLUMNS`): success-rate difference with its always-valid
            interval, the always-valid p (running minimum), the family-adjusted p, and a verdict
            (``better``, ``worse``, ``inconclusive``).
        guardrails: one row per challenger × guardrail (`GUARDRAIL_COLUMNS`).
        looks: per challenger and look: cumulative n, estimate, p (running minimum) and interval — what
            `plot` draws.
        srm: the sample-ratio check (on distinct units when the events carry units, else on calls): the fixed χ²
            on the final counts with the always-valid sequential test over the looks (``srm.sequential``).
        status: ``"keep running"``, ``"ship B"`` or ``"stop B"`` (arm names as in the design).
        reasons: the sentences behind the status.
        bayesian: on request (``bayesian=``), one row per challenger (`BAYESIAN_COLUMNS`): GrowthBook's read of
            the success rate's lift — chance to win, credible interval, risk per arm; None otherwise.
        cuped: on request (``cuped=``), one row per challenger (`CUPED_COLUMNS`): the effect per unit adjusted
            by its pre-period value, beside the unadjusted one, with the variance reduction; None otherwise.
    """

    design: Design
    arms: pd.DataFrame
    decision: pd.DataFrame
    guardrails: pd.DataFrame
    looks: pd.DataFrame
    srm: SRMResult | None
    status: str
    reasons: tuple[str, ...]
    bayesian: pd.DataFrame | None = None
    cuped: pd.DataFrame | None = None

    @property
    def extra_tables(self) -> list[tuple[str, list[str], list[list[str]], str]]:
        """The reads asked for beside the decision (Bayesian, CUPED) as (title, headers, rows, note)."""
        return extra_tables(self)

    @property
    def n(self) -> int:
        """Calls in all arms."""
        return int(self.arms["n"].sum()) if len(self.arms) else 0

    def plot(self, arm: str | None = None):
        """The sequential plot (difference with its confidence sequence, always-valid p) for one challenger."""
        from ..notebook._plots import plot_sequential

        arm = arm or self.design.challengers[0]
        looks = self.looks[self.looks["arm"] == arm]
        fig = plot_sequential(looks, alpha=float(self.decision.set_index("arm").loc[arm, "alpha_family"])
                              if arm in set(self.decision["arm"]) else self.design.alpha)
        fig.update_layout(title=f"{self.design.experiment}: {arm} − {self.design.baseline}, success rate "
                                "(safe to watch while it runs)")
        return fig

    def __repr__(self) -> str:
        head = f"ABTestReport({self.design.experiment!r}, status={self.status!r}, n={self.n}"
        if len(self.decision):
            row = self.decision.iloc[0]
            head += (f", {row['arm']}−{self.design.baseline}={row['diff']:+.3f} "
                     f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}], p={row['p_value']:.3g}")
        srm = "no data" if self.srm is None else ("SRM!" if self.srm.flagged else "SRM ok")
        return head + f", {srm})"

    def _repr_html_(self) -> str:
        from .._display import abtest_html

        return abtest_html(self)


# ---- reading the log -----------------------------------------------------------------------------------------
def analyze_experiment(source: Source, design: Design, *, look_every_s: float = DEFAULT_LOOK_S,
                       where: EventFilter | None = None, bayesian: bool | GaussianPrior = False,
                       cuped: bool | PrePeriod = False) -> ABTestReport:
    """Read an experiment from an event log (see the module docstring for the statistics).

    Args:
        source: an `EventLog`, a `ParquetLog` or any `Source`.
        design: the experiment's arms, weights, baseline and settings.
        look_every_s: the look window: cumulative counts are taken at the end of every window of this many
            seconds (hourly by default), and the running minimum of p runs over them.
        where: extra filters (a time range); the experiment and arms are always filtered on.
        bayesian: also GrowthBook's Bayesian read of the success rate (`ABTestReport.bayesian`): True for
            its flat prior, or a `promptlab.stats.GaussianPrior` on the relative lift.
        cuped: also the CUPED-adjusted read (`ABTestReport.cuped`): True for the success rate per unit with
            14 days of pre-period, or a `PrePeriod` (metric, per-unit mean or sum, look-back, start).
            Both are fixed-horizon reads beside the decision, which they never change
            (`promptlab.production._experiment_reads`).
    """
    prior, pre = bayesian_option(bayesian), cuped_option(cuped)
    base = where or EventFilter()
    filt = EventFilter(experiment=design.experiment, arms=design.arms, since_ms=base.since_ms,
                       until_ms=base.until_ms)
    # one scan for the looks and the latency sketches: sums per arm, look window and latency bucket (a few
    # thousand rows), rolled up here; the units' first looks are the only other scan
    fine = aggregate(source, ["arm"], where=filt, window_s=look_every_s, measures=LOOK_MEASURES,
                     latency_buckets=DEFAULT_ALPHA)
    by_arm = _arm_sketches(fine)
    windows = _look_windows(fine, merge_all(by_arm.values()))  # sketches merge exactly: the pooled p95 is free
    cumulative = _cumulative(windows, design.arms)
    srm_looks = _srm_looks(source, filt, design, cumulative, look_every_s)
    report = report_from_cumulative(design, cumulative, by_arm, _units(design, srm_looks), srm_looks)
    finals = {arm: (int(_final(cumulative, arm, "successes")), int(_final(cumulative, arm, "success_n")))
              for arm in design.arms}
    bayes = None if prior is False else bayesian_table(finals, design.challengers, design.baseline, prior,
                                                       1 - design.alpha)
    adjusted = None if pre is None else cuped_table(source, filt, design.challengers, design.baseline, pre,
                                                    1 - _family(design), prior)
    return replace(report, bayesian=bayes, cuped=adjusted)


def report_from_cumulative(design: Design, cumulative: dict[str, pd.DataFrame],
                           latencies: dict[str, LatencySketch], units: pd.DataFrame | None,
                           srm_looks: dict[str, np.ndarray], *,
                           adjust: Callable[[pd.DataFrame, pd.DataFrame], None] | None = None) -> ABTestReport:
    """The report from the arms' cumulative sums per look: the per-arm table, the sample-ratio check, the
    always-valid decision, the guardrails and the status. A log's read (`analyze_experiment`) and a warehouse's
    aggregate table (`promptlab.production.analyze`) both end here, so they cannot drift apart.

    Args:
        design: the experiment.
        cumulative: per arm, cumulative sums at the end of every look (`_cumulative`).
        latencies: per arm, its latency sketch (missing arms have none).
        units: distinct units per arm (``arm``, ``units``), or None when the events carry no units.
        srm_looks: cumulative ``n`` and ``units`` per look (rows) and arm (columns) for the sequential SRM.
        adjust: called with (arm table, guardrails) before the status is decided, to blank what the input
            could not tell (a warehouse table without a guardrail's columns).
    """
    arms = _arm_table(design, cumulative, latencies, units)
    srm = _srm(design, arms, srm_looks)
    decision, looks = _decision(design, cumulative)
    guardrails = _guardrails(design, cumulative)
    if adjust is not None:
        adjust(arms, guardrails)
    status, reasons = _status(design, arms, decision, guardrails, srm)
    return ABTestReport(design, arms, decision, guardrails, looks, srm, status, reasons)


def _arm_sketches(fine: pd.DataFrame) -> dict[str, LatencySketch]:
    """Per arm, the latency sketch of all its looks: the latency counts of its buckets, windows added up."""
    timed = fine[fine["latency_n"] > 0]
    buckets = timed.groupby(["arm", KEY_COLUMN], sort=False)["latency_n"].sum().rename(COUNT_COLUMN)
    return {key[0]: sketch for key, sketch in group_sketches(buckets.reset_index(), ["arm"]).items()}


def _look_windows(fine: pd.DataFrame, pooled: LatencySketch) -> pd.DataFrame:
    """Per arm and look window: the sums over its latency buckets, and ``latency_over`` — calls in buckets above
    the pooled p95's bucket (latency > `LatencySketch.tail_threshold` (0.95), a threshold common to all arms)."""
    over = fine[KEY_COLUMN] > pooled.quantile_bucket(0.95) if pooled.n else np.zeros(len(fine), dtype=bool)
    fine = fine.assign(latency_over=np.where(over, fine["latency_n"], 0))
    sums = [c for c in fine.columns if c not in ("arm", WINDOW_KEY, KEY_COLUMN)]
    return fine.groupby(["arm", WINDOW_KEY], sort=True)[sums].sum().reset_index()


def _cumulative(windows: pd.DataFrame, arms: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per arm: cumulative sums at the end of every look window (all arms share the same windows)."""
    cols = ["n", "successes", "success_n", "errors", "latency_n", "latency_over", "latency_sum",
            "cost_n", "cost_sum", "cost_sumsq"]
    looks = sorted(windows["window_ms"].unique().tolist()) if len(windows) else []
    out = {}
    for arm in arms:
        part = windows[windows["arm"] == arm].set_index("window_ms")
        part = part.reindex(looks)[cols].fillna(0).cumsum()
        out[arm] = part.reset_index()
    return out


def _final(cumulative: dict[str, pd.DataFrame], arm: str, column: str) -> float:
    frame = cumulative[arm]
    return float(frame[column].iloc[-1]) if len(frame) else 0.0


def _arm_table(design: Design, cumulative: dict[str, pd.DataFrame], latencies: dict[str, LatencySketch],
               units: pd.DataFrame | None) -> pd.DataFrame:
    unit_counts = {} if units is None else dict(zip(units["arm"], units["units"], strict=True))
    rows = []
    for arm, weight in zip(design.arms, design.weights, strict=True):
        get = lambda col, arm=arm: _final(cumulative, arm, col)  # noqa: E731
        ci = wilson_interval(int(get("successes")), int(get("success_n")))
        lat = latencies.get(arm, LatencySketch.empty())
        p50, _, _, p95, p95_low, p95_high = quantile_row(lat, (0.5, 0.95), 0.95)
        n, cost_n = get("n"), get("cost_n")
        rows.append([arm, weight, int(n), int(unit_counts.get(arm, 0)), ci.estimate, ci.low, ci.high,
                     get("errors") / n if n else math.nan,
                     get("latency_sum") / get("latency_n") if get("latency_n") else math.nan,
                     p50, p95, p95_low, p95_high, get("cost_sum") / cost_n if cost_n else math.nan])
    return pd.DataFrame(rows, columns=ARM_COLUMNS)


def _srm(design: Design, arms: pd.DataFrame, looks: dict[str, np.ndarray]) -> SRMResult | None:
    """The fixed χ² check on the final counts, with the always-valid sequential test over the looks beside it
    (units when the events carry them, else calls, in both)."""
    use_units = arms["units"].sum() > 0
    counts = arms["units" if use_units else "n"].astype(int).tolist()
    if sum(counts) == 0:
        return None
    per_look = looks["units" if use_units else "n"]
    return replace(srm_check(counts, list(design.weights)), sequential=sequential_srm(per_look, design.weights))


def _units(design: Design, looks: dict[str, np.ndarray]) -> pd.DataFrame | None:
    """Distinct units per arm: the last look of the cumulative first-seen counts (one query serves both)."""
    if not len(looks["units"]):
        return None
    return pd.DataFrame({"arm": list(design.arms), "units": looks["units"][-1].astype(np.int64)})


def _srm_looks(source: Source, filt: EventFilter, design: Design, cumulative: dict[str, pd.DataFrame],
               look_every_s: float) -> dict[str, np.ndarray]:
    """Cumulative calls and distinct units per look (rows) and arm (columns). A unit counts from the look
    window of its first event, so the last look's units are the arms' distinct units."""
    if not len(cumulative[design.arms[0]]):  # no events: no looks
        return {"n": np.empty((0, len(design.arms))), "units": np.empty((0, len(design.arms)))}
    calls = np.column_stack([cumulative[arm]["n"].to_numpy(dtype=float) for arm in design.arms])
    looks = cumulative[design.arms[0]]["window_ms"].to_numpy()
    first = first_seen_units(source, ["arm"], where=filt, window_s=look_every_s)
    table = first.pivot_table(index="window_ms", columns="arm", values="units", aggfunc="sum")
    table = table.reindex(index=looks, columns=list(design.arms)).fillna(0).cumsum()
    return {"n": calls, "units": table.to_numpy(dtype=float).reshape(len(looks), len(design.arms))}


def _family(design: Design) -> float:
    return design.alpha / max(1, len(design.challengers))


def _intersect(looks: pd.DataFrame) -> tuple[float, float, bool]:
    """The running intersection of the confidence sequences at the last look, and whether it held.

    An empty intersection means the effect moved over time (the sequences assume a fixed effect); then the
    last look's own sequence is returned, with False.
    """
    low, high = float(looks["ci_low"].cummax().iloc[-1]), float(looks["ci_high"].cummin().iloc[-1])
    if low <= high:
        return low, high, True
    return float(looks["ci_low"].iloc[-1]), float(looks["ci_high"].iloc[-1]), False


def smooth_counts(x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Agresti–Caffo for degenerate looks: an arm with no events or only events (x = 0 or x = n, n > 0) gets
    one event and one non-event added, so its variance is not 0. Without it a canary failing every call
    against a stable arm that never fails has zero variance in both arms, and the test would see nothing."""
    edge = (n > 0) & ((x == 0) | (x == n))
    return np.where(edge, x + 1, x), np.where(edge, n + 2, n)


def _proportions(a: pd.DataFrame, b: pd.DataFrame, x: str, n: str, alpha: float, tuning: float) -> pd.DataFrame:
    """The always-valid looks of b[x]/b[n] − a[x]/a[n] on cumulative counts (degenerate arms smoothed)."""
    xa, na = smooth_counts(a[x].astype(int).to_numpy(), a[n].astype(int).to_numpy())
    xb, nb = smooth_counts(b[x].astype(int).to_numpy(), b[n].astype(int).to_numpy())
    return always_valid_proportions(xa, na, xb, nb, alpha=alpha, tuning=tuning)


def _decision(design: Design, cumulative: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    a = cumulative[design.baseline]
    family, k = _family(design), len(design.challengers)
    rows, looks = [], []
    for arm in design.challengers:
        b = cumulative[arm]
        if not len(a) or a["success_n"].iloc[-1] == 0 or b["success_n"].iloc[-1] == 0:
            rows.append([arm, int(_final(cumulative, arm, "n")), math.nan, math.nan, math.nan, -math.inf,
                         math.inf, 1.0, 1.0, family, "inconclusive", "no calls in an arm yet"])
            continue
        seq = _proportions(a, b, "successes", "success_n", family, design.tuning)
        low, high, steady = _intersect(seq)
        p = float(seq["p_value"].iloc[-1] if steady else seq["p_look"].iloc[-1])
        verdict = "better" if low > 0 else "worse" if high < 0 else "inconclusive"
        note = "" if steady else CHANGED_NOTE
        ra, rb = a["successes"].iloc[-1] / a["success_n"].iloc[-1], b["successes"].iloc[-1] / b["success_n"].iloc[-1]
        rows.append([arm, int(b["n"].iloc[-1]), ra, rb, rb - ra, low, high, p, min(1.0, p * k), family, verdict,
                     note])
        looks.append(seq.assign(arm=arm, window_ms=a["window_ms"].to_numpy()))
    look_frame = pd.concat(looks, ignore_index=True) if looks else pd.DataFrame(columns=["arm", "n"])
    return pd.DataFrame(rows, columns=DECISION_COLUMNS), look_frame


def _guardrail_sequence(design: Design, a: pd.DataFrame, b: pd.DataFrame, name: str) -> tuple[float, float,
                                                                                              pd.DataFrame]:
    """(baseline value, arm value, always-valid looks) for one guardrail."""
    alpha, tuning = design.alpha, design.tuning
    if name in ("error_rate", "latency_tail"):
        x, n = ("errors", "n") if name == "error_rate" else ("latency_over", "latency_n")
        seq = _proportions(a, b, x, n, alpha, tuning)
        va = a[x].iloc[-1] / a[n].iloc[-1] if a[n].iloc[-1] else math.nan
        vb = b[x].iloc[-1] / b[n].iloc[-1] if b[n].iloc[-1] else math.nan
        return float(va), float(vb), seq
    est, var, size = [], [], []
    for (na, sa, qa), (nb, sb, qb) in zip(a[["cost_n", "cost_sum", "cost_sumsq"]].to_numpy(),
                                          b[["cost_n", "cost_sum", "cost_sumsq"]].to_numpy(), strict=True):
        (ma, va_), (mb, vb_) = mean_var(na, sa, qa), mean_var(nb, sb, qb)
        ok = na >= 2 and nb >= 2
        est.append(mb - ma if ok else 0.0)
        var.append(va_ / na + vb_ / nb if ok else 0.0)
        size.append(int(na + nb))
    seq = always_valid(est, var, size, alpha=alpha, tuning=tuning)
    ma, mb = mean_var(*a[["cost_n", "cost_sum", "cost_sumsq"]].iloc[-1])[0], \
        mean_var(*b[["cost_n", "cost_sum", "cost_sumsq"]].iloc[-1])[0]
    return float(ma), float(mb), seq


def _guardrails(design: Design, cumulative: dict[str, pd.DataFrame]) -> pd.DataFrame:
    a = cumulative[design.baseline]
    rows = []
    for arm in design.challengers:
        b = cumulative[arm]
        for name in GUARDRAILS:
            margin = float(getattr(design.guardrails, name))
            if not len(a):
                rows.append([arm, name, math.nan, math.nan, math.nan, -math.inf, math.inf, 1.0, margin, False])
                continue
            va, vb, seq = _guardrail_sequence(design, a, b, name)
            low, high, steady = _intersect(seq)
            p = float(seq["p_value"].iloc[-1] if steady else seq["p_look"].iloc[-1])
            rows.append([arm, name, va, vb, vb - va, low, high, p, margin, bool(low > margin)])
    return pd.DataFrame(rows, columns=GUARDRAIL_COLUMNS)


def _status(design: Design, arms: pd.DataFrame, decision: pd.DataFrame, guardrails: pd.DataFrame,
            srm: SRMResult | None) -> tuple[str, tuple[str, ...]]:
    if srm is None:
        return STATUS_KEEP, ("no events yet for this experiment",)
    reasons: list[str] = []
    stopped, winners = [], []
    for row in decision.itertuples():
        bad = guardrails[(guardrails["arm"] == row.arm) & guardrails["degraded"]]
        if len(bad):
            stopped.append(row.arm)
            reasons.append(f"{row.arm}: guardrail {', '.join(bad['guardrail'])} significantly worse than "
                           f"{design.baseline}")
        elif row.verdict == "worse":
            stopped.append(row.arm)
            reasons.append(f"{row.arm}: success rate significantly lower ({row.diff:+.3f}, p adj "
                           f"{row.p_adj:.3g})")
        elif row.verdict == "better":
            winners.append(row)
    if srm.flagged:
        reasons.insert(0, srm.message)
        winners = []
    for row in winners:
        reasons.append(f"{row.arm}: success rate significantly higher ({row.diff:+.3f} "
                       f"[{row.ci_low:+.3f}, {row.ci_high:+.3f}], p adj {row.p_adj:.3g}); guardrails hold")
    if winners:
        best = max(winners, key=lambda r: r.ci_low)
        return f"ship {best.arm}", tuple(reasons)
    if stopped and len(stopped) == len(design.challengers):
        return f"stop {', '.join(stopped)}", tuple(reasons)
    if not reasons:
        reasons.append("no significant difference yet; the always-valid test allows looking again later")
    return STATUS_KEEP, tuple(reasons)
