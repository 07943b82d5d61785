"""The ``promptlab`` command: a thin face over the library, for terminals and CI pipelines.

Exit codes: 0 success, 1 the run finished but a gate failed (for example ``--min-accuracy``),
2 bad arguments or input files (or a notebook that fails), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

from ..errors import PromptlabError
from ._registry import HANDLERS as REGISTRY_HANDLERS
from ._registry import add_registry_commands

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130  # 130 = 128 + SIGINT, as shells report it


def _eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="run prompt variants on a suite and write an HTML report",
                       description="Run one or more prompt files on a suite, compare them (paired by case) "
                                   "against the first, print a summary and write a standalone HTML report.")
    p.add_argument("--suite", required=True, help="suite file (YAML or JSONL)")
    p.add_argument("--prompt", action="append", required=True, metavar="[NAME=]PATH",
                   help="prompt file; repeat for variants (the first is the baseline). NAME defaults to A, B, …")
    p.add_argument("--model", default=None,
                   help="model id to run every variant on (e.g. local:gemma-3-270m); default: each prompt's pin")
    p.add_argument("--sample", type=int, default=None, help="run a seeded sample of N cases")
    p.add_argument("--repeats", type=int, default=1, help="answers per case (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed for sampling and bootstrap (default 0)")
    p.add_argument("--report", type=Path, default=None, help="write the HTML report here")
    p.add_argument("--save", type=Path, default=None, help="save the results (Parquet) here")
    p.add_argument("--no-cache", action="store_true", help="bypass the response cache")
    p.add_argument("--min-accuracy", type=float, default=None,
                   help="exit 1 when any variant's accuracy is below this (a CI gate)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _named_prompts(specs: list[str]) -> dict:
    from ..authoring._prompt import load_prompt

    named = {}
    for i, spec in enumerate(specs):
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = chr(ord("A") + i), spec
        named[name] = load_prompt(path)
    return named


def cmd_eval(args: argparse.Namespace) -> int:
    """Run, compare, print, report."""
    from ..authoring._suite import load_suite
    from ..evaluation._runner import RunInterrupted, run

    suite = load_suite(args.suite)
    if args.sample:
        suite = suite.sample(args.sample, seed=args.seed)
    variants = _named_prompts(args.prompt)
    try:
        results = run(suite, variants, args.model, repeats=args.repeats, cache=not args.no_cache,
                      progress=not args.quiet, seed=args.seed)
    except RunInterrupted as stopped:
        print(f"interrupted: {stopped.summary('run the same command to resume')}", file=sys.stderr)
        return EXIT_INTERRUPTED
    comparison = _compare(results, next(iter(variants)), args.seed) if len(variants) > 1 else None
    _print_summary(results, comparison)
    print(_cache_line(results.meta.get("cache") or {}))
    if args.save:
        results.save(args.save)
    if args.report:
        from ..notebook._report import comparison_report

        path = comparison_report(args.report, results, comparison, f"promptlab — {suite.name}")
        print(f"report: {path}")
    return _gate(results, args.min_accuracy)


def _compare(results, baseline: str, seed: int):
    from ..stats._comparison import compare

    return compare(results, baseline=baseline, seed=seed)


def _print_summary(results, comparison) -> None:
    table = results.summary()
    cols = [c for c in ["variant", "model", "n", "accuracy", "ci_low", "ci_high", "errors", "p50_s", "p95_s",
                        "cost_usd"] if c in table]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if comparison is not None:
        print()
        print(comparison.summary_text())


def _cache_line(cache: dict) -> str:
    """``cache: 12 hits · 8 misses (path)``: what this run took from the cache and what it asked a model."""
    if not cache.get("enabled"):
        return "cache: off (--no-cache): every call went to a model"
    return f"cache: {cache['hits']} hits · {cache['misses']} misses ({cache['path']})"


def _gate(results, min_accuracy: float | None) -> int:
    if min_accuracy is None:
        return EXIT_OK
    table = results.accuracy()
    for row in table.itertuples():
        if not row.accuracy >= min_accuracy:  # NA (no verdict at all) fails the gate too
            shown = "NA (no call has a verdict)" if row.accuracy != row.accuracy else f"{row.accuracy:.3f}"
            print(f"gate failed: {row.variant} on {row.model}: accuracy {shown} < --min-accuracy {min_accuracy} "
                  f"({row.scored} scored · {row.errors} errors of {row.n} calls)", file=sys.stderr)
            return EXIT_GATE
    if table.empty:
        print("gate failed: no results to judge against --min-accuracy", file=sys.stderr)
        return EXIT_GATE
    return EXIT_OK


def _report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="execute a notebook and write standalone HTML to share",
                       description="Run a notebook top to bottom (in its own folder) and write it as one HTML "
                                   "file with its interactive plots inside; it opens with no network.")
    p.add_argument("notebook", type=Path, help="the .ipynb file")
    p.add_argument("-o", "--output", type=Path, default=None, help="HTML file (default reports/<name>.html)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a value of the notebook's `parameters` cell (repeatable)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds a single cell may run (default 1800)")


def cmd_report(args: argparse.Namespace) -> int:
    """Execute a notebook and write its HTML."""
    from ..notebook._report import notebook_report, parse_parameters

    try:
        parameters = parse_parameters(args.param)
        path = notebook_report(args.notebook, args.output, parameters=parameters, timeout_s=args.timeout)
    except (ValueError, FileNotFoundError) as exc:
        print(f"promptlab report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"report: {path}")
    return EXIT_OK


def _cache_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="show or clear the response cache",
                       description="The response cache of this project: <project root>/.promptlab/cache/"
                                   "responses.sqlite, or $PROMPTLAB_CACHE_DIR/responses.sqlite when set.")
    actions = p.add_subparsers(dest="cache_command", required=True)
    actions.add_parser("info", help="where the cache is, what it holds (by provider, model and endpoint)")
    clear = actions.add_parser("clear", help="delete cached responses (all, or those matching the filters)")
    clear.add_argument("--older-than", default=None, metavar="AGE",
                       help="only entries older than AGE: a number and a unit s, m, h, d or w (e.g. 30d)")
    clear.add_argument("--model", default=None, metavar="MODEL_ID",
                       help="only entries of this model id (asked or answered), e.g. openai:gpt-4o-mini")


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> dt.timedelta:
    """``"30d"`` → 30 days; units s, m, h, d, w."""
    match = _AGE.match(text)
    if match is None:
        raise ValueError(f"--older-than must be a number and a unit (s, m, h, d or w), like 30d or 12h; "
                         f"got {text!r}")
    return dt.timedelta(**{_AGE_UNITS[match[2]]: float(match[1])})


def cmd_cache(args: argparse.Namespace) -> int:
    """``cache info`` and ``cache clear``."""
    from ..evaluation._cache import ResponseCache, default_cache_path

    path = default_cache_path()
    try:
        older_than = parse_age(args.older_than) if getattr(args, "older_than", None) else None
    except ValueError as exc:
        print(f"promptlab cache: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not path.exists():
        print(f"cache: {path} (empty: no run has written to it yet)")
        return EXIT_OK
    cache = ResponseCache(path)
    try:
        if args.cache_command == "info":
            print(_cache_info(cache.stats()))
        else:
            before = len(cache)
            removed = cache.clear(older_than=older_than, model=args.model)
            print(f"cleared {removed} of {before} entries from {path}")
    finally:
        cache.close()
    return EXIT_OK


def _cache_info(stats: dict) -> str:
    lines = [f"cache: {stats['path']}",
             f"entries: {stats['entries']} · size {_size(stats['size_bytes'])} · oldest {stats['oldest'] or '-'}"
             f" · newest {stats['newest'] or '-'}"]
    if stats["groups"]:
        import pandas as pd

        table = pd.DataFrame(stats["groups"])[["provider", "model", "endpoint", "entries"]].fillna("-")
        lines += ["", table.to_string(index=False)]
    return "\n".join(lines)


def _size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            break
        size /= 1024
    return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="promptlab", description=__doc__.splitlines()[0],
                                     epilog="Exit codes: 0 ok, 1 a gate failed, 2 bad arguments or input, "
                                            "130 interrupted.")
    sub = parser.add_subparsers(dest="command", required=True)
    _eval_parser(sub)
    _report_parser(sub)
    _cache_parser(sub)
    add_registry_commands(sub)
    return parser


COMMANDS = {"eval": cmd_eval, "report": cmd_report, "cache": cmd_cache, **REGISTRY_HANDLERS}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``promptlab`` command."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except PromptlabError as exc:
        print(f"promptlab {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # outside a run (loading, comparing, writing): nothing to resume
        print(f"promptlab {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

