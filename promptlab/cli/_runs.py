"""``promptlab runs list | show | diff | gc``: the run store from a terminal (`promptlab.evaluation._runstore`).

Every ``pl.run`` and ``promptlab eval`` is recorded under ``$PROMPTLAB_RUNS_DIR``, else
``<project root>/.promptlab/runs/``. Exit codes: 0 done, 2 bad arguments (an unknown run id, an ambiguous prefix).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

EXIT_OK = 0
Handler = Callable[[argparse.Namespace], int]
_LIST = ["run_id", "started_at", "status", "suite", "cases", "sample", "variants", "models", "rows", "errors",
         "accuracy", "cost_usd", "git"]
_COMPARE = ["variant", "baseline", "model", "n", "baseline_mean", "variant_mean", "diff", "ci_low", "ci_high",
            "p_adj", "verdict"]


def add_runs_commands(sub: argparse._SubParsersAction) -> None:
    """The ``runs`` command and its actions."""
    p = sub.add_parser("runs", help="list, show, compare and clean up recorded runs",
                       description="Every run is recorded with its provenance under $PROMPTLAB_RUNS_DIR, else "
                                   "<project root>/.promptlab/runs/. A run id may be shortened to a unique prefix.")
    actions = p.add_subparsers(dest="runs_command", required=True)
    listing = actions.add_parser("list", help="recorded runs, newest first")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (default 20; 0 for all)")
    listing.add_argument("--status", default=None, choices=["running", "complete", "interrupted", "incomplete"])
    listing.add_argument("--suite", default=None, help="only runs of this suite (name or recorded path)")
    listing.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    show = actions.add_parser("show", help="one run's provenance and accuracy")
    show.add_argument("run_id", help="a run id or a unique prefix of one")
    show.add_argument("--json", action="store_true", help="print the run's provenance entry as JSON")
    diff = actions.add_parser("diff", help="what changed between two runs, and their answers compared by case")
    diff.add_argument("run_a", help="the baseline run")
    diff.add_argument("run_b", help="the run compared with it")
    diff.add_argument("--metric", default="passed", choices=["passed", "score", "format_ok"])
    diff.add_argument("--json", action="store_true", help="print JSON instead of text")
    gc = actions.add_parser("gc", help="delete old or unfinished runs (at least one condition is required)")
    gc.add_argument("--keep", type=int, default=None, metavar="N", help="keep the newest N runs")
    gc.add_argument("--older-than-days", type=float, default=None, metavar="DAYS",
                    help="only runs started more than DAYS ago")
    gc.add_argument("--status", default=None, choices=["complete", "interrupted", "incomplete"],
                    help="only runs with this status")
    gc.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")


def cmd_runs(args: argparse.Namespace) -> int:
    """Dispatch ``runs list|show|diff|gc``."""
    return {"list": _list, "show": _show, "diff": _diff, "gc": _gc}[args.runs_command](args)


def _list(args: argparse.Namespace) -> int:
    from ..evaluation._runstore import runs, runs_dir

    table = runs(status=args.status, suite=args.suite, limit=args.limit or None)
    if args.json:
        print(table.to_json(orient="records", indent=1))
        return EXIT_OK
    if table.empty:
        print(f"no runs recorded in {runs_dir()}")
        return EXIT_OK
    table = table.assign(started_at=table["started_at"].str.slice(0, 19).str.replace("T", " "),
                         git=[_git_text(c, d) for c, d in zip(table["git_commit"], table["git_dirty"], strict=True)])
    print(table[_LIST].fillna("-").to_string(index=False))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from ..evaluation._runstore import load_run, run_entry

    entry = run_entry(args.run_id)
    if args.json:
        print(json.dumps(entry, indent=1, ensure_ascii=False))
        return EXIT_OK
    print("\n".join(_provenance_lines(entry)))
    results = load_run(entry["run_id"])
    if len(results) and results.df["passed"].notna().any():
        table = results.accuracy()[["variant", "model", "n", "passed", "errors", "accuracy", "ci_low", "ci_high"]]
        print("\n" + table.round(3).to_string(index=False))
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    from ..evaluation._runstore import load_run, run_entry
    from ..stats import compare

    a, b = run_entry(args.run_a), run_entry(args.run_b)
    changed = _changes(a, b)
    comparison = compare(load_run(a["run_id"]), load_run(b["run_id"]), metric=args.metric)
    if args.json:
        rows = json.loads(comparison.df.to_json(orient="records"))
        print(json.dumps({"run_a": a["run_id"], "run_b": b["run_id"], "changed": changed, "comparison": rows,
                          "messages": comparison.messages}, indent=1, ensure_ascii=False))
        return EXIT_OK
    print(f"run {a['run_id']} (baseline) → run {b['run_id']}")
    print("changed:" if changed else "same suite, prompts, models, params and code")
    for field, (old, new) in changed.items():
        print(f"  {field}: {_short(old)} → {_short(new)}")
    print("")
    print(comparison.df[_COMPARE].round(4).to_string(index=False) if len(comparison.df) else "no pairs to compare")
    for message in comparison.messages:
        print(f"note: {message}")
    return EXIT_OK


def _gc(args: argparse.Namespace) -> int:
    from ..evaluation._runstore import gc_runs, runs_dir

    ids = gc_runs(keep=args.keep, older_than_days=args.older_than_days, status=args.status, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {len(ids)} run(s) from {runs_dir()}" + (": " + ", ".join(ids) if ids else ""))
    return EXIT_OK


# ---- text ----------------------------------------------------------------------------------------------
def _provenance_lines(entry: dict[str, Any]) -> list[str]:
    suite, git, cache = entry.get("suite") or {}, entry.get("git") or {}, entry.get("cache") or {}
    lines = [f"run {entry['run_id']} · {entry.get('status')}" + (f" ({entry['stopped']})" if entry.get("stopped")
                                                                 else ""),
             f"started {entry.get('started_at')} · finished {entry.get('finished_at') or '-'} · "
             f"{entry.get('host')} pid {entry.get('pid')} · {entry.get('entry_point')}",
             f"suite {suite.get('name')} · file {suite.get('path') or '-'} · sha256 {suite.get('sha256') or '-'}",
             f"cases {suite.get('cases')} of {suite.get('cases_in_file') or '-'} in the file"
             + (f" · {json.dumps(suite['subset'])}" if suite.get("subset") else ""),
             "prompts " + "; ".join(f"{v}: {p['name']}@{p['version']} {p['hash'][:12]}"
                                    for v, p in (entry.get("prompts") or {}).items()),
             f"models asked {', '.join(entry.get('models_asked') or [])} · params {entry.get('params') or '-'} · "
             f"repeats {entry.get('repeats')} · seed {entry.get('seed')}",
             f"rows {entry.get('rows', '-')} · errors {entry.get('errors', '-')} · cost {_usd(entry.get('cost_usd'))}"
             " · cache hits "
             f"{cache.get('hits', '-')} misses {cache.get('misses', '-')}",
             f"git {_git_text(git.get('commit'), git.get('dirty'))} · promptlab {entry.get('promptlab_version')}"]
    return lines


def _changes(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The provenance fields whose values differ between two entries."""
    def fields(e: dict[str, Any]) -> dict[str, Any]:
        suite, git = e.get("suite") or {}, e.get("git") or {}
        prompts = {v: f"{p['name']}@{p['version']} {p['hash'][:12]}" for v, p in (e.get("prompts") or {}).items()}
        return {"suite file": suite.get("path"), "suite sha256": suite.get("sha256"), "cases": suite.get("cases"),
                "sample": suite.get("subset"), "prompts": prompts, "models asked": e.get("models_asked"),
                "params": e.get("params"), "repeats": e.get("repeats"), "git commit": git.get("commit"),
                "git dirty": git.get("dirty"), "promptlab version": e.get("promptlab_version")}

    old, new = fields(a), fields(b)
    return {k: (old[k], new[k]) for k in old if old[k] != new[k]}


def _usd(cost: Any) -> str:
    return "- (unpriced)" if cost is None else f"{cost:.4f} USD"


def _git_text(commit: Any, dirty: Any) -> str:
    if not isinstance(commit, str):
        return "-"
    return commit[:10] + (" (dirty)" if dirty is True else "")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 100 else text[:97] + "..."


HANDLERS: dict[str, Handler] = {"runs": cmd_runs}
