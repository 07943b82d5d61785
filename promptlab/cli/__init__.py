"""The ``promptlab`` command: a thin face over the library, for terminals and CI pipelines.

Exit codes: 0 success, 1 the run finished but a gate failed (for example ``--min-accuracy`` or a ``--baseline``
regression), 2 bad arguments or input files (or a notebook that fails), 130 interrupted (Ctrl-C).

``eval`` lives in `promptlab.cli._eval` (its CI outputs in `promptlab.cli._output`), the registry subcommands in
`promptlab.cli._registry`, ``optimize`` in `promptlab.cli._optimize`; ``report`` and ``cache`` are here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

from ..errors import PromptlabError
from ._eval import EXIT_GATE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, add_eval_command, cmd_eval
from ._eval import _gate as _gate  # the --min-accuracy gate alone, where tests and older callers import it
from ._import import HANDLERS as IMPORT_HANDLERS
from ._import import add_import_commands
from ._optimize import HANDLERS as OPTIMIZE_HANDLERS
from ._optimize import add_optimize_command
from ._registry import HANDLERS as REGISTRY_HANDLERS
from ._registry import add_registry_commands
from ._runs import HANDLERS as RUNS_HANDLERS
from ._runs import add_runs_commands

__all__ = ["COMMANDS", "EXIT_GATE", "build_parser", "cmd_eval", "main", "parse_age"]


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
    add_eval_command(sub)
    _report_parser(sub)
    _cache_parser(sub)
    add_registry_commands(sub)
    add_import_commands(sub)
    add_runs_commands(sub)
    add_optimize_command(sub)
    return parser


COMMANDS = {"eval": cmd_eval, "report": cmd_report, "cache": cmd_cache, **REGISTRY_HANDLERS, **IMPORT_HANDLERS,
            **RUNS_HANDLERS, **OPTIMIZE_HANDLERS}


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

