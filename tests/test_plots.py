"""Plots return figures carrying the numbers they claim to show; PNGs are real images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import promptlab as pl
from promptlab.evaluation._results import build_frame
from promptlab.notebook import _plots as plots
from promptlab.stats import _planning as planning
from promptlab.stats._comparison import compare
from promptlab.stats._sequential import always_valid_proportions


def results() -> pl.Results:
    rng = np.random.default_rng(1)
    rows = []
    for variant, rate, cost in (("A", 0.6, 0.002), ("B", 0.85, 0.004), ("C", 0.55, 0.001)):
        for i in range(60):
            rows.append({"case_id": f"c{i}", "variant": variant, "model": "fake:m", "repeat": 0,
                         "category": ["happy_path", "edge_case", "adversarial"][i % 3], "input": "x",
                         "output": "y", "expected": "y", "passed": bool(rng.random() < rate),
                         "latency_s": float(rng.lognormal(-1, 0.3)), "cost_usd": cost, "cached": False})
    return pl.Results(build_frame(rows, "r"))


def test_plot_significance_marks_significant_variants():
    cmp = compare(results(), baseline="A")
    fig = plots.plot_significance(cmp)
    significant, other = fig.data
    table = cmp.df.set_index("variant")
    assert table.loc["B", "verdict"] == "better"
    assert list(significant.x) == [table.loc["B", "diff"]]
    assert significant.error_x.array[0] == pytest.approx(table.loc["B", "ci_high"] - table.loc["B", "diff"])
    assert len(other.x) == 1
    assert len(plots.plot_significance(cmp, by_category=True).data[0].x) + \
        len(plots.plot_significance(cmp, by_category=True).data[1].x) == 6


def test_plot_significance_draws_the_displayed_simultaneous_interval():
    cmp = compare(results(), baseline="A")
    fig = plots.plot_significance(cmp)
    drawn = {name: bar for trace in fig.data for name, *bar in
             zip(trace.y, trace.x, trace.error_x.arrayminus, trace.error_x.array, strict=True)}
    for row in cmp.df.itertuples():
        x, minus, plus = drawn[f"{row.variant} · {row.model}"]
        assert (x - minus, x + plus) == pytest.approx((row.ci_low, row.ci_high))
        assert row.ci_level == 1 - 0.05 / 2 and row.ci_low < row.ci_low_unadj  # two variants: each at 97.5%
    assert "simultaneous" in fig.layout.title.text


def test_plot_latency_leaves_cached_answers_out():
    data = results()
    data.df.loc[data.df["variant"] == "C", "cached"] = True
    data.df.loc[data.df.index[:10], "cached"] = True  # ten of A's answers
    boxes = {trace.name: list(trace.y) for trace in plots.plot_latency(data).data}
    assert set(boxes) == {"A · fake:m", "B · fake:m"} and len(boxes["A · fake:m"]) == 50
    assert data.latency().set_index("variant").loc["A", "n"] == 50


def test_pareto_frontier_by_hand():
    points = pd.DataFrame({"variant": list("ABCD"), "cost_per_1k_calls_usd": [1.0, 2.0, 3.0, 2.5],
                           "accuracy": [0.6, 0.8, 0.7, 0.9]})
    assert list(plots.pareto_frontier(points)["variant"]) == ["A", "B", "D"]


def test_plot_cost_quality_draws_the_frontier():
    fig = plots.plot_cost_quality(results())
    points, frontier = fig.data
    assert len(points.x) == 3 and list(frontier.x) == sorted(frontier.x)
    assert 1.0 in list(frontier.x)  # C is cheapest (0.001 USD per call = 1 USD per 1k): always on the frontier


def test_plot_sequential_uses_the_confidence_sequence():
    looks = always_valid_proportions([20, 100, 200], [100, 500, 1000], [24, 120, 240], [100, 500, 1000])
    fig = plots.plot_sequential(looks)
    p_trace = fig.data[-1]
    assert list(p_trace.y) == list(looks["p_value"])
    # docs/statistics.md, T1 data at the last look: always-valid p 0.3456753217
    assert p_trace.y[-1] == pytest.approx(0.3456753217, abs=1e-9)


def test_plot_power_matches_the_planner():
    fig = plots.plot_power(0.20, deltas=[0.02])
    # docs/statistics.md: 0.20 -> 0.22 at alpha 0.05 two-sided, power 0.8 -> 6510 per arm
    assert list(fig.data[0].y) == [6510] == [planning.sample_size_two_proportions(0.2, 0.22)]
    paired = plots.plot_power(omega2=0.1161, deltas=[0.03])
    assert list(paired.data[0].y) == [1013]
    with pytest.raises(ValueError, match="exactly one"):
        plots.plot_power()


@pytest.mark.parametrize("make", ["accuracy", "latency", "significance", "cost_quality", "sequential"])
def test_static_png(tmp_path, make):
    data = results()
    figures = {
        "accuracy": lambda: plots.plot_accuracy(data),
        "latency": lambda: plots.plot_latency(data),
        "significance": lambda: plots.plot_significance(compare(data, baseline="A")),
        "cost_quality": lambda: plots.plot_cost_quality(data),
        "sequential": lambda: plots.plot_sequential(always_valid_proportions([5, 50], [50, 500], [8, 70], [50, 500])),
    }
    path = plots.to_png(figures[make](), tmp_path / f"{make}.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
