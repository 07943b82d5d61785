"""`compare(results, baseline="A")`: every variant against the baseline, paired by case, as a `Comparison`.

Pairing: rows are matched on ``(case_id, repeat)`` within one ``model``; a pair with no value on the metric
on either side (a failed call, no verdict) is dropped and counted in ``n_dropped``. With K > 1 repeats the
answers to one case are not independent, so each case's pairs are averaged first and everything is computed
over cases (docs/statistics.md). If a variant shares no model with the baseline (each prompt ran on its own
pinned model), its rows are paired across models and the ``model`` column names the pooled models.

Tests (``method`` says which one a row used):

* ``metric="passed"``, one answer per case: McNemar on the discordant pairs b (only the baseline passed) and
  c (only the variant passed); ``p_value`` is the mid-p (the decision value), ``p_exact`` the exact binomial
  p, and the interval is Newcombe's paired hybrid-score interval for (c − b)/n.
* ``metric="format_ok"`` (format compliance: the answer has the prompt's declared shape) is pass/fail as well,
  tested exactly like ``passed``: a failed call has no format verdict, so its pair is dropped and counted.
* ``metric="score"``, or pass/fail with repeats: paired t on the per-case means (``p_value``); the interval
  is a seeded paired bootstrap for scores (BCa with 9,999 resamples up to 5,000 cases, percentile with
  2,000 above), the t interval for pass rates with repeats; ``p_exact`` is the
  exact sign test with b / c = cases where the variant is lower / higher (McNemar is its binary case).

``p_adj`` is Holm-adjusted across the variants compared with the baseline on one model;
`Comparison.by_category` adjusts across categories with Benjamini–Hochberg instead (exploratory slices).

Intervals stand on the verdict's footing. ``ci_low`` / ``ci_high`` are simultaneous over the family the p-values
are adjusted in: with Holm across k variants, each is the interval at 1 − α/k (Bonferroni: all k cover at once
with probability ≥ 1 − α, and one that excludes 0 means Holm rejects too); with Benjamini–Hochberg across m
categories and R differences found, Benjamini–Yekutieli's false-coverage-rate level 1 − max(R, 1)·α/m.
``ci_level`` says which level; the unadjusted 1 − α interval is kept as ``ci_low_unadj`` / ``ci_high_unadj``.
The verdict claims a difference only when the adjusted test and the displayed interval agree; where they
disagree at the margin (they are different methods, e.g. McNemar's mid-p and Newcombe's interval) it is
``borderline`` and the note says why, so no row shows a verdict its own interval contradicts.

Canonical order: the pairs are put in case-id order (then repeat) before anything is summed or resampled, so
the same results in another row order give identical statistics, bootstrap intervals included.

This module is the comparison's face (`compare`, `Comparison`, the columns) and assembles the table; the paired
table and the guardrails are built in `promptlab.stats._paired_table`, each pair's statistics in
`promptlab.stats._pair_stats`, and the family's interval levels and verdicts in `promptlab.stats._family`.

Columns of `Comparison.df` (`COLUMNS`):

=================== ==========================================================================================
variant, baseline   the variant compared, and the baseline it is compared with
model               the model both answered on
category            (`Comparison.by_category` only) the case category
metric              ``passed`` (pass rate), ``format_ok`` (format compliance) or ``score`` (mean score)
n                   complete pairs used
cases               distinct cases among them (the unit of analysis)
n_dropped           pairs dropped because one side had no value on the metric
baseline_mean       the baseline's pass rate / mean score over the complete pairs
variant_mean        the variant's, over the same pairs
diff                variant_mean − baseline_mean (positive: the variant is higher)
ci_low, ci_high     interval for diff at ``ci_level``: simultaneous over the family (see above; ``method``)
ci_level            the displayed interval's confidence, e.g. 0.975 = 1 − 0.05/2 for two variants (Holm family)
ci_low_unadj,       the unadjusted 1 − α interval for diff, this comparison alone (not the verdict's footing)
ci_high_unadj
p_value             the decision p-value (mid-p or paired t); 1.0 when there are no pairs
p_exact             McNemar / sign test exact p
p_adj               p_value adjusted for multiplicity (Holm across variants; BH across categories)
b, c                discordant pairs: only the baseline passed (b), only the variant passed (c)
correlation         Pearson r between the arms per case: what pairing exploited (NaN if an arm is constant)
verdict             ``better`` / ``worse`` (p_adj < alpha and the interval excludes 0 on that side), ``no
                    detectable difference`` (neither), ``borderline`` (the two disagree; see ``note``)
mde                 smallest difference detectable at 80% power with these cases (paired planner)
power_note          that sentence, e.g. "with n = 60 the smallest difference detectable at 80% power is 14
                    points"
method              the test and interval used
note                edge cases in words (no pairs, no discordant pairs, all pass …); empty otherwise
baseline_cost_usd   mean cost per call of the baseline (NaN when unpriced), then the variant's, and
variant_cost_usd,   their difference — guardrails, outside the multiplicity family
cost_diff_usd
baseline_p95_s,     p95 latency (`promptlab.stats._quantiles.QUANTILE_METHOD`) of the calls made in the run —
variant_p95_s,      cached answers left out, the rule `Results.latency` follows too —, the variant's, and the
p95_diff_s          difference
baseline_error_rate share of calls with an error, the variant's, and the difference
variant_error_rate,
error_rate_diff
=================== ==========================================================================================
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import StatsError
from ._bayesian import BetaPrior, beta_binomial
from ._crossrun import is_runs, runs_frame
from ._family import _borderline_note, _fmt_diff, _intervals, _levels, _verdicts
from ._multiplicity import benjamini_hochberg, holm
from ._pair_stats import _variant_rows
from ._paired_table import _guard_table, _guards, _GuardTable, _Paired, _prepare, _shares_model

METRICS = ("passed", "score", "format_ok")
BINARY = {"format_ok": "passed"}
"""Pass/fail metrics besides ``passed``: compared as ``passed`` is (McNemar, Newcombe), on their own column."""
VERDICTS = ("better", "worse", "no detectable difference", "borderline")
REQUIRED = ("case_id", "variant", "model", "repeat")
STAT_COLUMNS = ["n", "cases", "n_dropped", "baseline_mean", "variant_mean", "diff", "ci_low", "ci_high",
                "ci_level", "ci_low_unadj", "ci_high_unadj", "p_value", "p_exact", "p_adj", "b", "c",
                "correlation", "verdict", "mde", "power_note", "method", "note"]
GUARD_COLUMNS = ["baseline_cost_usd", "variant_cost_usd", "cost_diff_usd", "baseline_p95_s", "variant_p95_s",
                 "p95_diff_s", "baseline_error_rate", "variant_error_rate", "error_rate_diff"]
COLUMNS = ["variant", "baseline", "model", "metric", *STAT_COLUMNS, *GUARD_COLUMNS]
"""Columns of `Comparison.df` (`Comparison.by_category` adds ``category`` after ``model``)."""
BAYESIAN_COLUMNS = ["variant", "baseline", "model", "metric", "cases", "baseline_rate", "variant_rate", "diff",
                    "ci_low", "ci_high", "chance_to_beat", "risk_baseline", "risk_variant", "prior", "note"]
"""Columns of `Comparison.bayesian` (``compare(..., bayesian=True)``; ``category`` after ``model`` by category)."""


# ---- assembling ------------------------------------------------------------------------------------------
def _frame(results: Any, metric: str) -> pd.DataFrame:
    frame = getattr(results, "df", results)
    if not isinstance(frame, pd.DataFrame):
        raise StatsError(f"compare() needs a promptlab Results or a results DataFrame; got "
                         f"{type(results).__name__!r}. Pass the object `pl.run(...)` returned; for stored runs, "
                         "pl.compare(pl.load_run(id_a), pl.load_run(id_b)).")
    if metric not in METRICS:
        raise StatsError(f"metric={metric!r} is not one of {METRICS!r}; use 'passed' for pass/fail, "
                         "'format_ok' for format compliance or 'score' for graded scores.")
    missing = [c for c in (*REQUIRED, metric) if c not in frame]
    if missing == ["format_ok"]:
        raise StatsError("the results have no format_ok column (saved before format verdicts were recorded); "
                         "load them with promptlab.Results.load, then compare results.check_format(), which "
                         "checks each answer's format.")
    if missing:
        raise StatsError(f"the results frame lacks columns {missing!r} (has {list(frame.columns)!r}); pass "
                         "a frame in the promptlab results schema (`Results.df`).")
    return frame


def _variants_of(frame: pd.DataFrame, baseline: str) -> list[str]:
    variants = [str(v) for v in pd.unique(frame["variant"].dropna())]
    if baseline not in variants:
        raise StatsError(f"baseline {baseline!r} is not a variant in these results; the variants are "
                         f"{variants!r}. Pass one of them as baseline=.")
    return variants


def _compare_rows(frame: pd.DataFrame, baseline: str, metric: str, seed: int, alpha: float,
                  by_category: bool) -> tuple[pd.DataFrame, list[str]]:
    paired, rows = _prepare(frame, metric)
    guard = _guard_table(rows, by_category)
    pooled: tuple[_Paired, _GuardTable] | None = None
    ib, tables, messages = paired.variants.index(baseline), [], []
    for iv, name in enumerate(paired.variants):
        if iv == ib:
            continue
        p, g = paired, guard
        if not _shares_model(paired, ib, iv):
            if pooled is None:
                pooled_paired, pooled_rows = _prepare(frame, metric, pool_models=True)
                pooled = pooled_paired, _guard_table(pooled_rows, by_category)
            p, g = pooled
            messages.append(f"variant {name!r} shares no model with baseline {baseline!r}: "
                            "paired across models")
        table = pd.DataFrame(_variant_rows(p, ib, iv, metric, seed, alpha, by_category))
        if not table.empty:
            tables.append(pd.concat([table, _guards(g, table, ib, iv, by_category)], axis=1))
    df = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return df, messages


def _finish(df: pd.DataFrame, metric: str, alpha: float, by_category: bool) -> pd.DataFrame:
    columns = COLUMNS if not by_category else [*COLUMNS[:3], "category", *COLUMNS[3:]]
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    df["metric"] = metric
    family = ["variant", "model"] if by_category else ["model"]
    adjust = benjamini_hochberg if by_category else holm
    tested = df["p_value"].where(df["n"] > 0)
    df["p_adj"] = tested.groupby([df[c] for c in family], sort=False).transform(adjust).fillna(1.0)
    df["ci_level"] = _levels(df, family, alpha, by_category)
    df[["ci_low", "ci_high", "ci_low_unadj", "ci_high_unadj", "method"]] = _intervals(df, alpha)
    df["verdict"] = _verdicts(df, alpha)
    name = "BH" if by_category else "Holm"
    for i in df.index[df["verdict"] == "borderline"]:
        note = _borderline_note(df.loc[i], alpha, metric, name)
        df.at[i, "note"] = f"{df.at[i, 'note']}; {note}" if df.at[i, "note"] else note
    for column in ("n", "cases", "n_dropped", "b", "c"):
        df[column] = df[column].astype("int64")
    return df[columns].reset_index(drop=True)


def _run(frame: pd.DataFrame, baseline: str, metric: str, seed: int, alpha: float,
         by_category: bool) -> tuple[pd.DataFrame, list[str]]:
    variants = _variants_of(frame, baseline)
    basis = BINARY.get(metric, metric)
    if len(variants) < 2:
        note = (f"only one variant ({baseline!r}) in the results: nothing to compare against the baseline; "
                "run two or more variants on the same suite.")
        return _finished(pd.DataFrame(), metric, alpha, by_category), [note]
    unverdicted = _without_verdicts(frame, metric) if metric in BINARY else []
    if metric in BINARY:  # the column compared as `passed` is, through the same machinery
        frame = frame.assign(passed=frame[metric].astype("boolean"))
    df, messages = _compare_rows(frame, baseline, basis, seed, alpha, by_category)
    return _finished(df, metric, alpha, by_category), unverdicted + messages


def _finished(df: pd.DataFrame, metric: str, alpha: float, by_category: bool) -> pd.DataFrame:
    """`_finish` on the metric's basis (``passed`` for pass/fail metrics), labelled with the metric itself."""
    out = _finish(df, BINARY.get(metric, metric), alpha, by_category)
    if len(out):
        out["metric"] = metric
        for said, meant in _WORDING.get(metric, ()):  # the pair notes speak of passing; say what passing means
            out["note"] = out["note"].str.replace(said, meant, regex=False)
    return out


_WORDING = {"format_ok": (("passed every case (failure rate", "was in format on every case (format failure rate"),
                          ("failed every case (pass rate", "broke the format on every case (compliance"))}


def _without_verdicts(frame: pd.DataFrame, metric: str) -> list[str]:
    """A message per variant with no value at all on a pass/fail metric (a prompt that declares no output)."""
    has = frame[metric].notna().groupby(frame["variant"], sort=False).any()
    return [f"variant {name!r} has no {metric} verdict (its prompt declares no output:), so it has no pairs; "
            "compare results.check_format(), which checks the format of every answer without one."
            for name, any_verdict in has.items() if not any_verdict]


def compare(results: Any, baseline: Any = "A", *, metric: str = "passed", seed: int = 0,
            alpha: float = 0.05, bayesian: bool | BetaPrior = False) -> Comparison:
    """Compare every variant with the baseline, paired by case, with honest statistics.

    Args:
        results: a promptlab `Results` (its ``.df`` is used) or a DataFrame in the results schema; or a run to
            compare with the run given as ``baseline`` (``compare(run_a, run_b)``), or a list of runs: runs are
            paired by case, the first is the baseline, and each run's variants are named after its run id
            (``pl.load_run(id)`` gives a stored run; see `promptlab.stats._crossrun`).
        baseline: the variant the others are compared with (or, comparing runs, the second run).
        metric: ``"passed"`` (pass rate; McNemar), ``"format_ok"`` (format compliance, paired the same way;
            failed calls have no verdict and are dropped) or ``"score"`` (graded; paired t + paired bootstrap).
        seed: seed of the bootstrap, so the same data give the same intervals.
        alpha: the level a verdict needs (on the Holm-adjusted p and the simultaneous interval).
        bayesian: also a Beta-Binomial read of each variant's pass rate against the baseline's
            (`Comparison.bayesian`): True for uniform Beta(1, 1) priors, or a `promptlab.stats.BetaPrior`.
            Pass/fail metrics only; a description beside the paired test, which stays the decision.

    Returns:
        A `Comparison`; its ``df`` has the columns in `COLUMNS` (see the module docstring).

    Raises:
        StatsError: an unknown metric, a frame without the schema's columns, or a baseline that is not among
            the variants (the message lists them). One variant only gives an empty comparison with a message.
    """
    if not 0 < alpha < 1:
        raise StatsError(f"alpha={alpha!r} must be between 0 and 1, e.g. 0.05.")
    notes: list[str] = []
    if is_runs(results, baseline):  # compare(run_a, run_b): runs paired by case, the first as baseline
        results, baseline, notes = runs_frame(results, None if isinstance(baseline, str) else baseline)
    frame = _frame(results, metric)
    prior = _beta_prior(bayesian, metric)
    df, messages = _run(frame, baseline, metric, seed, alpha, by_category=False)
    return Comparison(df, baseline=baseline, metric=metric, alpha=alpha, seed=seed, messages=notes + messages,
                      source=frame, prior=prior)


def _beta_prior(bayesian: Any, metric: str) -> BetaPrior | None:
    """``bayesian=`` as a prior (None: not asked for)."""
    if bayesian is None or bayesian is False:
        return None
    if not (bayesian is True or isinstance(bayesian, BetaPrior)):
        raise StatsError(f"bayesian={bayesian!r} is not understood; pass True (uniform Beta(1, 1) priors) or a "
                         "promptlab.stats.BetaPrior(alpha, beta).")
    if BINARY.get(metric, metric) != "passed":
        raise StatsError(f"the Beta-Binomial read is for pass/fail metrics; metric={metric!r} is graded. Use "
                         "metric='passed' or 'format_ok', or promptlab.stats.bayesian_effect on the means.")
    return BetaPrior() if bayesian is True else bayesian


def bayesian_table(df: pd.DataFrame, prior: BetaPrior, credibility: float = 0.95) -> pd.DataFrame:
    """The Beta-Binomial read of every row of a comparison table (`BAYESIAN_COLUMNS`).

    Counted over cases: a case's pass rate over its complete pairs is its share of a pass, so with repeats
    the counts are fractional (answers to one case are not independent; counting them would overstate the
    certainty). The two posteriors are independent: the read ignores the pairing the paired test uses.
    """
    keys = ["variant", "baseline", "model", *(["category"] if "category" in df else []), "metric"]
    rows = []
    for row in df.to_dict("records"):
        cases = int(row["cases"])
        if not cases:
            rows.append([*(row[k] for k in keys), 0, *[float("nan")] * 8,
                         f"Beta({prior.alpha:g}, {prior.beta:g}) on each rate", "no complete pairs"])
            continue
        read = beta_binomial(row["baseline_mean"] * cases, cases, row["variant_mean"] * cases, cases,
                             prior=prior, credibility=credibility)
        rows.append([*(row[k] for k in keys), cases, read.rate_a, read.rate_b, read.diff, read.ci_low,
                     read.ci_high, read.chance_to_beat, read.risk_a, read.risk_b, read.prior, read.note])
    columns = [*keys, *BAYESIAN_COLUMNS[4:]]
    return pd.DataFrame(rows, columns=columns)


class Comparison:
    """Variants against a baseline: a tidy DataFrame (``df``, columns in `COLUMNS`) that displays itself.

    Attributes:
        df: one row per variant × model (× category for `by_category`).
        baseline: the baseline variant.
        metric: ``"passed"``, ``"format_ok"`` or ``"score"``.
        alpha: the verdicts' level.
        seed: the bootstrap seed.
        messages: notes about the comparison as a whole (one variant only, pairing across models …).
        level: ``"variant"`` or ``"category"``.
        source: the results rows the comparison was computed from (None when built from a table alone).
        prior: the `BetaPrior` of the Bayesian read, None when it was not asked for.
        bayesian: the Beta-Binomial read per row (`BAYESIAN_COLUMNS`) on request, else None: chance to beat
            the baseline, the credible interval of the difference, the risk (expected loss) of each choice.
    """

    def __init__(self, df: pd.DataFrame, *, baseline: str, metric: str, alpha: float = 0.05, seed: int = 0,
                 messages: list[str] | None = None, source: pd.DataFrame | None = None,
                 level: str = "variant", prior: BetaPrior | None = None):
        self.df = df
        self.prior = prior
        self.bayesian = None if prior is None else bayesian_table(df, prior, 1 - alpha)
        self.baseline = baseline
        self.metric = metric
        self.alpha = alpha
        self.seed = seed
        self.messages = list(messages or [])
        self.level = level
        self.source = source

    def by_category(self) -> Comparison:
        """The same comparison within each case category, Benjamini–Hochberg-adjusted across categories."""
        if self.source is None:
            raise StatsError("this Comparison keeps no results rows to slice by category; build it with "
                             "compare(results, ...).")
        df, messages = _run(self.source, self.baseline, self.metric, self.seed, self.alpha, by_category=True)
        return Comparison(df, baseline=self.baseline, metric=self.metric, alpha=self.alpha, seed=self.seed,
                          messages=messages, source=self.source, level="category", prior=self.prior)

    @property
    def verdicts(self) -> dict[str, str]:
        """``{variant: verdict}`` (``{"variant @ model": verdict}`` when there are several models)."""
        several = self.df["model"].nunique() > 1 if len(self.df) else False
        keys = self.df["variant"] + (" @ " + self.df["model"] if several else "")
        return dict(zip(keys, self.df["verdict"], strict=True))

    def summary_text(self) -> str:
        """Plain-text lines, one per row, then the messages (for terminals and CI logs)."""
        lines = [f"{self.metric} vs baseline {self.baseline!r} ({self.level} level, alpha {self.alpha}; "
                 f"{self.interval_footing}):"]
        lines += [_row_text(row, BINARY.get(self.metric, self.metric)) for row in self.df.to_dict("records")]
        lines += [f"note: {m}" for m in self.messages]
        for _, headers, rows, note in self.extra_tables:
            lines += [f"Bayesian ({note}):"] + ["  " + ", ".join(f"{h} {v}" for h, v in zip(headers, r, strict=True))
                                                for r in rows]
        return "\n".join(lines)

    @property
    def extra_tables(self) -> list[tuple[str, list[str], list[list[str]], str]]:
        """The Beta-Binomial read as (title, headers, text rows, note) for the card; empty when not asked for."""
        if self.bayesian is None or self.bayesian.empty:
            return []
        by_cat = "category" in self.bayesian
        rows = [[r["variant"], r["model"], *([r["category"]] if by_cat else []), _pct(r["variant_rate"], ".1f"),
                 f"{_pct(r['diff'], '+.1f')} [{_pct(r['ci_low'], '+.1f')}, {_pct(r['ci_high'], '+.1f')}]",
                 _pct(r["chance_to_beat"], ".1f"), _pct(r["risk_baseline"], ".2f"), _pct(r["risk_variant"], ".2f")]
                for r in self.bayesian.to_dict("records")]
        headers = ["variant", "model", *(["category"] if by_cat else []), "posterior rate",
                   f"diff [{_level(1 - self.alpha)} credible]", f"chance to beat {self.baseline}",
                   f"risk of keeping {self.baseline}", "risk of switching"]
        note = (f"prior {self.bayesian['prior'].iloc[0]}; counted over cases, arms independent (the paired test "
                "above is the decision); not protected against peeking")
        return [(f"Bayesian read (Beta-Binomial): pass rate vs {self.baseline!r}", headers, rows, note)]

    @property
    def interval_footing(self) -> str:
        """What the displayed intervals are, in words: the footing of ``p_adj`` and the verdicts."""
        if self.level == "category":
            return ("intervals false-coverage-adjusted across categories (Benjamini–Yekutieli, the footing of the "
                    "BH-adjusted p)")
        return "intervals simultaneous across the variants on each model (Bonferroni, the footing of Holm's p)"

    def __len__(self) -> int:
        return len(self.df)

    def __repr__(self) -> str:
        if self.df.empty:
            return f"<Comparison vs {self.baseline!r} on {self.metric}: empty — {'; '.join(self.messages)}>"
        parts = [f"{r['variant']}{'/' + str(r['category']) if 'category' in r else ''} {r['verdict']} "
                 f"({_fmt_diff(r['diff'], BINARY.get(self.metric, self.metric))}, p_adj {r['p_adj']:.3g})"
                 for r in self.df.to_dict("records")]
        return f"<Comparison vs {self.baseline!r} on {self.metric}: {'; '.join(parts)}>"

    def _repr_html_(self) -> str:
        from .._display import comparison_html

        return comparison_html(self)


def _row_text(row: dict[str, Any], metric: str) -> str:
    where = f" [{row['category']}]" if "category" in row else ""
    ci = f"[{_fmt_diff(row['ci_low'], metric)}, {_fmt_diff(row['ci_high'], metric)}]"
    if row["n"]:
        ci += f" ({_level(row['ci_level'])} CI)"
    p = f"p {row['p_value']:.3g} (exact {row['p_exact']:.3g}, adj {row['p_adj']:.3g})"
    text = (f"  {row['variant']} @ {row['model']}{where}: {row['verdict']}, diff "
            f"{_fmt_diff(row['diff'], metric)} {ci}, {p}, n = {row['n']}, b = {row['b']}, c = {row['c']}; "
            f"{row['power_note']}")
    return text + (f" — {row['note']}" if row["verdict"] == "borderline" else "")


def _level(level: float) -> str:
    """``97.5%`` for 0.975."""
    return f"{100 * level:.4g}%"


def _pct(value: float, spec: str) -> str:
    """A share as a percentage (points for a difference), NA for unknown."""
    return "NA" if value != value else f"{format(100 * value, spec)}%"
