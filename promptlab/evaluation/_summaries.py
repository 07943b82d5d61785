"""The summary tables behind `Results` (accuracy, categories, failures, latency, cost, format compliance).

Each function takes the results frame and returns a tidy DataFrame; the statistics themselves (Wilson
interval, quantile interval) come from `promptlab.stats` (`_intervals`, `_quantiles`), their one owner.

Accuracy has one definition, `accuracy_row`, which every headline number uses (`Results.accuracy`,
`Results.by_category`, `EvalResult`, the registry's evidence summary, the card, the repr and so
``promptlab eval --min-accuracy``): **passed / calls**, where a call with no verdict (a failed call, a scoring
error, a judge failure, a budget stop) counts as a failure, as ``configs/gates.yaml`` says.

Intervals: one answer per case → Wilson over the calls; several answers to a case (repeats) → the SE over
per-case pass rates (answers to one case are not independent — Miller 2024, "Adding Error Bars to Evals"),
never narrower than Wilson at the effective sample size, so all-agreeing cases keep a real interval
(`promptlab.stats._intervals.case_proportion_interval`).

Latency: summaries leave cached answers out (their latency measures a past call, not this run), as the
comparison's p95 guardrail does; the ``cached_excluded`` column counts them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._display import fmt_pct
from ..providers._base import OutputConstraint
from ..stats._intervals import case_proportion_interval, wilson_interval
from ..stats._quantiles import QUANTILE_METHOD, live_latency, quantile_ci

ACCURACY_COLUMNS = ["n", "scored", "errors", "passed", "accuracy", "ci_low", "ci_high", "accuracy_scored",
                    "cases", "se_cases"]
"""Columns of `accuracy_row` (after the group keys in `accuracy_table`):

* ``n``: calls.
* ``scored``: calls with a pass/fail verdict.
* ``errors``: calls with no verdict (failed call, scoring error, judge failure); each counts as a failure.
* ``passed``: calls that passed.
* ``accuracy``: passed / n — the one headline accuracy; NA only when the scorer gives graded scores and no
  pass/fail verdict at all (no call failed and none has a verdict).
* ``ci_low``, ``ci_high``: its interval, on the same basis (Wilson over calls; over cases with repeats).
* ``accuracy_scored``: passed / scored, for diagnosis only (how good the answers that came back were).
* ``cases``: distinct cases.
* ``se_cases``: with repeats, the SE of per-case pass rates over cases; NA with one answer per case.
"""
_COUNTS = ("n", "scored", "errors", "passed", "cases")


def _wilson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    interval = wilson_interval(int(successes), int(n), confidence=confidence)
    return float(interval.low), float(interval.high)


def _graded_only(verdicts: pd.Series, rows: pd.DataFrame) -> bool:
    """No call has a pass/fail verdict and none failed: the scorer gives graded scores only (accuracy NA)."""
    failed = rows["error_type"].notna().any() if "error_type" in rows else False
    return bool(verdicts.notna().sum() == 0 and not failed)


def accuracy_row(rows: pd.DataFrame, confidence: float = 0.95) -> dict[str, Any]:
    """Accuracy of a set of calls — the one definition every summary and gate uses (`ACCURACY_COLUMNS`).

    ``accuracy`` is passed / calls: a call with no verdict (failed call, scoring error, judge failure) is a
    failure. The interval is Wilson over the calls; when a case was answered more than once it is taken over
    cases (`promptlab.stats._intervals.case_proportion_interval`).

    Args:
        rows: results rows (``passed`` and ``case_id``; ``error_type`` when there is one).
        confidence: coverage of the interval.
    """
    verdicts = rows["passed"].astype("boolean")
    n, scored = len(verdicts), int(verdicts.notna().sum())
    passed = int(verdicts.fillna(False).astype(bool).sum())
    cases = int(rows["case_id"].nunique(dropna=False)) if "case_id" in rows else n
    row: dict[str, Any] = {"n": n, "scored": scored, "errors": n - scored, "passed": passed,
                           "accuracy": passed / n if n else np.nan, "ci_low": np.nan, "ci_high": np.nan,
                           "accuracy_scored": passed / scored if scored else np.nan, "cases": cases,
                           "se_cases": np.nan}
    if n == 0 or _graded_only(verdicts, rows):
        return {**row, "errors": 0, "accuracy": np.nan}
    if cases < n:  # some case answered more than once: answers to one case are not independent
        values = verdicts.fillna(False).astype(bool).to_numpy(dtype=float)
        ids = rows["case_id"].astype(object).where(rows["case_id"].notna(), "<NA>").to_numpy(dtype=object)
        interval = case_proportion_interval(values, ids, confidence)
        return {**row, "ci_low": interval.low, "ci_high": interval.high, "se_cases": interval.se}
    row["ci_low"], row["ci_high"] = _wilson(passed, n, confidence)
    return row


def accuracy_table(df: pd.DataFrame, by: list[str], confidence: float) -> pd.DataFrame:
    """`accuracy_row` per group (`ACCURACY_COLUMNS` after the group keys)."""
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in by + ACCURACY_COLUMNS})
    records = [{**dict(zip(by, keys if isinstance(keys, tuple) else (keys,), strict=True)),
                **accuracy_row(group, confidence)}
               for keys, group in df.groupby(by, sort=False, dropna=False)]
    table = pd.DataFrame(records, columns=by + ACCURACY_COLUMNS)
    for column in _COUNTS:
        table[column] = table[column].astype("Int64")
    return table


def verdict_counts(row: Any) -> str:
    """``"12 scored · 8 errors"``: what the rate beside it is made of (``row`` has ``scored`` and ``errors``)."""
    return f"{_get(row, 'scored')} scored · {_get(row, 'errors')} errors"


def _get(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, dict) else getattr(row, name)


FAILURE_COLUMNS = ["case_id", "variant", "model", "repeat", "category", "input", "expected", "actual", "reason"]


def failures_table(df: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """Scored answers that failed, hardest categories first (adversarial, edge, then the rest)."""
    failed = df[df["passed"].eq(False).fillna(False).astype(bool)].rename(columns={"output": "actual"})
    order = {"adversarial": 0, "edge_case": 1}
    failed = failed.assign(_rank=failed["category"].map(lambda c: order.get(c, 2)))
    failed = failed.sort_values(["_rank", "case_id", "variant"], kind="stable")[FAILURE_COLUMNS]
    return failed.head(limit).reset_index(drop=True) if limit else failed.reset_index(drop=True)


def _latency_row(values: np.ndarray, confidence: float) -> dict[str, Any]:
    row: dict[str, Any] = {"n": len(values)}
    for q, name in ((0.5, "p50"), (0.95, "p95")):
        if len(values) == 0:
            row.update({f"{name}_s": np.nan, f"{name}_ci_low": np.nan, f"{name}_ci_high": np.nan})
            continue
        ci = quantile_ci(values, q=q, confidence=confidence)
        row.update({f"{name}_s": float(ci.estimate), f"{name}_ci_low": float(ci.low),
                    f"{name}_ci_high": float(ci.high)})
    return row


LATENCY_COLUMNS = ["n", "cached_excluded", "p50_s", "p50_ci_low", "p50_ci_high", "p95_s", "p95_ci_low",
                   "p95_ci_high"]


def latency_table(df: pd.DataFrame, by: list[str], confidence: float) -> pd.DataFrame:
    """p50 and p95 latency per group, named quantile definition, with order-statistic CIs.

    Only calls made in this run count: cached answers are left out (their latency is a past call's) and
    counted in ``cached_excluded``; ``n`` is the calls measured. A group whose answers were all cached keeps
    its row, with NA latencies.
    """
    answered = df[df["latency_s"].notna()]
    if answered.empty:
        return pd.DataFrame(columns=by + LATENCY_COLUMNS)
    live = live_latency(answered)
    records = []
    for keys, group in answered.groupby(by, sort=False, dropna=False):
        values = live.loc[group.index].dropna().to_numpy(dtype=float)
        row = _latency_row(values, confidence)
        row["cached_excluded"] = len(group) - len(values)
        records.append({**dict(zip(by, keys if isinstance(keys, tuple) else (keys,), strict=True)), **row})
    table = pd.DataFrame(records, columns=by + LATENCY_COLUMNS)
    table["n"] = table["n"].astype("Int64")
    table["cached_excluded"] = table["cached_excluded"].astype("Int64")
    table.attrs["quantile_method"] = QUANTILE_METHOD
    return table


def _sum_or_na(values: pd.Series) -> float:
    """Sum that stays NA when any value is unknown (unknown cost is not zero cost)."""
    return float("nan") if values.isna().any() or values.empty else float(values.sum())


def cost_table(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Calls, tokens and USD per group; costs NA when any answered call has an unknown price."""
    answered = df[df["output"].notna()]
    grouped = answered.groupby(by, sort=False)
    table = grouped.agg(calls=("case_id", "size"))
    for column in ("input_tokens", "output_tokens"):  # unknown counts make an unknown total, not a smaller one
        table[column] = grouped[column].agg(_sum_or_na).astype("Int64")
    table["cost_usd"] = grouped["cost_usd"].agg(_sum_or_na)
    table["cost_per_call_usd"] = table["cost_usd"] / table["calls"]
    table["cost_per_1k_calls_usd"] = 1000 * table["cost_per_call_usd"]
    return table.reset_index()


FORMAT_COLUMNS = ["n", "format_ok", "compliance", "ci_low", "ci_high", "calls", "failed_calls", "source", "enforced"]
"""Columns of `format_table` (after the group keys):

* ``n``: answers with a format verdict — the denominator.
* ``format_ok``: of them, answers in the format.
* ``compliance``: format_ok / n; NA (never 0) when no answer has a verdict (every call failed).
* ``ci_low``, ``ci_high``: its Wilson interval over the answers.
* ``calls``: every call of the group; ``failed_calls``: calls left out because there is no answer to check
  (a failed call; with a check on the output, an answer the run's transform could not read).
* ``source``: where the verdicts come from — ``format_ok`` (recorded when the call was made, against the
  prompt's declared ``output:``), ``scorer`` (the check passed in), ``json`` (no declared output: the answer
  parses as JSON, the fallback for results without format verdicts).
* ``enforced``: how the format was held (``native``, ``validated``, counted when both occur), NA without one.
"""


def format_table(df: pd.DataFrame, by: list[str], scorer: Any, confidence: float) -> pd.DataFrame:
    """Format compliance per group with its Wilson interval (`FORMAT_COLUMNS`).

    A group whose rows carry ``format_ok`` uses those verdicts; ``scorer``, when given, is applied to every
    answer instead; otherwise answers are checked for valid JSON. Failed calls are left out and counted.
    """
    records = []
    for keys, group in df.groupby(by, sort=False, dropna=False):
        verdicts, source = _group_verdicts(group, scorer)
        known = verdicts.dropna().astype(bool)
        n, k = len(known), int(known.sum())
        low, high = _wilson(k, n, confidence)
        records.append({**dict(zip(by, keys if isinstance(keys, tuple) else (keys,), strict=True)), "n": n,
                        "format_ok": k, "compliance": k / n if n else np.nan, "ci_low": low, "ci_high": high,
                        "calls": len(group), "failed_calls": len(group) - n, "source": source,
                        "enforced": _enforced_text(group)})
    table = pd.DataFrame(records, columns=by + FORMAT_COLUMNS)
    for column in ("n", "format_ok", "calls", "failed_calls"):
        table[column] = table[column].astype("Int64")
    return table


def _group_verdicts(group: pd.DataFrame, scorer: Any) -> tuple[pd.Series, str]:
    """The format verdict of each row (NA: no verdict) and where the verdicts come from."""
    recorded = group["format_ok"].astype("boolean") if "format_ok" in group else None
    if scorer is None and recorded is not None and recorded.notna().any():
        return recorded, "format_ok"
    check = scorer
    if check is None:
        from ._scoring import JsonValid

        check = JsonValid()
    return checked_verdicts(group["output"], check).astype("boolean"), "scorer" if scorer is not None else "json"


def checked_verdicts(outputs: pd.Series, check: Any, reasons: bool = False) -> pd.Series:
    """``check`` (a scorer) applied to each answer: True / False, NA where there is no answer (and with
    ``reasons``, a frame of ``ok`` and ``reason``). A check that raises counts as a format failure."""
    from ..authoring._suite import Case
    from ._scoring import score_one

    placeholder = Case(id="format", input="")
    ok, why = [], []
    for text in outputs:
        if text is None or text is pd.NA or (isinstance(text, float) and np.isnan(text)):
            ok.append(pd.NA)
            why.append(pd.NA)
            continue
        score, error = score_one(check, placeholder, str(text))
        ok.append(bool(score.passed))
        why.append(error or (None if score.passed else score.reason))
    verdicts = pd.Series(pd.array(ok, dtype="boolean"), index=outputs.index)
    if reasons:
        return pd.DataFrame({"ok": verdicts, "reason": pd.array(why, dtype="string")}, index=outputs.index)
    return verdicts


def with_format_checked(df: pd.DataFrame, check: Any) -> pd.DataFrame:
    """``df`` with a format verdict for every answer that has none (recorded verdicts are kept).

    ``check`` is an `OutputConstraint` — the check providers apply when they validate, which also gives
    ``parsed`` — or a scorer; a failed check's reason goes to ``format_error``.
    """
    out = df.copy()
    missing = out["format_ok"].isna() & out["output"].notna()
    out["format_ok"] = out["format_ok"].astype("boolean")
    out["format_error"] = out["format_error"].astype("string")
    if isinstance(check, OutputConstraint):
        read = [check.check(str(text)) for text in out.loc[missing, "output"]]
        index = out.index[missing]
        out.loc[missing, "format_ok"] = pd.array([error is None for _, error in read], dtype="boolean")
        out.loc[missing, "format_error"] = pd.array([error for _, error in read], dtype="string")
        parsed = out["parsed"].astype(object).copy()
        for at, (value, error) in zip(index, read, strict=True):  # one by one: a value may be a list or dict
            parsed.at[at] = value if error is None else pd.NA
        out["parsed"] = parsed
        return out
    found = checked_verdicts(out.loc[missing, "output"], check, reasons=True)
    out.loc[missing, "format_ok"] = found["ok"]
    out.loc[missing, "format_error"] = found["reason"]
    return out


def _enforced_text(group: pd.DataFrame) -> Any:
    """``native`` / ``validated``; ``native 3 · validated 17`` when both occur; NA when nothing was enforced."""
    if "enforced" not in group:
        return pd.NA
    counts = group["enforced"].dropna().astype(str).value_counts(sort=False).sort_index()
    if counts.empty:
        return pd.NA
    return str(counts.index[0]) if len(counts) == 1 else " · ".join(f"{k} {v}" for k, v in counts.items())


def summary_table(results: Any) -> pd.DataFrame:
    """Accuracy, errors, latency and cost side by side, one row per variant × model."""
    acc = results.accuracy()[["variant", "model", "n", "scored", "errors", "accuracy", "ci_low", "ci_high"]]
    lat = results.latency()
    lat = lat[["variant", "model", "p50_s", "p95_s", "cached_excluded"]] if not lat.empty else None
    cost = results.cost()[["variant", "model", "input_tokens", "output_tokens", "cost_usd",
                           "cost_per_1k_calls_usd"]]
    table = acc.merge(cost, on=["variant", "model"], how="left")
    return table.merge(lat, on=["variant", "model"], how="left") if lat is not None else table


def headline(results: Any) -> str:
    """The one-line repr: rows, then each variant's accuracy with what it is made of."""
    df = results.df
    if df.empty:
        return "Results(0 rows)"
    acc = results.accuracy()
    parts = ", ".join(f"{r.variant}@{r.model}={fmt_pct(r.accuracy)} ({verdict_counts(r)})"
                      for r in acc.itertuples())
    return f"Results({len(df)} rows; accuracy {parts})"
