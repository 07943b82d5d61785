"""`SearchResult`: what `optimize_prompt` found, said honestly.

* the **search score** of the winner — its accuracy on the search cases, which chose it among many candidates and
  is therefore optimistic (the winner's curse); it is labelled so wherever it shows;
* the **confirmation**: the winner and the starting prompt run once on cases the search never saw, each with its
  accuracy and Wilson interval (`promptlab.evaluation._summaries.accuracy_row`), and the paired test of the winner
  against the start (`promptlab.stats.compare`: McNemar mid-p, Newcombe's paired interval, the verdict);
* **what was tried**: every candidate, the stage and moves that made it, how far it got in the race, the calls it
  cost; the calls and dollars spent, and why the search stopped early if it did;
* `plot_racing` (the race, rung by rung), `export` (the winner as a new prompt version with the search record
  attached as evidence the registry's gates read) and the notebook card.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .._display import card, esc, fmt_pct, paragraph, table
from ..errors import ArgumentError
from ._candidates import Candidate
from ._search_race import NOT_SCORED, RaceStep, Spend
from ._search_split import SearchSplit

OPTIMISTIC = ("optimistic: the search score is the best of many candidates on the cases that chose it, so it "
              "overstates how the winner does on new cases; the confirmation score is the one to trust")


@dataclass
class SearchResult:
    """The outcome of `optimize_prompt` (see the module docstring).

    Attributes:
        start, winner: the starting candidate and the one the search chose (the start when nothing beat it).
        split: the pool, search and confirmation parts.
        steps: every rung of every stage's race.
        generated: candidates generated per stage.
        search_rows: the search's results rows (one frame per run).
        confirmation: `Results` of the start and the winner on the confirmation cases.
        spend: calls and dollars spent, and why the search stopped early (None when it did not).
    """

    start: Candidate
    winner: Candidate
    split: SearchSplit
    steps: list[RaceStep]
    generated: dict[str, int]
    search_rows: list[pd.DataFrame]
    confirmation: Any
    spend: Spend
    model: str
    seed: int
    eta: int
    _comparison: Any = field(default=None, repr=False)

    # ---- the numbers ---------------------------------------------------------------------------------------
    @property
    def improved(self) -> bool:
        """Whether the search chose something other than the start (on the search cases)."""
        return self.winner.name != self.start.name

    @property
    def search_score(self) -> dict[str, Any]:
        """The winner's accuracy on the search cases at its last rung (optimistic: see `OPTIMISTIC`)."""
        mine = [s for s in self.steps if s.candidate.name == self.winner.name]
        if not mine:
            return {"accuracy": math.nan, "n": 0, "optimistic": True}
        last = max(reversed(mine), key=lambda s: s.cases)  # the most cases; the latest stage among equals
        return {"accuracy": last.accuracy, "passed": last.passed, "n": last.n, "optimistic": True}

    def confirmation_accuracy(self) -> pd.DataFrame:
        """Accuracy of the start and the winner on the confirmation cases, with 95% Wilson intervals."""
        table_ = self.confirmation.accuracy(by=["variant"])
        order = {self.start.name: 0, self.winner.name: 1}
        return table_.sort_values("variant", key=lambda s: s.map(order)).reset_index(drop=True)

    @property
    def comparison(self) -> Any:
        """The paired test of the winner against the start on the confirmation cases (None when the start won)."""
        if self._comparison is None and self.improved:
            from ..stats._comparison import compare

            self._comparison = compare(self.confirmation, baseline=self.start.name, seed=self.seed)
        return self._comparison

    def tried(self) -> pd.DataFrame:
        """One row per candidate and stage: its moves, how far it got, its last search score, its calls."""
        rows = []
        calls = self._calls_by_candidate()
        for (stage, name), group in _by_candidate(self.steps).items():
            last = group[-1]
            cand = last.candidate
            rows.append({"stage": stage, "candidate": name, "origin": cand.origin, "moves": " → ".join(cand.moves),
                         "model": cand.model or self.model, "rungs": len(group), "cases": last.cases,
                         "search_accuracy": last.accuracy, "kept_to_end": last.kept and last.cases == max(
                             s.cases for s in self.steps if s.stage == stage),
                         "stage_winner": _stage_winner(self.steps, stage) == name,
                         "calls": calls.get((stage, cand.prompt.content_hash), 0)})
        return pd.DataFrame(rows)

    def _calls_by_candidate(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for frame in self.search_rows:
            made = frame[~frame["cached"].astype(bool) & ~frame["error_type"].isin(NOT_SCORED)]
            for (stage, phash), n in made.groupby(["stage", "prompt_hash"]).size().items():
                out[(stage, phash)] = out.get((stage, phash), 0) + int(n)
        return out

    def calls(self) -> dict[str, Any]:
        """Calls sent to models (search and confirmation), answers from the cache, dollars (None: unknown)."""
        confirm = len(self.confirmation.df)
        return {"made": self.spend.calls, "cached": self.spend.cached, "confirmation_rows": confirm,
                "usd": None if self.spend.usd is None else float(self.spend.usd), "max_calls": self.spend.max_calls,
                "stopped": self.spend.stopped}

    def record(self) -> dict[str, Any]:
        """The search record: JSON-ready, what `export` attaches as evidence and the CLI prints."""
        acc = self.confirmation_accuracy()
        arms = {str(r["variant"]): {"accuracy": _num(r["accuracy"]), "ci_low": _num(r["ci_low"]),
                                    "ci_high": _num(r["ci_high"]), "passed": int(r["passed"]), "n": int(r["n"])}
                for r in acc.to_dict("records")}
        test = None
        if self.comparison is not None and len(self.comparison.df):
            row = self.comparison.df.iloc[0]
            test = {"diff": _num(row["diff"]), "ci_low": _num(row["ci_low"]), "ci_high": _num(row["ci_high"]),
                    "p_value": _num(row["p_value"]), "p_exact": _num(row["p_exact"]), "b": int(row["b"]),
                    "c": int(row["c"]), "n": int(row["n"]), "verdict": str(row["verdict"]),
                    "method": str(row["method"])}
        score = self.search_score
        return {
            "kind": "prompt_search", "model": self.model, "seed": self.seed, "eta": self.eta,
            "start": {"ref": self.start.prompt.ref, "hash": self.start.prompt.content_hash},
            "winner": {"name": self.winner.name, "ref": self.winner.prompt.ref,
                       "hash": self.winner.prompt.content_hash, "moves": list(self.winner.moves),
                       "origin": self.winner.origin, "model": self.winner.model},
            "split": {**self.split.sizes(), "seed": self.split.seed, "pool_source": self.split.pool_source,
                      "confirm_ids": self.split.ids()["confirm"]},
            "search_score": {"accuracy": _num(score["accuracy"]), "n": score["n"], "optimistic": True,
                             "note": OPTIMISTIC},
            "confirmation": {"arms": arms, "paired_test": test,
                             "note": "the start and the winner answered these cases once, after the search"},
            "tried": {"candidates": int(self.tried()["candidate"].nunique()) if self.steps else 0,
                      "generated": dict(self.generated)},
            "calls": self.calls(),
        }

    # ---- words -------------------------------------------------------------------------------------------
    def verdict(self) -> str:
        """One sentence: what the confirmation says about the winner."""
        if not self.improved:
            return ("no candidate beat the starting prompt on the search cases; the start is kept "
                    f"(confirmation accuracy {fmt_pct(self.confirmation_accuracy()['accuracy'].iloc[0])})")
        rec = self.record()["confirmation"]
        test = rec["paired_test"]
        start, win = rec["arms"][self.start.name], rec["arms"][self.winner.name]
        gain = f"{fmt_pct(start['accuracy'])} → {fmt_pct(win['accuracy'])} on {win['n']} confirmation cases"
        if test is None:
            return f"{gain}; no pairs to test"
        real = {"better": "the gain is real (paired test)", "worse": "the winner is worse on new cases",
                "borderline": "borderline: the test and the interval disagree at the margin",
                "no detectable difference": "the paired test cannot tell it from chance"}[test["verdict"]]
        return (f"{gain}: {100 * test['diff']:+.1f} points [95% CI {100 * test['ci_low']:+.1f}, "
                f"{100 * test['ci_high']:+.1f}], McNemar mid-p {test['p_value']:.3g} — {real}")

    def to_markdown(self) -> str:
        """The report as Markdown (the CLI's ``--out x.md`` and CI step summaries)."""
        rec = self.record()
        score = rec["search_score"]
        lines = [f"## Prompt search: {rec['start']['ref']} on {rec['model']}", "",
                 f"- winner: `{self.winner.name}` ({' → '.join(self.winner.moves) or 'no moves'})",
                 f"- search score: {fmt_pct(score['accuracy'])} on {score['n']} search cases — {OPTIMISTIC}",
                 f"- confirmation: {self.verdict()}",
                 f"- split: {rec['split']['pool']} pool, {rec['split']['search']} search, "
                 f"{rec['split']['confirm']} confirmation cases (seed {rec['split']['seed']})",
                 f"- tried: {rec['tried']['candidates']} candidates ({_stages_text(rec['tried']['generated'])})",
                 f"- calls: {_calls_text(rec['calls'])}", "",
                 "| variant | confirmation accuracy | 95% CI | cases |", "| --- | --- | --- | --- |"]
        for name, arm in rec["confirmation"]["arms"].items():
            lines.append(f"| {name} | {fmt_pct(arm['accuracy'])} | {fmt_pct(arm['ci_low'])} – "
                         f"{fmt_pct(arm['ci_high'])} | {arm['n']} |")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return (f"<SearchResult {self.start.prompt.ref} → {self.winner.name}: {self.verdict()}; "
                f"calls {_calls_text(self.calls())}>")

    def _repr_html_(self) -> str:
        rec = self.record()
        score = rec["search_score"]
        arms = table(["variant", "confirmation accuracy", "95% CI", "cases"],
                     [[name, fmt_pct(a["accuracy"]), f"{fmt_pct(a['ci_low'])} – {fmt_pct(a['ci_high'])}", a["n"]]
                      for name, a in rec["confirmation"]["arms"].items()])
        tried = self.tried()
        top = tried.sort_values(["stage_winner", "cases", "search_accuracy"], ascending=False).head(12)
        tried_html = table(["stage", "candidate", "moves", "cases", "search accuracy (optimistic)", "calls"],
                           [[r.stage, r.candidate, r.moves, r.cases, fmt_pct(r.search_accuracy), r.calls]
                            for r in top.itertuples()]) if len(tried) else paragraph("no candidate was raced")
        css = "pl-good" if (rec["confirmation"]["paired_test"] or {}).get("verdict") == "better" else ""
        return card(f"Prompt search: {rec['start']['ref']} → {self.winner.name}",
                    paragraph(self.verdict(), css),
                    paragraph(f"search score {fmt_pct(score['accuracy'])} on {score['n']} search cases — "
                              f"{OPTIMISTIC}", "pl-muted"),
                    "<b>confirmation (untouched cases)</b>", arms,
                    f"<b>what was tried</b> ({esc(rec['tried']['candidates'])} candidates; calls "
                    f"{esc(_calls_text(rec['calls']))})", tried_html)

    # ---- the race, drawn -----------------------------------------------------------------------------------
    def plot_racing(self) -> Any:
        """A plotly figure per stage: each candidate's search accuracy against the cases it had answered, rung by
        rung; lines end where a candidate was dropped; the stage's winner is drawn thick."""
        from plotly.subplots import make_subplots

        stages = list(dict.fromkeys(s.stage for s in self.steps))
        if not stages:
            raise ArgumentError("nothing was raced (no stage generated a candidate, or the budget stopped the "
                                "search before its first rung); there is no race to plot.")
        fig = make_subplots(rows=1, cols=len(stages), shared_yaxes=True, subplot_titles=stages)
        for col, stage in enumerate(stages, start=1):
            winner = _stage_winner(self.steps, stage)
            for (st, name), group in _by_candidate(self.steps).items():
                if st != stage:
                    continue
                chosen = name == winner
                fig.add_scatter(x=[s.cases for s in group], y=[s.accuracy for s in group], mode="lines+markers",
                                name=name, legendgroup=name, showlegend=chosen, row=1, col=col,
                                line={"width": 4 if chosen else 1, "color": "#C44E52" if chosen else "#8C8C8C"},
                                opacity=1.0 if chosen else 0.5, hovertemplate=f"{name}<br>%{{x}} cases: %{{y:.0%}}")
            fig.update_xaxes(title_text="search cases answered", row=1, col=col)
        fig.update_yaxes(title_text="search accuracy (optimistic)", tickformat=".0%", row=1, col=1)
        fig.update_layout(title=f"Successive halving (eta={self.eta}): {self.verdict()}"[:160], height=420,
                          legend={"orientation": "h", "y": -0.25})
        return fig

    # ---- export ------------------------------------------------------------------------------------------
    def evidence(self) -> Any:
        """The confirmation as evidence: the paired `Comparison` (winner vs start) carrying the search record in
        its ``meta["search"]``, which the registry stores on the evidence record."""
        if not self.improved:
            raise ArgumentError("the search kept the starting prompt: there is no new version to attach evidence "
                                "to. Widen the search (moves=, budget=) or keep the prompt as it is.")
        comparison = self.comparison
        runs = [m.get("run_id") for m in (self.confirmation.meta.get("runs") or [self.confirmation.meta])]
        comparison.meta = {"search": self.record(), "run_id": next((r for r in runs if r), None)}
        return comparison

    def export(self, target: Any, *, override: str = "", author: str | None = None,
               changes: str | None = None) -> Any:
        """Write the winner as a new prompt version with the search record attached.

        Args:
            target: a `Registry` — the winner is registered (state ``draft``) with the confirmation comparison and
                the search record as evidence, which its gates read; or a folder — the prompt YAML and
                ``<name>_v<version>.search.json`` are written there.
            override: for a registry, why to export although the paired test did not find the winner better
                (recorded in the history for the reviewer). Without it such an export is refused.
            author, changes: for a registry, the changelog entry's author and text.

        Returns:
            The registered `Prompt` (registry), or the path of the written prompt file (folder).
        """
        if hasattr(target, "export") and hasattr(target, "promote"):
            return target.export(self.winner.prompt, self.evidence(), override=override, author=author,
                                 changes=changes)
        if not self.improved:
            raise ArgumentError("the search kept the starting prompt: there is no new version to export.")
        folder = Path(target)
        stem = f"{self.winner.prompt.name}_v{self.winner.prompt.version}".replace("+", "_")
        path = self.winner.prompt.save(folder / f"{stem}.yaml")
        record = json.dumps(self.record(), indent=2, ensure_ascii=False, default=str)
        (folder / f"{stem}.search.json").write_text(record + "\n", encoding="utf-8")
        return path


def _num(value: Any) -> float | None:
    """A float for JSON, None for unknown (never 0)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _by_candidate(steps: list[RaceStep]) -> dict[tuple[str, str], list[RaceStep]]:
    out: dict[tuple[str, str], list[RaceStep]] = {}
    for step in steps:
        out.setdefault((step.stage, step.candidate.name), []).append(step)
    return out


def _stage_winner(steps: list[RaceStep], stage: str) -> str | None:
    """The stage's winner: the candidate ranked first at the stage's last rung."""
    mine = [s for s in steps if s.stage == stage]
    if not mine:
        return None
    last_rung = max(s.rung for s in mine)
    return next(s.candidate.name for s in mine if s.rung == last_rung and s.best)


def _stages_text(generated: dict[str, int]) -> str:
    return ", ".join(f"{stage}: {n}" for stage, n in generated.items()) or "no stage generated any"


def _calls_text(calls: dict[str, Any]) -> str:
    cap = f" of {calls['max_calls']}" if calls.get("max_calls") is not None else ""
    usd = "unknown USD" if calls["usd"] is None else f"{calls['usd']:.4f} USD"
    stopped = f"; stopped early: {calls['stopped']}" if calls.get("stopped") else ""
    return f"{calls['made']}{cap} made, {calls['cached']} from the cache, {usd}{stopped}"
