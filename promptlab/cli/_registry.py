"""The registry subcommands of ``promptlab``, for terminals and CI pipelines.

``promptlab status``, ``check``, ``promote``, ``rollback``, ``register``, ``history`` and ``diff`` are thin faces
over `promptlab.registry._registry.Registry`. Exit codes are what a pipeline gates on (the same as every promptlab
command):

* 0 — done: the move was made, every checklist item passes, the registry is consistent;
* 1 — refused: a gate refused the move, a checklist item fails, or ``status`` found an integrity problem;
* 2 — usage or input error: unknown prompt or version, a move the lifecycle does not allow, unreadable
  evidence (``promptlab.cli.main`` turns every other promptlab error into 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from ..errors import GateRefused

EXIT_OK, EXIT_GATE, EXIT_USAGE = 0, 1, 2
Handler = Callable[[argparse.Namespace], int]

_USAGE = "2 bad arguments or input (unknown prompt or version, a move the lifecycle forbids, unreadable file)"
_STATES = ("test", "review", "staging", "production", "draft", "optimize")


def _parser(sub: argparse._SubParsersAction, name: str, help: str, description: str,
            exits: tuple[str, str | None], epilog: str = "") -> argparse.ArgumentParser:
    codes = [f"0 {exits[0]}", *([f"1 {exits[1]}"] if exits[1] else []), _USAGE]
    text = textwrap.fill("Exit codes: " + "; ".join(codes) + ".", 100) + (f"\n\n{epilog}" if epilog else "")
    p = sub.add_parser(name, help=help, description=textwrap.fill(description, 100), epilog=text,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=None,
                   help="repository root holding prompts/ and configs/ (default: found from the current folder up)")
    return p


def _status_parser(sub: argparse._SubParsersAction) -> None:
    p = _parser(sub, "status", "every prompt version, its lifecycle state, what is live, integrity problems",
                "List every prompt version under prompts/ with its lifecycle state and where it is live (configs/"
                "staging.yaml, configs/production.yaml), then check the registry's integrity: registered version "
                "files edited by hand (hash mismatch), missing files, alias files that disagree with the history, "
                "and the history's hash chain (the first line edited, inserted, removed or appended by hand).",
                ("the registry is consistent", "an integrity problem was found"))
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _check_parser(sub: argparse._SubParsersAction) -> None:
    p = _parser(sub, "check", "evaluate the production checklist of a prompt version",
                "Evaluate the article's production checklist for NAME@VERSION from its attached evidence and "
                "configs/ (suite size and coverage, accuracy, format compliance, p95 latency, cost, model pinned, "
                "monitoring rules, fallback, changelog, review) and print pass / fail and the reason per item.",
                ("every item passes", "an item fails"),
                "Example: promptlab check sentiment_classifier 1.1.0 --evidence results.parquet")
    p.add_argument("name", help="prompt name (the `name:` in its file)")
    p.add_argument("version", help="version, or latest / staging / production")
    p.add_argument("--evidence", type=Path, default=None,
                   help="also count this evidence (results .parquet or evidence .json), without attaching it")
    p.add_argument("--kind", choices=("eval", "comparison", "shadow", "canary"), default=None,
                   help="kind of --evidence (default: eval, or the results' own mode)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _promote_parser(sub: argparse._SubParsersAction) -> None:
    p = _parser(sub, "promote", "move a prompt version through the lifecycle, if its gate passes",
                "Move NAME@VERSION to a lifecycle state. Gated moves: test (an eval meeting the accuracy threshold "
                "and, for structured output, 99% format compliance), review (a named reviewer who is not the "
                "author), staging (shadow or canary evidence without regression), production (every checklist "
                "item). Moves back (draft from test/review/staging, optimize from production) need --reason. "
                "Evidence passed with --evidence is stored in configs/evidence/ only when the move is made.",
                ("the move was made", "the gate refused (the message says what failed and what would pass)"),
                "Examples:\n  promptlab promote sentiment_classifier 1.1.0 --to test --evidence results.parquet\n"
                "  promptlab promote sentiment_classifier 1.1.0 --to review --reviewer alice\n"
                "  promptlab promote sentiment_classifier 1.1.0 --to staging --evidence shadow.parquet --kind shadow")
    p.add_argument("name", help="prompt name")
    p.add_argument("version", help="version to move")
    p.add_argument("--to", required=True, choices=_STATES, help="the lifecycle state to move to")
    p.add_argument("--evidence", type=Path, default=None, help="results .parquet (Results.save) or evidence .json")
    p.add_argument("--kind", choices=("eval", "comparison", "shadow", "canary"), default=None,
                   help="kind of --evidence (default: eval, or the results' own mode); staging needs shadow/canary")
    p.add_argument("--variant", default=None, help="the variant in the evidence that is this version, if ambiguous")
    p.add_argument("--reviewer", default=None, help="the approving reviewer (required for --to review)")
    p.add_argument("--reason", default="", help="why (required for moves back to draft or optimize)")
    p.add_argument("--actor", default=None, help="who moves it (default: $PROMPTLAB_USER, git user.name, login)")


def _rollback_parser(sub: argparse._SubParsersAction) -> None:
    p = _parser(sub, "rollback", "move an environment back to the version live before",
                "Point configs/<env>.yaml's entry for NAME back at the version that was live before the current "
                "one (or at --to, which must have been live there before). The history keeps every event; no gate "
                "applies, so a rollback is always one quick step.",
                ("rolled back", None),
                "Example: promptlab rollback sentiment_classifier --env production --reason 'format failures up'")
    p.add_argument("name", help="prompt name")
    p.add_argument("--env", choices=("staging", "production"), default="production", help="default: production")
    p.add_argument("--to", default=None, help="the version to return to (default: the one live before)")
    p.add_argument("--reason", default="", help="why (recorded in the history)")
    p.add_argument("--actor", default=None, help="who rolls back (default: $PROMPTLAB_USER, git user.name, login)")


def _register_parser(sub: argparse._SubParsersAction) -> None:
    p = _parser(sub, "register", "register prompt version files (they become immutable drafts)",
                "Register version files: their hashes are recorded in configs/history.jsonl and from then on a hand "
                "edit is detected. Each version must have its own changelog entry at the top of `changelog:`. A "
                "file outside prompts/ is copied to prompts/<group>/<name>_v<version>.yaml.",
                ("registered (or already registered with the same content)", None))
    p.add_argument("paths", nargs="+", type=Path, help="prompt version files")
    p.add_argument("--group", default=None, help="folder under prompts/ for files copied in")
    p.add_argument("--actor", default=None, help="who registers (default: $PROMPTLAB_USER, git user.name, login)")


def _history_parser(sub: argparse._SubParsersAction) -> None:
    p = _parser(sub, "history", "the append-only history: who, when, from, to, evidence, reason",
                "Print configs/history.jsonl as a table, oldest first (of one prompt if NAME is given).",
                ("printed", None))
    p.add_argument("name", nargs="?", default=None, help="only this prompt")
    p.add_argument("--limit", type=int, default=None, help="only the last N events")


def _diff_parser(sub: argparse._SubParsersAction) -> None:
    p = _parser(sub, "diff", "what changed between two versions of a prompt",
                "Show what changed from NAME@OLD to NAME@NEW: system and template as unified diffs, few-shot "
                "examples added and removed, model, parameters and new changelog entries.",
                ("printed", None), "Example: promptlab diff sentiment_classifier 1.0.0 1.1.0")
    p.add_argument("name", help="prompt name")
    p.add_argument("old", help="the older version (or staging / production / latest)")
    p.add_argument("new", help="the newer version")


# ---- handlers --------------------------------------------------------------------------------------------------
def _registry(args: argparse.Namespace):
    from ..registry._registry import Registry

    return Registry(args.root)


def cmd_status(args: argparse.Namespace) -> int:
    """Print versions, states, live versions and problems; 1 when there is a problem."""
    status = _registry(args).status()
    if args.json:
        chain = status.chain
        payload = {"ok": status.ok, "live": status.live, "versions": status.versions.to_dict("records"),
                   "history": {"events": chain.events, "legacy": chain.legacy, "intact": chain.intact,
                               "bad_line": chain.bad_line, "summary": chain.describe()},
                   "problems": [vars(p) for p in status.problems]}
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(status.text())
    return EXIT_OK if status.ok else EXIT_GATE


def cmd_check(args: argparse.Namespace) -> int:
    """Print the production checklist; 1 when an item fails."""
    checklist = _registry(args).checklist(f"{args.name}@{args.version}", evidence=args.evidence, kind=args.kind)
    if args.json:
        payload = {"ref": checklist.ref, "passed": checklist.passed, "items": checklist.to_frame().to_dict("records")}
        print(json.dumps(payload, indent=2))
    else:
        print(checklist.text())
    return EXIT_OK if checklist.passed else EXIT_GATE


def cmd_promote(args: argparse.Namespace) -> int:
    """Move a version through its gate; 1 with the gate's report when it refuses."""
    try:
        event = _registry(args).promote(f"{args.name}@{args.version}", args.to, evidence=args.evidence,
                                        kind=args.kind, reviewer=args.reviewer, reason=args.reason,
                                        variant=args.variant, actor=args.actor)
    except GateRefused as refused:
        print(f"promptlab promote: {refused}", file=sys.stderr)
        if refused.details is not None and hasattr(refused.details.details, "text"):
            print(refused.details.details.text(), file=sys.stderr)
        return EXIT_GATE
    live = f"; {event.env} now serves {event.to_version} (was {event.from_version})" if event.env else ""
    print(f"{args.name}@{args.version}: {event.from_state} → {event.to_state}{live} "
          f"[history #{event.seq}{', evidence ' + ', '.join(event.evidence) if event.evidence else ''}]")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    """Move an environment's alias back."""
    event = _registry(args).rollback(args.name, args.env, to=args.to, reason=args.reason, actor=args.actor)
    print(f"{args.name}: {args.env} rolled back {event.from_version} → {event.to_version} [history #{event.seq}]")
    return EXIT_OK


def cmd_register(args: argparse.Namespace) -> int:
    """Register each file."""
    registry = _registry(args)
    for path in args.paths:
        prompt = registry.register(path, group=args.group, actor=args.actor)
        print(f"registered {prompt.ref} (hash {prompt.content_hash}) from {path}")
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    """Print the history."""
    frame = _registry(args).history(args.name)
    cols = ["seq", "at", "actor", "action", "prompt", "version", "from_state", "to_state", "env", "from_version",
            "to_version", "reviewer", "reason"]
    frame = frame.tail(args.limit) if args.limit else frame
    print(frame[cols].fillna("").to_string(index=False) if len(frame) else "(no history yet)")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    """Print the diff of two versions."""
    print(_registry(args).diff(f"{args.name}@{args.old}", f"{args.name}@{args.new}").text())
    return EXIT_OK


HANDLERS: dict[str, Handler] = {"status": cmd_status, "check": cmd_check, "promote": cmd_promote,
                                "rollback": cmd_rollback, "register": cmd_register, "history": cmd_history,
                                "diff": cmd_diff}
"""The registry commands' handlers by name (what `add_registry_commands` returns)."""


def add_registry_commands(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    """Add the registry subcommands to ``promptlab``'s subparsers; returns ``{command: handler}``."""
    for build in (_status_parser, _check_parser, _promote_parser, _rollback_parser, _register_parser,
                  _history_parser, _diff_parser):
        build(sub)
    return dict(HANDLERS)
