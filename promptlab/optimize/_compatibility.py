"""Model compatibility: does this prompt still work on another model (an upgrade, a cheaper one)?

``test_model_compatibility(prompt, suite, models, current=...)`` runs the prompt on every model and returns a
`CompatibilityMatrix`: accuracy with its interval per model, accuracy per case category, the failures, the
ids that actually answered, and a paired comparison of every model with the current one on the same cases.
`model_compatibility(results, current=...)` builds the same matrix from results you already have.

The comparison uses `promptlab.stats._comparison.compare`, which pairs *variants* within a model. To pair *models* on
the same cases, a copy of the frame is relabelled: ``variant`` ← the model id, ``model`` ← `PAIRED_LABEL`
(one shared label), so each model is a "variant" answering the same (case, repeat) keys. McNemar mid-p with a
Newcombe interval for pass/fail, Holm across the models compared (see `promptlab.stats._comparison`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..authoring._prompt import Prompt
from ..authoring._suite import Suite
from ..errors import StatsError
from ..evaluation._results import Results
from ..providers import canonical_model_id
from ..providers._base import Provider
from ..stats._comparison import Comparison, compare

PAIRED_LABEL = "same cases"
"""The ``model`` label the relabelled frame uses (every model compared as a variant of it)."""
MATRIX_COLUMNS = ["model", "current", "n", "accuracy", "ci_low", "ci_high", "errors", "served",
                  "cost_per_1k_calls_usd", "diff", "diff_ci_low", "diff_ci_high", "p_value", "p_adj",
                  "verdict", "regressions", "fixes"]
"""Columns of `CompatibilityMatrix.df`: one row per model, the current model first."""


def _model_id(spec: str | Provider) -> str:
    if isinstance(spec, Provider):
        return spec.model_id(getattr(spec, "model_name", "default"))
    return canonical_model_id(spec)


def _one_variant(results: Any, variant: str | None) -> Results:
    results = results if isinstance(results, Results) else Results(getattr(results, "df", results))
    variants = [str(v) for v in pd.unique(results.df["variant"].dropna())]
    if variant is None and len(variants) > 1:
        raise StatsError(f"these results hold several variants {variants!r}; pass variant= (the matrix "
                         "compares models for one prompt).")
    if variant is not None and variant not in variants:
        raise StatsError(f"variant {variant!r} is not in these results; the variants are {variants!r}.")
    if variant is None:
        return results
    return Results(results.df[results.df["variant"] == variant], results.meta)


def as_model_variants(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a results frame with each model as a variant of one shared model label (`PAIRED_LABEL`),
    so `promptlab.stats._comparison.compare` pairs the models on the same (case, repeat) keys."""
    return frame.assign(variant=frame["model"].astype("string"), model=PAIRED_LABEL)


def _outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """Pass (1) / fail (0) / no verdict (NaN) per (case, repeat) × model."""
    values = frame["passed"].astype("boolean").to_numpy(dtype=float, na_value=float("nan"))
    table = frame.assign(_v=values).groupby(["case_id", "repeat", "model"])["_v"].mean()
    return table.unstack("model")


def model_compatibility(results: Any, current: str | Provider | None = None, *,
                        variant: str | None = None, alpha: float = 0.05) -> CompatibilityMatrix:
    """The compatibility matrix of one prompt's results on several models.

    Args:
        results: `Results` of one prompt run on several models.
        current: the model in production now (the baseline of the comparison); the prompt's pinned model
            when it is among the models, else the first model.
        variant: which prompt, when the results hold several variants.
        alpha: the comparison's level (on Holm-adjusted p-values).

    Raises:
        StatsError: several variants without ``variant=``, or a ``current`` model not in the results.
    """
    res = _one_variant(results, variant)
    models = [str(m) for m in pd.unique(res.df["model"].dropna())]
    base = _current(res.df, models, current)
    comparison = compare(as_model_variants(res.df), baseline=base, alpha=alpha) if len(models) > 1 else None
    return CompatibilityMatrix(res, base, models, comparison)


def _current(frame: pd.DataFrame, models: list[str], current: str | Provider | None) -> str:
    if current is not None:
        wanted = _model_id(current)
        if wanted not in models:
            raise StatsError(f"current model {wanted!r} is not among the models run: {models!r}. Pass one of "
                             "them, or add it to the models.")
        return wanted
    pinned = [canonical_model_id(m) for m in pd.unique(frame["model_pinned"].dropna())]
    return pinned[0] if pinned and pinned[0] in models else models[0]


def test_model_compatibility(prompt: Prompt, suite: Suite, models: list[str | Provider],
                             current: str | Provider | None = None, **options: Any) -> CompatibilityMatrix:
    """Run ``prompt`` on ``suite`` with every model and compare each with the current one, paired by case.

    Args:
        prompt: the prompt to check.
        suite: the cases.
        models: model ids or providers to try.
        current: the model in production now (added to the run if it is not among ``models``); by default
            the prompt's pinned model when it is among ``models``, else the first of them.
        **options: run options for `promptlab.run` (``cache``, ``repeats``, ``progress`` …).

    Returns:
        A `CompatibilityMatrix`.
    """
    from ..evaluation._runner import run

    specs = list(models)
    ids = [_model_id(m) for m in specs]
    if current is not None and _model_id(current) not in ids:
        specs.insert(0, current)
    elif current is None:
        pinned = canonical_model_id(prompt.model)
        current = pinned if pinned in ids else ids[0]
    results = run(suite, prompt, specs, **options)
    return model_compatibility(results, current=current)


test_model_compatibility.__test__ = False  # a library function, not a pytest test


class CompatibilityMatrix:
    """Accuracy, categories, failures and a paired comparison with the current model, per model.

    Attributes:
        results: the `Results` behind the matrix (one prompt, several models).
        current: the baseline model id.
        models: every model id, in run order.
        comparison: `promptlab.stats._comparison.Comparison` of each model against ``current`` (None with one model).
        df: one row per model (`MATRIX_COLUMNS`): accuracy with interval, errors, the ids that answered,
            cost per 1,000 calls, the paired difference from ``current`` with its interval, p, Holm p,
            verdict, ``regressions`` (cases the current model passed and this one failed) and ``fixes``.
    """

    def __init__(self, results: Results, current: str, models: list[str], comparison: Comparison | None):
        self.results = results
        self.current = current
        self.models = [current, *[m for m in models if m != current]]
        self.comparison = comparison
        self.df = self._table()

    def _table(self) -> pd.DataFrame:
        acc = self.results.accuracy(by=["model"])[["model", "n", "accuracy", "ci_low", "ci_high", "errors"]]
        cost = self.results.cost().groupby("model")["cost_per_1k_calls_usd"].first()
        served = self.results.df.dropna(subset=["model_served"]).groupby("model")["model_served"].agg(
            lambda s: ", ".join(sorted(set(s))))
        table = acc.assign(current=acc["model"] == self.current, served=acc["model"].map(served),
                           cost_per_1k_calls_usd=acc["model"].map(cost).astype(float))
        table = table.merge(self._paired_columns(), on="model", how="left")
        changes = {m: self._changed(m) for m in self.models}
        table["regressions"] = table["model"].map(lambda m: len(changes[m][0]))
        table["fixes"] = table["model"].map(lambda m: len(changes[m][1]))
        order = {m: i for i, m in enumerate(self.models)}
        return table.sort_values("model", key=lambda s: s.map(order)).reset_index(drop=True)[MATRIX_COLUMNS]

    def _paired_columns(self) -> pd.DataFrame:
        columns = ["model", "diff", "diff_ci_low", "diff_ci_high", "p_value", "p_adj", "verdict"]
        if self.comparison is None or self.comparison.df.empty:
            return pd.DataFrame(columns=columns)
        df = self.comparison.df.rename(columns={"ci_low": "diff_ci_low", "ci_high": "diff_ci_high"})
        return df.assign(model=df["variant"])[columns]

    def _changed(self, model: str) -> tuple[list[str], list[str]]:
        """Case ids the current model passed and ``model`` failed, and the reverse (per-case means)."""
        wide = _outcomes(self.results.df).groupby(level="case_id").mean()
        if model == self.current or model not in wide:
            return [], []
        pair = wide[[self.current, model]].dropna()
        worse = pair.index[pair[model] < pair[self.current]].tolist()
        better = pair.index[pair[model] > pair[self.current]].tolist()
        return [str(c) for c in worse], [str(c) for c in better]

    @property
    def by_category(self) -> pd.DataFrame:
        """Accuracy per case category (rows) and model (columns)."""
        table = self.results.accuracy(by=["model", "category"])
        wide = table.pivot_table(index="category", columns="model", values="accuracy", aggfunc="first")
        return wide.reindex(columns=[m for m in self.models if m in wide.columns])

    def failures(self, model: str | None = None) -> pd.DataFrame:
        """Failed answers (all models, or one), hardest categories first."""
        failures = self.results.failures()
        return failures if model is None else failures[failures["model"] == model].reset_index(drop=True)

    def regressions(self, model: str) -> pd.DataFrame:
        """Cases the current model passed and ``model`` failed, with both answers side by side."""
        worse, _ = self._changed(model)
        df = self.results.df[self.results.df["case_id"].isin(worse)]
        answers = df.pivot_table(index=["case_id", "category"], columns="model", values="output",
                                 aggfunc="first")
        keep = [m for m in (self.current, model) if m in answers.columns]
        return answers[keep].reset_index()

    @property
    def verdicts(self) -> dict[str, str]:
        """``{model: verdict}`` for every model but the current one."""
        rows = self.df[~self.df["current"]]
        return dict(zip(rows["model"], rows["verdict"].fillna("not compared"), strict=True))

    def __repr__(self) -> str:
        parts = [f"{r.model} {100 * r.accuracy:.1f}%" + ("" if r.current else f" ({r.verdict})")
                 for r in self.df.itertuples()]
        return f"<CompatibilityMatrix current={self.current!r}: {'; '.join(parts)}>"

    def _repr_html_(self) -> str:
        from .._display import compatibility_html

        return compatibility_html(self)
