"""Model routing: from one cross-model eval, the cheapest model per task whose accuracy is good enough.

``results = pl.run(suite, prompt, ["local:gemma-3-270m", "openai:gpt-4o-mini-2024-07-18", ...])`` gives one
row per case × model. `choose_model(results, threshold=0.9)` then:

1. takes each model's pass rate with its interval (`Results.accuracy`: Wilson with one answer per case,
   the interval over per-case means with repeats) and its cost per 1,000 calls (`Results.cost`);
2. keeps the models whose interval **lower bound** meets the threshold — a model that merely scored 0.91
   on 40 cases has not shown it is a 0.9 model;
3. picks the cheapest of them (unpriced models rank after priced ones: unknown cost is not zero cost;
   equal costs are broken by the higher lower bound). If none qualifies, it says so and names the model
   with the highest lower bound;
4. optionally does the same within each case category (``by_category=True``).

`RoutingDecision.frontier` is the Pareto frontier (no other model is both cheaper and more accurate),
`RoutingDecision.plot()` draws it. `routing_table(decision, ...)` collects decisions into a `RoutingTable`
that saves as YAML (``configs/routing.yaml``), with the evidence and its date, and a production client
reads with ``load_routing_table(path).model_for(task, category=None)``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field

from .._display import usd_per_1k
from .._yaml import load_model
from ..errors import RoutingError
from ..evaluation._results import Results
from ..notebook._plots import pareto_mask

CANDIDATE_COLUMNS = ["model", "n", "accuracy", "ci_low", "ci_high", "errors", "cost_per_1k_calls_usd",
                     "meets", "pareto", "chosen"]
"""Columns of `RoutingDecision.candidates`: one row per model, cheapest first."""
CATEGORY_COLUMNS = ["category", "model", "n", "accuracy", "ci_low", "ci_high", "cost_per_1k_calls_usd",
                    "meets", "best_model", "best_ci_low"]
"""Columns of `RoutingDecision.categories`: one row per case category (``model`` is None if none met)."""
FILE_VERSION = 1


# ---- the file format (what a production client reads) -----------------------------------------------------
class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Candidate(_FileModel):
    """One model's evidence on one task (or category)."""

    model: str
    n: int
    accuracy: float
    ci_low: float
    ci_high: float
    cost_per_1k_calls_usd: float | None = None
    meets: bool


class Route(_FileModel):
    """Where to send one task (or one category of it), and why.

    Attributes:
        model: the model to call; None when no model met the threshold.
        threshold: the accuracy the interval's lower bound had to reach.
        best_available: the model with the highest lower bound (useful when ``model`` is None).
        evidence: the chosen model's numbers (the best one's when none met).
        note: the decision in words.
    """

    model: str | None
    threshold: float = Field(ge=0, le=1)
    best_available: str | None = None
    evidence: Candidate | None = None
    note: str = ""


class TaskRoute(Route):
    """A task's route, its categories' routes, every model evaluated and where the evidence came from."""

    confidence: float = 0.95
    evaluated: dt.date | None = None
    runs: list[str] = Field(default_factory=list)
    prompt: str | None = None
    categories: dict[str, Route] = Field(default_factory=dict)
    candidates: list[Candidate] = Field(default_factory=list)


class RoutingFile(_FileModel):
    """The routing table file: ``version``, the ``generated`` date and one `TaskRoute` per task."""

    version: int = FILE_VERSION
    generated: dt.date
    tasks: dict[str, TaskRoute]


# ---- choosing ----------------------------------------------------------------------------------------------
def _frame(results: Any, variant: str | None) -> tuple[pd.DataFrame, str | None]:
    frame = getattr(results, "df", results)
    if not isinstance(frame, pd.DataFrame) or "model" not in frame or "passed" not in frame:
        raise RoutingError(f"choose_model() needs the Results of a cross-model run (a frame with 'model' and "
                           f"'passed' columns); got {type(results).__name__!r}. Run "
                           "pl.run(suite, prompt, [model1, model2, ...]) and pass what it returns.")
    variants = [str(v) for v in pd.unique(frame["variant"].dropna())] if "variant" in frame else []
    if variant is None and len(variants) > 1:
        raise RoutingError(f"these results hold several variants {variants!r}; pass variant= to route one "
                           "prompt (a route is a model for one prompt).")
    if variant is not None and variant not in variants:
        raise RoutingError(f"variant {variant!r} is not in these results; the variants are {variants!r}.")
    chosen = variant or (variants[0] if variants else None)
    return (frame[frame["variant"] == chosen] if chosen else frame), chosen


def _cost_per_1k(frame: pd.DataFrame) -> pd.Series:
    """USD per 1,000 answered calls per model; NaN when the model is unpriced or never answered."""
    table = Results(frame).cost()
    return table.groupby("model")["cost_per_1k_calls_usd"].first() if len(table) else pd.Series(dtype=float)


def _candidates(frame: pd.DataFrame, threshold: float, confidence: float) -> pd.DataFrame:
    acc = Results(frame).accuracy(by=["model"], confidence=confidence)
    table = acc[["model", "n", "accuracy", "ci_low", "ci_high", "errors"]].copy()
    table["cost_per_1k_calls_usd"] = table["model"].map(_cost_per_1k(frame)).astype(float)
    table["meets"] = (table["ci_low"] >= threshold).fillna(False).astype(bool)
    table = table.sort_values(["cost_per_1k_calls_usd", "ci_low"], ascending=[True, False], na_position="last",
                              kind="stable").reset_index(drop=True)
    table["pareto"] = pareto_mask(table["cost_per_1k_calls_usd"], table["accuracy"])
    table["chosen"] = False
    if table["meets"].any():
        table.loc[table.index[table["meets"]][0], "chosen"] = True
    return table[CANDIDATE_COLUMNS]


def _category_rows(frame: pd.DataFrame, threshold: float, confidence: float) -> pd.DataFrame:
    rows = []
    for category, group in frame.groupby("category", sort=True, dropna=False):
        table = _candidates(group, threshold, confidence)
        chosen, best = table[table["chosen"]], table.sort_values("ci_low", ascending=False).iloc[0]
        pick = chosen.iloc[0] if len(chosen) else None
        rows.append({"category": str(category), "model": None if pick is None else pick["model"],
                     **{k: (pick[k] if pick is not None else best[k]) for k in
                        ("n", "accuracy", "ci_low", "ci_high", "cost_per_1k_calls_usd")},
                     "meets": pick is not None, "best_model": best["model"], "best_ci_low": best["ci_low"]})
    return pd.DataFrame(rows, columns=CATEGORY_COLUMNS)


def _task_name(frame: pd.DataFrame, task: str | None) -> str:
    if task:
        return task
    names = [str(v) for v in pd.unique(frame["prompt_name"].dropna())] if "prompt_name" in frame else []
    if len(names) != 1:
        raise RoutingError(f"cannot name the task from prompt names {names!r}; pass task='...'.")
    return names[0]


def _evaluated(results: Any) -> dt.date:
    meta = getattr(results, "meta", {}) or {}
    stamps = [m.get("finished_at") or m.get("started_at") for m in (meta.get("runs") or [meta])]
    stamps = [s for s in stamps if s]
    return dt.datetime.fromisoformat(max(stamps)).date() if stamps else dt.date.today()


def choose_model(results: Any, threshold: float, *, task: str | None = None, variant: str | None = None,
                 by_category: bool = False, confidence: float = 0.95) -> RoutingDecision:
    """The cheapest model whose accuracy interval's lower bound meets ``threshold``, from a cross-model run.

    Args:
        results: `Results` of one prompt run on several models (``pl.run(suite, prompt, [m1, m2, ...])``).
        threshold: the pass rate the lower bound must reach, e.g. 0.9.
        task: the route's name; the prompt's name by default.
        variant: which prompt, when the results hold several variants.
        by_category: also choose a model per case category.
        confidence: the interval's coverage (0.95: the lower bound of a 95% interval).

    Returns:
        A `RoutingDecision` (``.model`` is None when no model met the threshold; ``.best`` names the model
        with the highest lower bound).

    Raises:
        RoutingError: results without a model column, several variants and no ``variant=``, a bad threshold.
    """
    if not 0 <= threshold <= 1:
        raise RoutingError(f"threshold={threshold!r} is a pass rate and must be within [0, 1], e.g. 0.9.")
    frame, chosen_variant = _frame(results, variant)
    candidates = _candidates(frame, threshold, confidence)
    categories = _category_rows(frame, threshold, confidence) if by_category else None
    prompt = _prompt_ref(frame)
    runs = sorted(str(r) for r in pd.unique(frame["run_id"].dropna())) if "run_id" in frame else []
    return RoutingDecision(_task_name(frame, task), threshold, confidence, candidates, categories,
                           chosen_variant, prompt, tuple(runs), _evaluated(results))


def _prompt_ref(frame: pd.DataFrame) -> str | None:
    if "prompt_name" not in frame or frame["prompt_name"].isna().all():
        return None
    row = frame.dropna(subset=["prompt_name"]).iloc[0]
    return f"{row['prompt_name']}@{row['prompt_version']}"


@dataclass(frozen=True, eq=False)
class RoutingDecision:
    """The model chosen for one task, every candidate's evidence, and (optionally) a choice per category.

    Attributes:
        task: the route's name.
        threshold: the pass rate the lower bound had to reach.
        confidence: the interval's coverage.
        candidates: one row per model, cheapest first (`CANDIDATE_COLUMNS`).
        categories: one row per category (`CATEGORY_COLUMNS`) when chosen ``by_category``, else None.
        variant: the variant routed.
        prompt: ``name@version`` of the prompt evaluated.
        runs: the run ids behind the evidence.
        evaluated: the date of the (latest) run.
    """

    task: str
    threshold: float
    confidence: float
    candidates: pd.DataFrame = field(repr=False)
    categories: pd.DataFrame | None = field(repr=False)
    variant: str | None = None
    prompt: str | None = None
    runs: tuple[str, ...] = ()
    evaluated: dt.date | None = None

    @property
    def model(self) -> str | None:
        """The chosen model, or None when no model met the threshold."""
        chosen = self.candidates[self.candidates["chosen"]]
        return str(chosen["model"].iloc[0]) if len(chosen) else None

    @property
    def best(self) -> str | None:
        """The model with the highest lower bound (the one to improve on when none met the threshold)."""
        ranked = self.candidates.dropna(subset=["ci_low"]).sort_values("ci_low", ascending=False)
        return str(ranked["model"].iloc[0]) if len(ranked) else None

    @property
    def frontier(self) -> pd.DataFrame:
        """The Pareto frontier: models no other model beats on both cost and accuracy, cheapest first."""
        return self.candidates[self.candidates["pareto"]].reset_index(drop=True)

    @property
    def message(self) -> str:
        """The decision in one sentence."""
        pct = 100 * self.confidence
        if self.model is not None:
            row = self.candidates[self.candidates["chosen"]].iloc[0]
            return (f"{self.task}: {self.model} is the cheapest model whose {pct:g}% lower bound "
                    f"{row['ci_low']:.3f} meets the threshold {self.threshold:g} "
                    f"({usd_per_1k(row['cost_per_1k_calls_usd'])} per 1,000 calls)")
        best = self.candidates.set_index("model").loc[self.best] if self.best else None
        bound = f" (lower bound {best['ci_low']:.3f})" if best is not None else ""
        return (f"{self.task}: no model meets the threshold {self.threshold:g} at {pct:g}% confidence; the best "
                f"is {self.best}{bound}. Improve the prompt, add cases, or lower the threshold.")

    def plot(self) -> Any:
        """The cost/accuracy plane: each model with its interval, the Pareto frontier, the threshold."""
        return plot_frontier(self)

    def to_route(self) -> TaskRoute:
        """This decision as a routing-table entry (`TaskRoute`)."""
        return _task_route(self)

    def __repr__(self) -> str:
        return f"<RoutingDecision {self.message}>"

    def _repr_html_(self) -> str:
        from .._display import routing_decision_html

        return routing_decision_html(self)


# ---- the frontier plot -------------------------------------------------------------------------------------
def plot_frontier(decision: RoutingDecision) -> Any:
    """A plotly figure: accuracy (with its interval) against cost per 1,000 calls, frontier and threshold.

    Unpriced models cannot be placed on the cost axis; they are named in the title instead.
    """
    import plotly.graph_objects as go

    table = decision.candidates
    priced = table[table["cost_per_1k_calls_usd"].notna()]
    fig = go.Figure()
    fig.add_scatter(x=priced["cost_per_1k_calls_usd"].tolist(), y=priced["accuracy"].tolist(), mode="markers+text",
                    text=priced["model"].tolist(), textposition="top center", name="models",
                    marker={"size": 11, "color": ["#C44E52" if c else "#4C72B0" for c in priced["chosen"]],
                            "symbol": ["star" if c else "circle" for c in priced["chosen"]]},
                    error_y={"type": "data", "symmetric": False,
                             "array": (priced["ci_high"] - priced["accuracy"]).tolist(),
                             "arrayminus": (priced["accuracy"] - priced["ci_low"]).tolist()})
    front = priced[priced["pareto"]]
    fig.add_scatter(x=front["cost_per_1k_calls_usd"].tolist(), y=front["accuracy"].tolist(), mode="lines",
                    line={"dash": "dot", "color": "#55A868"}, name="Pareto frontier")
    fig.add_hline(y=decision.threshold, line_dash="dash", line_color="#8C8C8C",
                  annotation_text=f"threshold {decision.threshold:g} (lower bound must reach it)")
    unpriced = table.loc[table["cost_per_1k_calls_usd"].isna(), "model"].tolist()
    title = f"{decision.task}: accuracy vs cost" + (f" (unpriced, not shown: {', '.join(unpriced)})"
                                                    if unpriced else "")
    fig.update_layout(title=title, xaxis_title="USD per 1,000 calls", height=440,
                      yaxis={"title": f"accuracy ({100 * decision.confidence:g}% CI)", "tickformat": ".0%"},
                      legend={"orientation": "h", "y": -0.2})
    return fig


# ---- the routing table -------------------------------------------------------------------------------------
def _candidate(row: Any) -> Candidate:
    cost = row["cost_per_1k_calls_usd"]
    return Candidate(model=str(row["model"]), n=int(row["n"]), accuracy=_round(row["accuracy"]),
                     ci_low=_round(row["ci_low"]), ci_high=_round(row["ci_high"]),
                     cost_per_1k_calls_usd=None if pd.isna(cost) else _round(cost), meets=bool(row["meets"]))


def _round(value: Any) -> float:
    return round(float(value), 6)


def _task_route(d: RoutingDecision) -> TaskRoute:
    rows = d.candidates.set_index("model", drop=False)
    pick = d.model or d.best
    categories = {} if d.categories is None else {
        str(r["category"]): _category_route(r, d.threshold) for r in d.categories.to_dict("records")}
    return TaskRoute(model=d.model, threshold=d.threshold, best_available=d.best,
                     evidence=_candidate(rows.loc[pick]) if pick else None, note=d.message,
                     confidence=d.confidence, evaluated=d.evaluated, runs=list(d.runs), prompt=d.prompt,
                     categories=categories, candidates=[_candidate(r) for _, r in d.candidates.iterrows()])


def _category_route(row: dict[str, Any], threshold: float) -> Route:
    model = row["model"] if row["meets"] else None
    evidence = _candidate({**row, "model": model or row["best_model"]})
    note = "" if model else (f"no model meets {threshold:g} on this category alone (best: {row['best_model']}, "
                             f"lower bound {row['best_ci_low']:.3f}); calls use the task's model")
    return Route(model=model, threshold=threshold, best_available=row["best_model"], evidence=evidence, note=note)


class RoutingTable:
    """Task → model routes with their evidence: what a production client reads.

    Build one with `routing_table(decision, ...)`, save it with `save`, read it with `load_routing_table`.
    """

    def __init__(self, tasks: dict[str, TaskRoute], generated: dt.date | None = None):
        self.tasks = dict(tasks)
        self.generated = generated or dt.date.today()

    def model_for(self, task: str, category: str | None = None) -> str:
        """The model to call for ``task`` (and ``category``: its own route when one model qualified on that
        category, else the task's).

        Raises:
            RoutingError: an unknown task (the message lists the known ones), or a task for which no model
                met the threshold (the message names the best one).
        """
        if task not in self.tasks:
            raise RoutingError(f"no route for task {task!r}; the routing table has {sorted(self.tasks)!r}. "
                               "Add it with choose_model(...) and export the table again.")
        route = self.tasks[task]
        by_category = route.categories.get(category) if category is not None else None
        if by_category is not None and by_category.model:
            return by_category.model
        if route.model is None:
            raise RoutingError(f"task {task!r} has no model: none met the threshold {route.threshold!r} "
                               f"(best available: {route.best_available!r}). Improve the prompt or lower the "
                               "threshold, then export the table again.")
        return route.model

    def to_frame(self) -> pd.DataFrame:
        """One row per task (and category): model, threshold, accuracy, lower bound, cost, date."""
        rows = []
        for task, route in self.tasks.items():
            rows.append(_frame_row(task, None, route, route.evaluated))
            rows += [_frame_row(task, c, r, route.evaluated) for c, r in route.categories.items()]
        return pd.DataFrame(rows, columns=["task", "category", "model", "threshold", "accuracy", "ci_low",
                                           "cost_per_1k_calls_usd", "best_available", "evaluated"])

    def to_yaml(self, header: str | None = None) -> str:
        """The table as YAML text, under an optional comment ``header`` (each line gets ``# ``)."""
        data = RoutingFile(generated=self.generated, tasks=self.tasks).model_dump(mode="json")
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
        comment = "".join(f"# {line}".rstrip() + "\n" for line in (header or _HEADER).splitlines())
        return comment + text

    def save(self, path: str | Path, header: str | None = None) -> Path:
        """Write the table as YAML (see `to_yaml`) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml(header), encoding="utf-8")
        return path

    def __repr__(self) -> str:
        routes = ", ".join(f"{t} → {r.model or 'none (best ' + str(r.best_available) + ')'}"
                           for t, r in self.tasks.items())
        return f"<RoutingTable {len(self.tasks)} tasks: {routes}>"

    def _repr_html_(self) -> str:
        from .._display import routing_table_html

        return routing_table_html(self)


_HEADER = ("promptlab routing table: task → model, the cheapest model whose accuracy interval lower bound\n"
           "met the task's threshold, with the evidence. Read it with\n"
           "promptlab.optimize.load_routing_table(path).model_for(task, category=None).")


def _frame_row(task: str, category: str | None, route: Route, evaluated: dt.date | None) -> dict[str, Any]:
    e = route.evidence
    return {"task": task, "category": category, "model": route.model, "threshold": route.threshold,
            "accuracy": e.accuracy if e else math.nan, "ci_low": e.ci_low if e else math.nan,
            "cost_per_1k_calls_usd": e.cost_per_1k_calls_usd if e else None,
            "best_available": route.best_available, "evaluated": evaluated}


def routing_table(*decisions: RoutingDecision | Iterable[RoutingDecision]) -> RoutingTable:
    """A `RoutingTable` from `RoutingDecision` objects (one per task; a later one replaces an earlier one)."""
    flat: list[RoutingDecision] = []
    for item in decisions:
        flat.extend([item] if isinstance(item, RoutingDecision) else item)
    return RoutingTable({d.task: d.to_route() for d in flat})


def load_routing_table(path: str | Path) -> RoutingTable:
    """Read a routing table file written by `RoutingTable.save`.

    Raises:
        RoutingError: the file is missing, not YAML, or not in the routing table format (the message says
            which field and how to fix it).
    """
    path = Path(path)
    parsed = load_model(path, RoutingFile, RoutingError, "routing table",
                        fix="Export one (again) with routing_table(...).save(path).")
    if parsed.version != FILE_VERSION:
        raise RoutingError(f"{path}: routing table version {parsed.version!r} is not supported (expected "
                           f"{FILE_VERSION!r}). Re-export it with this promptlab.")
    return RoutingTable(parsed.tasks, parsed.generated)
