"""Plotly figures for monitoring and alerts (returned, never shown).

`plot_metric` draws one metric of a `MetricsReport` over time per prompt version with its interval as a band;
`plot_dashboard` six of them in a grid; `plot_alerts` marks where alert checks fired on top of a metric.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import UnknownNameError

_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
_BANDS = ["rgba(76,114,176,0.18)", "rgba(221,132,82,0.18)", "rgba(85,168,104,0.18)", "rgba(196,78,82,0.18)",
          "rgba(129,114,179,0.18)", "rgba(147,120,96,0.18)", "rgba(218,139,195,0.18)", "rgba(140,140,140,0.18)"]
LABELS = {
    "success_rate": ("success rate", ".1%"), "format_failure_rate": ("format failures", ".1%"),
    "timeout_rate": ("timeouts", ".1%"), "error_rate": ("errors", ".1%"),
    "latency_p50_s": ("p50 latency (s)", ".2f"), "latency_p95_s": ("p95 latency (s)", ".2f"),
    "mean_latency_s": ("mean latency (s)", ".2f"), "tokens_per_call": ("tokens per call", ".0f"),
    "cost_per_call_usd": ("cost per call (USD)", ".5f"), "quality": ("quality", ".2f"), "n": ("calls", ",d"),
}
_DASHBOARD = ("success_rate", "format_failure_rate", "latency_p95_s", "quality", "cost_per_call_usd", "n")


def _bounds(metric: str) -> tuple[str, str] | None:
    if metric.endswith("_s") and metric.startswith("latency_"):
        stem = metric[: -len("_s")]
        return f"{stem}_low_s", f"{stem}_high_s"
    if metric in ("n", "tokens_per_call", "mean_latency_s"):
        return None
    return f"{metric}_low", f"{metric}_high"


def _groups(report: Any) -> list[tuple[str, pd.DataFrame]]:
    keys = [k for k in report.by if k in report.df]
    if not keys:
        return [("all", report.df)]
    out = []
    for key, part in report.df.groupby(keys, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        out.append((" · ".join("NA" if k is None else str(k) for k in key), part))
    return out


def _add_metric(fig: Any, report: Any, metric: str, row: int | None = None, col: int | None = None,
                legend: bool = True) -> None:
    where = {"row": row, "col": col} if row else {}
    bounds = _bounds(metric)
    for i, (name, part) in enumerate(_groups(report)):
        x = part["window_start"].tolist()
        if bounds and bounds[0] in part:
            low, high = part[bounds[0]].clip(lower=-1e12), part[bounds[1]].clip(upper=1e12)
            fig.add_scatter(x=x + x[::-1], y=high.tolist() + low.tolist()[::-1], fill="toself", line={"width": 0},
                            fillcolor=_BANDS[i % len(_BANDS)], hoverinfo="skip", showlegend=False, **where)
        fig.add_scatter(x=x, y=part[metric].tolist(), mode="lines+markers", name=name, legendgroup=name,
                        showlegend=legend, line={"color": _COLORS[i % len(_COLORS)]}, marker={"size": 4}, **where)


def plot_metric(report: Any, metric: str = "success_rate") -> Any:
    """One metric of a `MetricsReport` over time per group, its interval drawn as a band."""
    import plotly.graph_objects as go

    if metric not in report.df:
        raise UnknownNameError(f"metric={metric!r} is not a column of the report; use one of {sorted(LABELS)!r}.")
    label, fmt = LABELS.get(metric, (metric, ""))
    fig = go.Figure()
    _add_metric(fig, report, metric)
    band = f" ({100 * report.confidence:.0f}% intervals)" if _bounds(metric) else ""
    fig.update_layout(title=f"{label} per window{band}", yaxis={"title": label, "tickformat": fmt.lstrip(",")},
                      height=380, legend={"orientation": "h", "y": -0.2})
    return fig


def plot_dashboard(report: Any, metrics: tuple[str, ...] = _DASHBOARD) -> Any:
    """A grid of metrics over time (two columns), one legend for the groups."""
    from plotly.subplots import make_subplots

    rows = (len(metrics) + 1) // 2
    fig = make_subplots(rows=rows, cols=2, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[LABELS.get(m, (m, ""))[0] for m in metrics])
    for i, metric in enumerate(metrics):
        _add_metric(fig, report, metric, row=i // 2 + 1, col=i % 2 + 1, legend=i == 0)
        fmt = LABELS.get(metric, (metric, ""))[1]
        fig.update_yaxes(tickformat=fmt.lstrip(",").replace("d", ""), row=i // 2 + 1, col=i % 2 + 1)
    fig.update_layout(height=280 * rows, title="Prompt metrics per window", legend={"orientation": "h", "y": -0.08})
    return fig


ALERT_METRICS = {"p95_latency_ms": ("latency_p95_s", 1000.0), "p50_latency_ms": ("latency_p50_s", 1000.0),
                 "quality_score": ("quality", 1.0)}
"""Alert metric → (report column, scale to the alert's unit); other metrics have the same name in both."""


def plot_alerts(report: Any, checks: pd.DataFrame, metric: str = "format_failure_rate") -> Any:
    """A metric of a `MetricsReport` over time with the windows where an alert check on it fired marked
    (``checks``: `AlertReport.checks`, e.g. from `AlertManager.replay`; ``metric``: an alert metric name)."""
    column, scale = ALERT_METRICS.get(metric, (metric, 1.0))
    fig = plot_metric(report, column)
    fired = checks[(checks["state"] == "firing") & (checks["metric"] == metric)]
    if len(fired):
        start = pd.to_datetime(fired["window_start"]).tolist()
        fig.add_scatter(x=start, y=(fired["value"] / scale).tolist(), mode="markers", name="alert fired",
                        text=fired["rule"].tolist(), marker={"color": "#C44E52", "size": 11, "symbol": "x"})
    return fig
