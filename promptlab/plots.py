"""Plots: plotly figures for notebooks (and standalone HTML reports); every function returns the figure.

Static PNGs for CI and reports without a browser: `to_png(fig, path)` draws the same data with matplotlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _plotly() -> Any:
    import plotly.graph_objects as go

    return go


def _error_bars(frame: pd.DataFrame, value: str, low: str, high: str) -> dict:
    return {"type": "data", "symmetric": False, "array": (frame[high] - frame[value]).tolist(),
            "arrayminus": (frame[value] - frame[low]).tolist()}


def plot_accuracy(results: Any, by_category: bool = True) -> Any:
    """Accuracy per variant (and per category) with 95% intervals, as grouped bars."""
    go = _plotly()
    table = results.by_category() if by_category else results.accuracy()
    x = "category" if by_category else "model"
    fig = go.Figure()
    for i, ((variant, model), group) in enumerate(table.groupby(["variant", "model"], sort=False)):
        fig.add_bar(name=f"{variant} · {model}", x=group[x].tolist(), y=group["accuracy"].tolist(),
                    error_y=_error_bars(group, "accuracy", "ci_low", "ci_high"),
                    marker_color=_COLORS[i % len(_COLORS)],
                    hovertemplate="%{x}: %{y:.1%}<extra>" + f"{variant}</extra>")
    fig.update_layout(barmode="group", yaxis={"title": "accuracy (95% CI)", "tickformat": ".0%", "range": [0, 1.05]},
                      title="Accuracy by " + ("category" if by_category else "variant"),
                      legend={"orientation": "h", "y": -0.2}, height=420)
    return fig


def plot_latency(results: Any) -> Any:
    """Latency distribution per variant × model (box plot of uncached calls)."""
    go = _plotly()
    df = results.df[~results.df["cached"].astype(bool) & results.df["latency_s"].notna()]
    fig = go.Figure()
    for i, ((variant, model), group) in enumerate(df.groupby(["variant", "model"], sort=False)):
        fig.add_box(y=group["latency_s"].tolist(), name=f"{variant} · {model}", boxpoints="outliers",
                    marker_color=_COLORS[i % len(_COLORS)])
    fig.update_layout(yaxis_title="latency (s)", title="Latency per call", height=380, showlegend=False)
    return fig


def to_png(fig: Any, path: str | Path) -> Path:
    """A static PNG of a bar or box figure via matplotlib (no browser, no kaleido needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4))
    for trace in fig.data:
        _draw_trace(axis, trace)
    axis.set_title(fig.layout.title.text or "")
    axis.legend(fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _draw_trace(axis: Any, trace: Any) -> None:
    if trace.type == "bar":
        err = trace.error_y
        yerr = [err.arrayminus, err.array] if err is not None and err.array is not None else None
        axis.errorbar(list(trace.x), list(trace.y), yerr=yerr, fmt="o", capsize=4, label=trace.name)
    elif trace.type == "box":
        axis.boxplot([list(trace.y)], positions=[len(axis.get_xticks())], tick_labels=[trace.name])
    else:
        axis.plot(list(trace.x), list(trace.y), marker="o", label=trace.name)
