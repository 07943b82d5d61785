"""Alerts: rules checked over windows of the event log, with a minimum sample and a statistical test.

A rule fires only when the data *show* the threshold is crossed, not when an estimate wanders past it:

=================== ===================================================================================
rule                fires when (one-sided, at the rules' ``confidence``, on ≥ ``min_samples`` calls)
=================== ===================================================================================
rate ``min``/``max`` the Wilson bound is past the threshold (success rate's upper bound < 0.95 …)
p50/p95 ``max``      the lower bound of the quantile (order statistic, to its sketch bucket's edge) is over it
mean ``min``/``max`` the CLT bound of the mean (quality, cost) is past the threshold
regression (rate,    the current window is worse than the baseline window by more than the tolerance:
mean)                Welch's test of current − (baseline ± tolerance) in the bad direction
regression (p50/p95) more than the quantile's tail share of calls is slower than baseline p95 + tolerance
                     (an exact binomial test; "p95 ≤ x" ⟺ "at most 5% of calls are slower than x"; the
                     slow calls counted from the sketch's buckets wholly above, so it errs towards quiet)
=================== ===================================================================================

Latency quantiles come from DDSketch bucket counts the engine computes (`promptlab.production._sketch`,
within 1% of the exact sample quantiles): no check reads raw rows.

With 3 calls nothing fires ("insufficient data"); with a rate right at its threshold a check fires in about
1 − confidence of windows (raise ``confidence`` for paging rules). Shadow calls are not alerted on.

`AlertManager` runs the checks (`evaluate` now, `replay` over history), and notifies its sinks — a Python
callable, the ``logging`` module, an HTTP webhook (JSON POST) — at most once per rule and prompt version per
``cooldown_minutes`` (later firings in the cooldown are counted as suppressed duplicates). A failing sink
never stops the others or the checks; its error is kept in the report.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import pandas as pd
from scipy import stats as st

from ..errors import AlertDeliveryError, ArgumentError
from ..stats._intervals import wilson_interval
from ..stats._sequential import welch_test
from ._alertrules import HIGHER_IS_BETTER, AlertRules, RuleSpec, load_alert_rules
from ._query import EventFilter, Source, aggregate, latency_sketches, mean_var
from ._schema import now_ms, to_ms
from ._sketch import LatencySketch, group_sketches

logger = logging.getLogger(__name__)

CHECK_COLUMNS = ["rule", "metric", "kind", "severity", "prompt", "version", "window_start", "window_end", "n",
                 "value", "bound", "threshold", "baseline", "p_value", "state", "message"]
"""Columns of `AlertReport.checks`: one row per rule × prompt version × evaluation."""
_RATES = {"success_rate": ("successes", "success_n"), "format_failure_rate": ("format_failures", "format_n"),
          "timeout_rate": ("timeouts", "n"), "error_rate": ("errors", "n")}
_MEANS = {"quality_score": "quality", "cost_per_call_usd": "cost"}
_QUANTILES = {"p50_latency_ms": 0.5, "p95_latency_ms": 0.95}
GROUP = ("prompt", "version")


# ---- alerts and sinks ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Alert:
    """A fired rule, as sent to sinks (`to_dict` is the webhook's JSON body)."""

    rule: str
    severity: str
    metric: str
    prompt: str | None
    version: str | None
    window_start: str
    window_end: str
    n: int
    value: float
    bound: float | None
    threshold: float
    baseline: float | None
    p_value: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and inf become None)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


class Sink(Protocol):
    """Where alerts go: anything with ``send(alert)``."""

    def send(self, alert: Alert) -> None:
        """Deliver one alert (raise on failure; the manager records the error and carries on)."""
        ...


@dataclass(frozen=True)
class CallableSink:
    """Calls a Python function with each `Alert` (e.g. to page through your own client)."""

    fn: Callable[[Alert], Any]

    def send(self, alert: Alert) -> None:
        """Call the function."""
        self.fn(alert)


@dataclass(frozen=True)
class LoggingSink:
    """Logs each alert's message (``critical`` rules at CRITICAL, others at ``level``)."""

    logger_name: str = "promptlab.alerts"
    level: int = logging.WARNING

    def send(self, alert: Alert) -> None:
        """Log the message."""
        level = logging.CRITICAL if alert.severity == "critical" else self.level
        logging.getLogger(self.logger_name).log(level, "%s", alert.message)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebhookSink:
    """POSTs each alert as JSON to a URL (Slack-style incoming webhooks, PagerDuty events, your service).

    The URL and headers often carry a token, so neither appears in the repr, in logs or in errors — only the
    host does.

    Args:
        url: the webhook URL.
        timeout_s: seconds before a delivery is abandoned.
        headers: extra HTTP headers (e.g. an authorization header).
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0, headers: dict[str, str] | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ArgumentError("a webhook URL must be http(s)://host/...; check the value you passed (not shown: "
                                "it may hold a token).")
        self._url, self._headers, self.timeout_s = url, dict(headers or {}), timeout_s
        self.host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname

    def send(self, alert: Alert) -> None:
        """POST the alert; raise `AlertDeliveryError` naming the host on failure."""
        import httpx

        trust_env = not _is_loopback(urlsplit(self._url).hostname)  # never proxy a loopback address
        try:
            with httpx.Client(timeout=self.timeout_s, trust_env=trust_env) as client:
                response = client.post(self._url, json=alert.to_dict(), headers=self._headers)
        except httpx.HTTPError as exc:
            raise AlertDeliveryError(f"webhook to {self.host!r} failed: {type(exc).__name__}. Check that the "
                                     "receiver is up and reachable.") from None
        if response.status_code >= 300:
            raise AlertDeliveryError(f"webhook to {self.host!r} answered HTTP {response.status_code}. Check the "
                                     "receiver's logs and the URL's token.")

    def __repr__(self) -> str:
        return f"WebhookSink(host={self.host!r})"


# ---- checks ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Window:
    """The aggregates of one window, by (prompt, version)."""

    start_ms: int
    end_ms: int
    counts: dict[tuple, pd.Series]
    latencies: dict[tuple, LatencySketch] = field(default_factory=dict)


def _read_window(source: Source, where: EventFilter, start: int, end: int, latency: bool) -> _Window:
    filt = where.between(start, end)
    agg = aggregate(source, GROUP, where=filt)
    counts = {(r["prompt"], r["version"]): r for _, r in agg.iterrows()}
    lat: dict[tuple, LatencySketch] = {}
    if latency and counts:
        lat = group_sketches(latency_sketches(source, GROUP, where=filt), GROUP)
    return _Window(start, end, counts, lat)


def _sample(rule: RuleSpec, row: pd.Series, lat: LatencySketch | None) -> int:
    if rule.metric in _RATES:
        return int(row[_RATES[rule.metric][1]])
    if rule.metric in _MEANS:
        return int(row[f"{_MEANS[rule.metric]}_n"])
    return 0 if lat is None else lat.n


def _threshold_check(rule: RuleSpec, row: pd.Series, lat: LatencySketch | None,
                     confidence: float) -> tuple[float, float, bool]:
    """(value, one-sided bound, firing) for a ``min``/``max`` rule."""
    two_sided, thr, is_min = 2 * confidence - 1, rule.threshold, rule.kind == "min"
    if rule.metric in _RATES:
        k, n = _RATES[rule.metric]
        ci = wilson_interval(int(row[k]), int(row[n]), two_sided)
        value, low, high = ci.estimate, ci.low, ci.high
    elif rule.metric in _MEANS:
        p = _MEANS[rule.metric]
        mean, var = mean_var(row[f"{p}_n"], row[f"{p}_sum"], row[f"{p}_sumsq"])
        half = float(st.norm.ppf(confidence)) * math.sqrt(var / row[f"{p}_n"]) if var == var else math.inf
        value, low, high = mean, mean - half, mean + half
    else:
        ci = lat.interval(_QUANTILES[rule.metric], two_sided)
        value, low, high = 1000 * ci.estimate, 1000 * ci.low, 1000 * ci.high
    bound = high if is_min else low
    return float(value), float(bound), bool(bound < thr if is_min else bound > thr)


def _regression_check(rule: RuleSpec, cur: pd.Series, base: pd.Series, lat_cur: LatencySketch | None,
                      lat_base: LatencySketch | None, confidence: float) -> tuple[float, float, float, bool]:
    """(value, baseline value, p, firing) for a ``regression`` rule."""
    tol, up = rule.threshold, rule.metric not in HIGHER_IS_BETTER  # up: a rise is bad
    if rule.metric in _QUANTILES:
        q = _QUANTILES[rule.metric]
        base_q, value = lat_base.quantile(q), lat_cur.quantile(q)
        slow = lat_cur.count_above(base_q + tol / 1000)
        p = float(st.binomtest(slow, lat_cur.n, 1 - q, alternative="greater").pvalue)
        return 1000 * value, 1000 * base_q, p, p < 1 - confidence
    (mc, vc, nc), (mb, vb, nb) = _moments(rule.metric, cur), _moments(rule.metric, base)
    shifted = mb + tol if up else mb - tol
    if vb + vc == 0:  # no spread in either window: the comparison is exact
        worse = mc > shifted if up else mc < shifted
        return mc, mb, 0.0 if worse else 1.0, bool(worse)
    res = welch_test(shifted, vb, nb, mc, vc, nc, alternative="greater" if up else "less")
    return mc, mb, float(res.p_value), bool(res.p_value < 1 - confidence)


def _moments(metric: str, row: pd.Series) -> tuple[float, float, int]:
    """(mean, variance, n) of a rate (as a 0/1 mean) or a mean metric."""
    if metric in _RATES:
        k, n = (int(row[c]) for c in _RATES[metric])
        p = k / n
        return p, p * (1 - p), n
    prefix = _MEANS[metric]
    n = int(row[f"{prefix}_n"])
    mean, var = mean_var(n, row[f"{prefix}_sum"], row[f"{prefix}_sumsq"])
    return mean, var, n


def _fmt(metric: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "NA" if value is None or math.isnan(value) else str(value)
    if metric in _RATES:
        return f"{100 * value:.1f}%"
    if metric in _QUANTILES:
        return f"{value:,.0f} ms"
    return f"{value:.3g}" if metric == "quality_score" else f"{value:.5f}"


def _message(rule: RuleSpec, key: tuple, row: dict, confidence: float) -> str:
    who = f"{key[0]}@{key[1]}" if key[1] is not None else str(key[0])
    window = f"{row['window_start']:%Y-%m-%d %H:%M}–{row['window_end']:%H:%M} UTC, n={row['n']}"
    if rule.kind == "regression":
        return (f"{who}: {rule.describe()} violated — {rule.metric} {_fmt(rule.metric, row['value'])} vs "
                f"baseline {_fmt(rule.metric, row['baseline'])} (p={row['p_value']:.2g}; {window})")
    return (f"{who}: {rule.describe()} violated — {rule.metric} {_fmt(rule.metric, row['value'])}, one-sided "
            f"{100 * confidence:.0f}% bound {_fmt(rule.metric, row['bound'])} ({window})")


def _check_row(rule: RuleSpec, key: tuple, now: _Window, before: _Window | None, rules: AlertRules) -> dict:
    row, lat = now.counts[key], now.latencies.get(key)
    out = {"rule": rule.name, "metric": rule.metric, "kind": rule.kind, "severity": rule.severity,
           "prompt": key[0], "version": key[1], "window_start": _ts(now.start_ms), "window_end": _ts(now.end_ms),
           "n": _sample(rule, row, lat), "value": math.nan, "bound": math.nan, "threshold": rule.threshold,
           "baseline": math.nan, "p_value": math.nan, "state": "insufficient data", "message": ""}
    need = rules.samples(rule)
    if rule.kind == "regression":
        need = max(need, 2)
        base = None if before is None else before.counts.get(key)
        lat_base = None if before is None else before.latencies.get(key)
        if out["n"] < need or base is None or _sample(rule, base, lat_base) < need:
            return out
        value, baseline, p, firing = _regression_check(rule, row, base, lat, lat_base, rules.confidence)
        out.update(value=value, baseline=baseline, p_value=p)
    else:
        if out["n"] < need:
            return out
        value, bound, firing = _threshold_check(rule, row, lat, rules.confidence)
        out.update(value=value, bound=bound)
    out["state"] = "firing" if firing else "ok"
    if firing:
        out["message"] = _message(rule, key, out, rules.confidence)
    return out


def _ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


def check_rules(source: Source, rules: AlertRules, *, now: Any = None,
                where: EventFilter | None = None) -> pd.DataFrame:
    """Run every rule on the window ending at ``now`` (and its baseline) for every prompt version seen.

    Returns one row per rule × prompt version (`CHECK_COLUMNS`), with ``state`` ``ok``, ``firing`` or
    ``insufficient data``. Nothing is sent anywhere: `AlertManager` does that.
    """
    end = now_ms() if now is None else to_ms(now)
    base = where or EventFilter(exclude_arms=("shadow",))
    rows = []
    for window_s in sorted({rules.window_s(r) for r in rules.rules}):
        chosen = [r for r in rules.rules if rules.window_s(r) == window_s]
        latency = any(r.metric in _QUANTILES for r in chosen)
        start = end - int(round(window_s * 1000))
        current = _read_window(source, base, start, end, latency)
        before = None
        if any(r.kind == "regression" for r in chosen) and current.counts:
            before = _read_window(source, base, start - int(round(rules.baseline_minutes * 60_000)), start, latency)
        for key in current.counts:
            rows += [_check_row(rule, key, current, before, rules) for rule in chosen if rule.applies_to(key[0])]
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


# ---- the manager -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class AlertReport:
    """The outcome of one or more evaluations.

    Attributes:
        checks: every check (`CHECK_COLUMNS`).
        alerts: the alerts sent to the sinks (after cooldown and dedupe).
        suppressed: firing checks not sent because the same rule and version fired within the cooldown.
        sink_errors: delivery failures, as messages.
    """

    checks: pd.DataFrame
    alerts: tuple[Alert, ...]
    suppressed: int
    sink_errors: tuple[str, ...]

    @property
    def firing(self) -> pd.DataFrame:
        """The checks that fired (sent or suppressed)."""
        return self.checks[self.checks["state"] == "firing"].reset_index(drop=True)

    def __repr__(self) -> str:
        return (f"AlertReport(checks={len(self.checks)}, firing={len(self.firing)}, notified={len(self.alerts)}, "
                f"suppressed={self.suppressed}, sink_errors={len(self.sink_errors)})")

    def _repr_html_(self) -> str:
        from .._display import alerts_html

        return alerts_html(self)


def _as_sink(sink: Sink | Callable[[Alert], Any]) -> Sink:
    return sink if hasattr(sink, "send") else CallableSink(sink)


class AlertManager:
    """Evaluates alert rules on an event log and notifies sinks, with cooldown and dedupe.

    Args:
        rules: `AlertRules`, a rules file (``configs/alerts.yaml`` or ``configs/monitoring.yaml``) or None for
            the defaults.
        sinks: where alerts go: `Sink` objects or plain callables.
        where: which events to watch (default: everything but shadow calls).
    """

    def __init__(self, rules: AlertRules | str | Path | None = None,
                 sinks: Sequence[Sink | Callable[[Alert], Any]] = (), *, where: EventFilter | None = None):
        self.rules = rules if isinstance(rules, AlertRules) else load_alert_rules(rules)
        self.sinks = [_as_sink(s) for s in sinks]
        self.where = where
        self._last: dict[tuple, int] = {}

    def evaluate(self, source: Source, *, now: Any = None) -> AlertReport:
        """Check the window ending ``now`` (default: the current time) and notify new alerts."""
        end = now_ms() if now is None else to_ms(now)
        checks = check_rules(source, self.rules, now=end, where=self.where)
        alerts, suppressed, errors = self._notify(checks, end)
        return AlertReport(checks, tuple(alerts), suppressed, tuple(errors))

    def replay(self, source: Source, *, start: Any, end: Any, step_minutes: float | None = None) -> AlertReport:
        """Evaluate at every step from ``start`` to ``end`` as if live (cooldowns run on the replayed clock)."""
        step = int(round(60_000 * (step_minutes or self.rules.window_minutes)))
        first, last = to_ms(start), to_ms(end)
        reports = [self.evaluate(source, now=t) for t in range(first + step, last + 1, step)]
        checks = pd.concat([r.checks for r in reports], ignore_index=True) if reports else \
            pd.DataFrame(columns=CHECK_COLUMNS)
        return AlertReport(checks, tuple(a for r in reports for a in r.alerts), sum(r.suppressed for r in reports),
                           tuple(e for r in reports for e in r.sink_errors))

    def _notify(self, checks: pd.DataFrame, now: int) -> tuple[list[Alert], int, list[str]]:
        cooldown = int(round(self.rules.cooldown_minutes * 60_000))
        alerts, suppressed, errors = [], 0, []
        for row in checks[checks["state"] == "firing"].itertuples(index=False):
            key = (row.rule, row.prompt, row.version)
            if key in self._last and now - self._last[key] < cooldown:
                suppressed += 1
                continue
            self._last[key] = now
            alert = _alert(row)
            alerts.append(alert)
            errors += self._deliver(alert)
        return alerts, suppressed, errors

    def _deliver(self, alert: Alert) -> list[str]:
        errors = []
        for sink in self.sinks:
            try:
                sink.send(alert)
            except Exception as exc:  # one broken sink must not silence the others
                message = f"{sink!r}: {type(exc).__name__}: {exc}" if isinstance(exc, AlertDeliveryError) \
                    else f"{type(sink).__name__}: {type(exc).__name__}"
                errors.append(message)
                logger.warning("alert sink failed: %s", message)
        return errors

    def reset(self) -> None:
        """Forget cooldowns (the next firing of every rule notifies again)."""
        self._last.clear()

    def __repr__(self) -> str:
        return (f"AlertManager(rules={len(self.rules.rules)}, sinks={[type(s).__name__ for s in self.sinks]!r}, "
                f"window={self.rules.window_minutes:g} min, cooldown={self.rules.cooldown_minutes:g} min)")


def _alert(row: Any) -> Alert:
    def num(value: Any) -> float | None:
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)

    return Alert(row.rule, row.severity, row.metric, row.prompt, row.version,
                 row.window_start.isoformat(), row.window_end.isoformat(), int(row.n), float(row.value),
                 num(row.bound), float(row.threshold), num(row.baseline), num(row.p_value), row.message)

