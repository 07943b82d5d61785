"""Routing: the cheapest model whose Wilson lower bound meets the threshold, the Pareto frontier, the routing
table file and the production client's lookup."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

import promptlab as pl
from promptlab.errors import RoutingError
from promptlab.evaluation._results import build_frame
from promptlab.optimize import choose_model, load_routing_table, routing_table
from promptlab.optimize._routing import pareto_mask
from promptlab.providers import _prices as cost
from promptlab.providers._prices import set_price

# model → (price in, price out per 1M tokens, cases passed per category out of 20)
MODELS = {
    "cheap:m": ("0.10", "0.40", {"happy_path": 20, "adversarial": 10}),
    "mid:m": ("1.00", "4.00", {"happy_path": 20, "adversarial": 19}),
    "big:m": ("5.00", "20.00", {"happy_path": 20, "adversarial": 20}),
    "free:m": ("0", "0", {"happy_path": 12, "adversarial": 8}),
}


@pytest.fixture(autouse=True)
def _prices(monkeypatch):
    monkeypatch.setattr(cost, "_overrides", {})
    for model, (price_in, price_out, _) in MODELS.items():
        set_price(model, price_in, price_out)


def _rows(models=MODELS) -> list[dict]:
    rows = []
    for model, (price_in, price_out, passes) in models.items():
        for category, passed in passes.items():
            for i in range(20):
                usd = (float(price_in) * 100 + float(price_out) * 2) / 1e6 if price_in is not None else None
                rows.append({"case_id": f"{category}-{i}", "category": category, "variant": "A",
                             "prompt_name": "sentiment", "prompt_version": "1.0.0", "model": model,
                             "model_served": model, "repeat": 0, "passed": i < passed, "output": "x",
                             "input_tokens": 100, "output_tokens": 2, "cost_usd": usd})
    return rows


def _results(rows=None) -> pl.Results:
    meta = {"run_id": "run1", "finished_at": "2026-11-20T10:00:00+00:00"}
    return pl.Results(build_frame(rows or _rows(), "run1"), meta)


def test_cheapest_model_whose_lower_bound_meets_the_threshold():
    decision = choose_model(_results(), threshold=0.85)
    table = decision.candidates.set_index("model")
    # proportion_confint(30, 40, method="wilson") → (0.5981, 0.8580): cheap:m at 75% does not qualify
    assert table.loc["cheap:m", "ci_low"] == pytest.approx(proportion_confint(30, 40, method="wilson")[0], abs=1e-12)
    # proportion_confint(39, 40, method="wilson") → (0.8711863104, 0.9955743): mid:m qualifies at 97.5%
    assert table.loc["mid:m", "ci_low"] == pytest.approx(0.8711863104, abs=1e-9)
    assert decision.model == "mid:m" and decision.best == "big:m"
    assert decision.candidates["model"].tolist() == ["free:m", "cheap:m", "mid:m", "big:m"]  # cheapest first
    # (1.00 × 100 + 4.00 × 2) / 1e6 USD per call × 1,000 calls
    assert table.loc["mid:m", "cost_per_1k_calls_usd"] == pytest.approx(0.108)
    assert decision.message == ("sentiment: mid:m is the cheapest model whose 95% lower bound 0.871 meets the "
                                "threshold 0.85 ($0.1080 per 1,000 calls)")
    assert decision.evaluated == dt.date(2026, 11, 20) and decision.runs == ("run1",)
    assert decision.prompt == "sentiment@1.0.0"


def test_no_model_meets_the_bar_names_the_best():
    decision = choose_model(_results(), threshold=0.95)
    assert decision.model is None and decision.best == "big:m"
    # proportion_confint(40, 40, method="wilson") → (0.9124, 1.0)
    assert "no model meets the threshold 0.95 at 95% confidence; the best is big:m (lower bound 0.912)" in (
        decision.message)
    assert "no model meets" in repr(decision)


def test_pareto_frontier():
    decision = choose_model(_results(), threshold=0.85)
    assert decision.frontier["model"].tolist() == ["free:m", "cheap:m", "mid:m", "big:m"]
    assert pareto_mask(pd.Series([0.0, 1.0, 2.0, float("nan")]), pd.Series([0.9, 0.8, 0.95, 1.0])).tolist() == [
        True, False, True, False]  # 1.0 is dominated by 0.0; unknown cost is never on the frontier


def test_unpriced_models_rank_after_priced_ones():
    rows = [r for r in _rows() if r["model"] != "mid:m"]
    rows += [{**r, "model": "mystery:m", "cost_usd": None} for r in _rows() if r["model"] == "mid:m"]
    decision = choose_model(_results(rows), threshold=0.85)
    assert decision.candidates["model"].tolist()[-1] == "mystery:m"
    assert decision.model == "big:m"  # known cost beats unknown cost
    assert not decision.candidates.set_index("model").loc["mystery:m", "pareto"]


def test_by_category():
    decision = choose_model(_results(), threshold=0.8, by_category=True)
    cats = decision.categories.set_index("category")
    # happy_path: free:m 12/20, cheap:m 20/20 → proportion_confint(20, 20, method="wilson")[0] = 0.8389
    assert cats.loc["happy_path", "model"] == "cheap:m"
    assert cats.loc["happy_path", "ci_low"] == pytest.approx(proportion_confint(20, 20, method="wilson")[0])
    # adversarial: 19/20 → 0.7639 < 0.8, 20/20 → 0.8389: only big:m
    assert cats.loc["adversarial", "model"] == "big:m"


def test_category_without_a_qualified_model():
    decision = choose_model(_results(), threshold=0.85, by_category=True)
    row = decision.categories.set_index("category").loc["adversarial"]
    assert row["model"] is None and not row["meets"] and row["best_model"] == "big:m"


def test_routing_table_round_trip_and_lookup(tmp_path):
    sentiment = choose_model(_results(), threshold=0.8, by_category=True)
    fallback = choose_model(_results(), threshold=0.85, by_category=True, task="fallback")
    strict = choose_model(_results(), threshold=0.99, task="strict")
    table = routing_table(sentiment, [fallback, strict])
    path = table.save(tmp_path / "configs" / "routing.yaml")
    text = path.read_text()
    assert text.startswith("# promptlab routing table")
    loaded = load_routing_table(path)
    assert loaded.model_for("sentiment") == "mid:m"
    assert loaded.model_for("sentiment", category="happy_path") == "cheap:m"  # its own route
    assert loaded.model_for("sentiment", category="adversarial") == "big:m"
    assert loaded.model_for("sentiment", category="unknown") == "mid:m"  # no route: the task's
    assert loaded.model_for("fallback", category="adversarial") == "mid:m"  # none qualified: the task's
    assert loaded.tasks["fallback"].categories["adversarial"].best_available == "big:m"
    route = loaded.tasks["sentiment"]
    assert (route.evidence.model, route.evidence.n, route.evaluated) == ("mid:m", 40, dt.date(2026, 11, 20))
    assert [c.model for c in route.candidates] == ["free:m", "cheap:m", "mid:m", "big:m"]
    with pytest.raises(RoutingError, match=r"task 'strict' has no model: none met the threshold 0.99 \(best "
                                           r"available: 'big:m'\)"):
        loaded.model_for("strict")
    with pytest.raises(RoutingError, match=r"no route for task 'ticket'; the routing table has \['fallback', "
                                           r"'sentiment', 'strict'\]"):
        loaded.model_for("ticket")
    assert repr(loaded) == ("<RoutingTable 3 tasks: sentiment → mid:m, fallback → mid:m, "
                            "strict → none (best big:m)>")
    assert "Routing table — 3 tasks" in loaded._repr_html_()
    assert loaded.to_frame()["task"].tolist() == ["sentiment"] * 3 + ["fallback"] * 3 + ["strict"]


def test_bad_routing_files(tmp_path):
    with pytest.raises(RoutingError, match="does not exist"):
        load_routing_table(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ngenerated: 2026-01-01\ntasks: {t: {model: m, threshold: 2}}\n")
    with pytest.raises(RoutingError, match=r"tasks.t.threshold: .*less than or equal to 1 \(got 2\)"):
        load_routing_table(bad)
    bad.write_text("version: 9\ngenerated: 2026-01-01\ntasks: {}\n")
    with pytest.raises(RoutingError, match="version 9 is not supported"):
        load_routing_table(bad)


def test_arguments_are_checked():
    with pytest.raises(RoutingError, match=r"threshold=1.5 is a pass rate"):
        choose_model(_results(), threshold=1.5)
    rows = _rows() + [{**r, "variant": "B"} for r in _rows()]
    with pytest.raises(RoutingError, match=r"several variants \['A', 'B'\]; pass variant="):
        choose_model(_results(rows), threshold=0.8)
    assert choose_model(_results(rows), threshold=0.8, variant="B").variant == "B"
    with pytest.raises(RoutingError, match="cross-model run"):
        choose_model("not results", threshold=0.8)


def test_plot_and_html():
    decision = choose_model(_results(), threshold=0.85, by_category=True)
    fig = decision.plot()
    assert [trace.name for trace in fig.data] == ["models", "Pareto frontier"]
    assert list(fig.data[0].marker.symbol) == ["circle", "circle", "star", "circle"]  # mid:m chosen
    html = decision._repr_html_()
    assert "◀ chosen" in html and "by category" in html


def test_the_example_config_loads(root):
    path = root / "configs" / "routing.yaml"
    table = load_routing_table(path)
    assert table.model_for("sentiment").startswith("openai:")
    assert set(table.tasks) == {"sentiment", "ticket_intent"}
    assert "FAKE eval" in path.read_text(encoding="utf-8").split("\n")[0]
