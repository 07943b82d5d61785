"""`pl.compare`: the paired comparison of `promptlab.stats`, given results or recorded runs, recorded in the store.

`promptlab.stats.compare` is the pure statistic (it sits below the run store in the layers). The face's
``compare`` adds what a notebook needs around it: run ids (``pl.compare("3f2a…", "9c1b…")``, resolved with
`load_run`) and a record of the comparison in the run store (kind ``comparison``, naming the runs it read), so a
comparison can be found again like the runs it compared.
"""

from __future__ import annotations

from typing import Any

from ..stats._comparison import Comparison
from ..stats._comparison import compare as paired_compare
from ._runstore import load_run, record_artifact


def compare(results: Any, baseline: Any = "A", *, metric: str = "passed", seed: int = 0, alpha: float = 0.05,
            record: bool = True, bayesian: Any = False) -> Comparison:
    """Compare variants paired by case (`promptlab.stats.compare`), or recorded runs by their ids.

    Args:
        results: a `Results`, or a run id (then ``baseline`` is the other run's id: ``compare(run_a, run_b)``),
            or a list of runs or run ids (the first is the baseline).
        baseline: the baseline variant; comparing two runs, the second run.
        metric, seed, alpha, bayesian: as `promptlab.stats.compare` (``bayesian=True`` adds the Beta-Binomial read).
        record: record the comparison in the run store (``pl.runs(kind="comparison")``).
    """
    if isinstance(results, str):  # compare("id_a", "id_b"): both are runs in the store
        results, baseline = load_run(results), load_run(baseline) if isinstance(baseline, str) else baseline
    elif isinstance(results, list | tuple):
        results = [load_run(item) if isinstance(item, str) else item for item in results]
    comparison = paired_compare(results, baseline, metric=metric, seed=seed, alpha=alpha, bayesian=bayesian)
    if record:
        record_artifact("comparison", comparison.df, sources=_run_ids(results, baseline),
                        details={"baseline": str(comparison.baseline), "metric": metric, "alpha": alpha,
                                 "seed": seed, "messages": list(comparison.messages)})
    return comparison


def _run_ids(*inputs: Any) -> list[str]:
    """The ids of the recorded runs behind the inputs (results of several runs name each)."""
    found: list[str] = []
    for item in inputs:
        for one in item if isinstance(item, list | tuple) else [item]:
            meta = getattr(one, "meta", None) or {}
            for run in meta.get("runs") or [meta]:
                if run.get("run_id") and run["run_id"] not in found:
                    found.append(run["run_id"])
    return found
