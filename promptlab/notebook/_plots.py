"""Plots: plotly figures for notebooks (and standalone HTML reports); every function returns the figure.

`plot_accuracy`, `plot_latency` (results), `plot_significance` (a comparison), `plot_cost_quality` (results
across variants × models, with the Pareto frontier), `plot_sequential` (an A/B test over time),
`plot_power` (planning). Static PNGs for CI and reports without a browser: `to_png(fig, path)` draws the
same data with matplotlib (no kaleido, no browser).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ArgumentError

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
    """Latency distribution per variant × model (box plot of the calls made in the run: cached answers are left
    out, as in `Results.latency`)."""
    from ..stats._quantiles import live_latency

    go = _plotly()
    df = results.df.assign(latency_s=live_latency(results.df))
    df = df[df["latency_s"].notna()]
    fig = go.Figure()
    for i, ((variant, model), group) in enumerate(df.groupby(["variant", "model"], sort=False)):
        fig.add_box(y=group["latency_s"].tolist(), name=f"{variant} · {model}", boxpoints="outliers",
                    marker_color=_COLORS[i % len(_COLORS)])
    fig.update_layout(yaxis_title="latency (s)", title="Latency per call", height=380, showlegend=False)
    return fig


def _comparison_frame(comparison: Any) -> pd.DataFrame:
    return comparison.df if hasattr(comparison, "df") else comparison


def plot_significance(comparison: Any, by_category: bool = False) -> Any:
    """Each variant's difference from the baseline with its interval (per category with ``by_category``).

    The intervals are the comparison's displayed ones — simultaneous across the variants (FCR-adjusted across
    categories), the footing of the adjusted p — so a solid point (verdict better / worse) never has an
    interval that crosses 0 and a hollow one (no detectable difference, borderline) never one that excludes it
    without its note saying why."""
    go = _plotly()
    table = _comparison_frame(comparison.by_category() if by_category else comparison).copy()
    label = table["variant"].astype(str) + " · " + table["model"].astype(str)
    if by_category:
        label = label + " · " + table["category"].astype(str)
    significant = table["verdict"].isin(["better", "worse"])
    fig = go.Figure()
    for flag, name, symbol in ((True, "difference found (adjusted p < alpha, interval excludes 0)", "circle"),
                               (False, "no detectable difference or borderline", "circle-open")):
        part, y = table[significant == flag], label[significant == flag]
        fig.add_scatter(x=part["diff"].tolist(), y=y.tolist(), mode="markers", name=name,
                        marker={"symbol": symbol, "size": 11, "color": "#C44E52" if flag else "#4C72B0"},
                        error_x=_error_bars(part, "diff", "ci_low", "ci_high"),
                        customdata=part[["p_adj", "n"]].to_numpy().tolist(),
                        hovertemplate=("diff %{x:.3f}<br>p_adj %{customdata[0]:.4f}<br>n %{customdata[1]}"
                                       "<extra></extra>"))
    fig.add_vline(x=0, line_dash="dash", line_color="#888")
    baseline = table["baseline"].iloc[0] if len(table) else "baseline"
    footing = "FCR-adjusted" if by_category else "simultaneous"
    fig.update_layout(title=f"Difference from {baseline} ({footing} intervals, the verdicts' footing; paired by case)",
                      xaxis_title="difference",
                      height=max(300, 60 + 40 * len(table)), legend={"orientation": "h", "y": -0.25})
    return fig


def pareto_mask(cost: pd.Series, accuracy: pd.Series) -> pd.Series:
    """True for points no other point dominates (cost ≤ and accuracy ≥, one strictly); unknown cost or
    accuracy is never on the frontier.

    >>> pareto_mask(pd.Series([0.0, 1.0, 2.0, 3.0]), pd.Series([0.5, 0.8, 0.7, 0.9])).tolist()
    [True, True, False, True]
    """
    known = cost.notna() & accuracy.notna()
    out = []
    for i in cost.index:
        dominated = known & (cost <= cost[i]) & (accuracy >= accuracy[i]) & (
            (cost < cost[i]) | (accuracy > accuracy[i]))
        out.append(bool(known[i]) and not bool(dominated.any()))
    return pd.Series(out, index=cost.index, dtype=bool)


def pareto_frontier(points: pd.DataFrame, cost: str = "cost_per_1k_calls_usd",
                    quality: str = "accuracy") -> pd.DataFrame:
    """The rows no other row beats on both cost (lower) and quality (higher), sorted by cost."""
    frontier = points[pareto_mask(points[cost], points[quality])]
    return frontier.sort_values([cost, quality], ascending=[True, False])


def cost_quality_table(results: Any) -> pd.DataFrame:
    """Accuracy with CI and cost per 1,000 calls for each variant × model (the data of `plot_cost_quality`)."""
    accuracy = results.accuracy()[["variant", "model", "accuracy", "ci_low", "ci_high"]]
    cost = results.cost()[["variant", "model", "cost_per_1k_calls_usd"]]
    return accuracy.merge(cost, on=["variant", "model"], how="left")


def plot_cost_quality(results: Any) -> Any:
    """Accuracy (95% CI) against cost per 1,000 calls for each variant × model, with the Pareto frontier.
    Unpriced models (cost NA) cannot be placed and are listed in the title."""
    go = _plotly()
    table = cost_quality_table(results)
    frontier = pareto_frontier(table)
    fig = go.Figure()
    placed = table.dropna(subset=["cost_per_1k_calls_usd"])
    fig.add_scatter(x=placed["cost_per_1k_calls_usd"].tolist(), y=placed["accuracy"].tolist(), mode="markers+text",
                    text=(placed["variant"] + " · " + placed["model"]).tolist(), textposition="top center",
                    error_y=_error_bars(placed, "accuracy", "ci_low", "ci_high"), name="variant × model",
                    marker={"size": 10, "color": "#4C72B0"})
    fig.add_scatter(x=frontier["cost_per_1k_calls_usd"].tolist(), y=frontier["accuracy"].tolist(),
                    mode="lines", name="Pareto frontier", line={"color": "#C44E52", "dash": "dot"})
    unpriced = sorted(set(table["model"]) - set(placed["model"]))
    title = "Accuracy vs cost per 1,000 calls" + (f" (unpriced, not shown: {', '.join(unpriced)})" if unpriced else "")
    fig.update_layout(title=title, xaxis_title="USD per 1,000 calls", height=420,
                      yaxis={"title": "accuracy (95% CI)", "tickformat": ".0%"})
    return fig


def plot_sequential(looks: pd.DataFrame, alpha: float = 0.05, label: str = "B − A") -> Any:
    """An A/B test over time: the always-valid p-value (running minimum) and the confidence sequence.

    Args:
        looks: the DataFrame of `promptlab.stats._sequential.always_valid_proportions` (or `always_valid`) called
            with cumulative counts per look (columns n, estimate, p_value, ci_low, ci_high).
        alpha: the test's error rate, drawn as a line on the p-value panel.
        label: what the difference is, e.g. ``"canary − live"`` (the top panel's title).
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=(f"difference ({label}) with its confidence sequence", "always-valid p-value"))
    n = looks["n"].tolist()
    fig.add_scatter(x=n + n[::-1], y=looks["ci_high"].tolist() + looks["ci_low"].tolist()[::-1], fill="toself",
                    line={"width": 0}, fillcolor="rgba(76,114,176,0.2)", name="confidence sequence", row=1, col=1)
    fig.add_scatter(x=n, y=looks["estimate"].tolist(), name="estimate", line={"color": "#4C72B0"}, row=1, col=1)
    fig.add_hline(y=0, line_dash="dash", line_color="#888", row=1, col=1)
    fig.add_scatter(x=n, y=looks["p_value"].tolist(), name="p (always valid)", line={"color": "#C44E52"},
                    row=2, col=1)
    fig.add_hline(y=alpha, line_dash="dot", line_color="#C44E52", row=2, col=1)
    fig.update_yaxes(type="log", row=2, col=1)
    fig.update_xaxes(title_text="units in both arms", row=2, col=1)
    fig.update_layout(height=520, title="Sequential A/B test (safe to watch while it runs)")
    return fig


def plot_power(p_base: float | None = None, *, omega2: float | None = None, alpha: float = 0.05,
               power: float = 0.8, deltas: Any = None) -> Any:
    """Sample size against the detectable difference: two proportions from ``p_base`` (per arm), or a
    paired eval with per-case difference variance ``omega2`` from a pilot (cases)."""
    import numpy as np

    from ..stats import _planning as planning

    go = _plotly()
    if (p_base is None) == (omega2 is None):
        raise ArgumentError("give exactly one of p_base (two proportions) or omega2 (paired eval from a pilot)")
    deltas = np.asarray(deltas if deltas is not None else np.linspace(0.01, 0.2, 40), dtype=float)
    if p_base is not None:
        deltas = deltas[p_base + deltas < 1]
        sizes = [planning.sample_size_two_proportions(p_base, p_base + d, alpha, power) for d in deltas]
        y_title, name = "units per arm", f"two proportions from {p_base:.0%}"
    else:
        sizes = [planning.sample_size_paired(omega2, d, alpha, power) for d in deltas]
        y_title, name = "cases (paired)", f"paired, ω² = {omega2:.4f}"
    fig = go.Figure(go.Scatter(x=(100 * deltas).tolist(), y=sizes, mode="lines", name=name))
    fig.update_layout(title=f"Sample size for {power:.0%} power at α = {alpha}",
                      xaxis_title="detectable difference (points)", yaxis={"title": y_title, "type": "log"},
                      height=380)
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
    if axis.get_legend_handles_labels()[1]:
        axis.legend(fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _draw_trace(axis: Any, trace: Any) -> None:
    if trace.type == "bar" or (trace.type == "scatter" and trace.mode and "markers" in trace.mode):
        yerr = _err(trace.error_y)
        xerr = _err(getattr(trace, "error_x", None))
        axis.errorbar(list(trace.x), list(trace.y), yerr=yerr, xerr=xerr, fmt="o", capsize=4, label=trace.name)
    elif trace.type == "box":
        axis.boxplot([list(trace.y)], positions=[len(axis.get_xticks())], tick_labels=[trace.name])
    else:
        axis.plot(list(trace.x), list(trace.y), label=trace.name)


def _err(error: Any) -> Any:
    if error is None or error.array is None:
        return None
    return [list(error.arrayminus), list(error.array)]
