"""``promptlab optimize PROMPT SUITE --model M``: the prompt search from a terminal or a CI job.

A thin face over `promptlab.optimize.optimize_prompt`: it splits the suite (seeded), races candidates under the
budget, confirms the winner on the untouched cases and prints the report (Markdown; ``--json`` prints the search
record). ``--out`` writes the report too (``.json``: the record, anything else: Markdown); ``--export DIR`` writes
the winner's prompt file and its search record there.

Exit codes: 0 the search ran (whatever it found); 1 ``--require-better`` and the paired test on the confirmation
cases did not find the winner better; 2 bad arguments or input files; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

EXIT_OK, EXIT_GATE = 0, 1
Handler = Callable[[argparse.Namespace], int]

_EPILOG = ("Exit codes: 0 the search ran; 1 --require-better and the winner is not confirmed better; 2 bad "
           "arguments or input; 130 interrupted.\n\nExample:\n  promptlab optimize prompts/support/ticket_intent.yaml"
           " suites/support_tickets.yaml --model local:gemma-3-270m --budget-calls 1500 --seed 0 --out search.md")


def add_optimize_command(sub: argparse._SubParsersAction) -> None:
    """The ``optimize`` subcommand."""
    p = sub.add_parser("optimize", help="search prompt variants and confirm the winner on untouched cases",
                       description=__doc__.splitlines()[0], epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompt", type=Path, help="the starting prompt file (.yaml)")
    p.add_argument("suite", type=Path, help="the suite of labelled cases")
    p.add_argument("--model", required=True, help="the model every candidate runs on, e.g. local:gemma-3-270m")
    p.add_argument("--pool", type=Path, default=None, help="training examples (a suite file); default: part of "
                   "the suite")
    p.add_argument("--budget-calls", type=int, default=None, metavar="N", help="at most N model calls in all")
    p.add_argument("--budget-usd", type=float, default=None, metavar="USD", help="at most USD dollars in all")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the candidates and the runs")
    p.add_argument("--split", type=float, default=0.5, help="share of the non-pool cases kept for confirmation")
    p.add_argument("--moves", default=None, help="comma-separated stages, e.g. instruction,fewshot")
    p.add_argument("--proposer-model", default=None, help="a hosted model that proposes instructions")
    p.add_argument("--eta", type=int, default=2, help="successive halving keeps 1/eta of the candidates per rung")
    p.add_argument("--out", type=Path, default=None, help="write the report: .json (the record) or Markdown")
    p.add_argument("--export", type=Path, default=None, metavar="DIR", help="write the winner and its record here")
    p.add_argument("--json", action="store_true", help="print the search record as JSON instead of Markdown")
    p.add_argument("--require-better", action="store_true",
                   help="exit 1 unless the paired test on the confirmation cases finds the winner better")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def cmd_optimize(args: argparse.Namespace) -> int:
    """Run the search and print its report."""
    from ..authoring._prompt import load_prompt
    from ..authoring._suite import load_suite
    from ..evaluation._cost import Budget
    from ..optimize._search import DEFAULT_MOVES, optimize_prompt

    prompt, suite = load_prompt(args.prompt), load_suite(args.suite)
    budget = Budget(usd=args.budget_usd) if args.budget_usd is not None else args.budget_calls
    moves = tuple(m.strip() for m in args.moves.split(",") if m.strip()) if args.moves else DEFAULT_MOVES
    progress = False if args.quiet else (lambda event: _progress_line(event))
    result = optimize_prompt(prompt, suite, args.model, pool=args.pool, split=args.split, seed=args.seed,
                             budget=budget, max_calls=args.budget_calls if args.budget_usd is not None else None,
                             moves=moves, proposer_model=args.proposer_model, eta=args.eta, progress=progress)
    record = result.record()
    text = json.dumps(record, indent=2, ensure_ascii=False, default=str) if args.json else result.to_markdown()
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        body = (json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n" if args.out.suffix == ".json"
                else result.to_markdown())
        args.out.write_text(body, encoding="utf-8")
    if args.export is not None and result.improved:
        print(f"exported: {result.export(args.export)}", file=sys.stderr)
    test = record["confirmation"]["paired_test"] or {}
    return EXIT_GATE if args.require_better and test.get("verdict") != "better" else EXIT_OK


def _progress_line(event: dict) -> None:
    best = event["best"]
    cap = f"/{event['max_calls']}" if event.get("max_calls") else ""
    print(f"[search] {event['stage']} rung {event['rung']}: {event['candidates']} candidates × {event['cases']} "
          f"cases · best {best['candidate']} {best['accuracy']:.0%} (search, optimistic) · calls "
          f"{event['calls']}{cap}", file=sys.stderr, flush=True)


HANDLERS: dict[str, Handler] = {"optimize": cmd_optimize}
