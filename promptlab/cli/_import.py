"""``promptlab import promptfoo CONFIG -o DIR``: bring a promptfoo project over, for terminals and CI pipelines.

A thin face over `promptlab.importers._promptfoo.import_promptfoo`: it writes prompt files, a suite and the eval
file ``DIR/promptlab.yaml``, then prints every file written, what could not be converted and why, and what was
converted with a difference. Exit codes (the same as every promptlab command):

* 0 — imported (anything not converted is printed, and with ``--strict`` it exits 1 instead);
* 1 — ``--strict`` and something could not be converted;
* 2 — the config cannot be read (missing, not YAML, no prompts or no tests), or DIR already holds an eval file
  (``--force`` replaces it); ``promptlab.cli.main`` turns every promptlab error into 2.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable
from pathlib import Path

EXIT_OK, EXIT_GATE = 0, 1
Handler = Callable[[argparse.Namespace], int]

_DESCRIPTION = (
    "Convert a promptfoo config (promptfooconfig.yaml) into promptlab files: one prompt file per prompt (python "
    "function prompts and chats with templated system text through a generated adapter module), a suite with one "
    "case per test (inline tests, CSV/YAML/JSON/JSONL test files, defaultTest, list variables expanded; each "
    "test's assertions as the case's scorer), and the eval file DIR/promptlab.yaml (models with their params; "
    "providers that differ only in temperature become a params grid; transform, repeats, concurrency). Prints "
    "what could not be converted and why (JavaScript assertions and transforms, embedding similarity, ...).")
_EPILOG = ("Exit codes: 0 imported; 1 --strict and something was not converted; 2 the config cannot be read, or "
           "DIR already holds promptlab.yaml (use --force).\n\n"
           "Examples:\n  promptlab import promptfoo promptfooconfig.yaml -o imported\n"
           "  promptlab import promptfoo . -o imported --model local:gemma-3-270m\n"
           "  promptlab eval -c imported/promptlab.yaml")


def _import_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import an evaluation from another tool (promptfoo)",
                       description="Import an evaluation written for another tool into promptlab files.")
    kinds = p.add_subparsers(dest="import_kind", required=True, metavar="TOOL")
    pf = kinds.add_parser("promptfoo", help="convert a promptfoo config into prompts, a suite and promptlab.yaml",
                          description=textwrap.fill(_DESCRIPTION, 100), epilog=_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    pf.add_argument("config", type=Path, help="the promptfoo config (YAML or JSON), or its folder")
    pf.add_argument("-o", "--output", type=Path, required=True, metavar="DIR",
                    help="folder to write promptlab.yaml, prompts/ and suites/ into (created if missing)")
    pf.add_argument("--model", action="append", default=None, metavar="MODEL_ID",
                    help="run on this model instead of the config's providers (repeatable), like promptfoo's "
                         "--providers; a temperature grid is kept. E.g. local:gemma-3-270m")
    pf.add_argument("--grader", default=None, metavar="MODEL_ID",
                    help="judge model for llm-rubric assertions that name none, over defaultTest.options.provider "
                         "like promptfoo's --grader (default: that provider, else openai:gpt-4o as in promptfoo)")
    pf.add_argument("--force", action="store_true", help="replace DIR/promptlab.yaml if it exists")
    pf.add_argument("--strict", action="store_true", help="exit 1 when anything could not be converted")


def cmd_import(args: argparse.Namespace) -> int:
    """Import, print the report, exit 0 (or 1 with --strict when something was not converted)."""
    from ..importers._promptfoo import import_promptfoo

    report = import_promptfoo(args.config, args.output, models=args.model, grader=args.grader,
                              overwrite=args.force)
    print(report.summary())
    return EXIT_GATE if args.strict and report.skipped else EXIT_OK


HANDLERS: dict[str, Handler] = {"import": cmd_import}
"""The import command's handler by name (what `add_import_commands` returns)."""


def add_import_commands(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    """Add ``promptlab import`` (with its ``promptfoo`` tool) to the subparsers; returns ``{command: handler}``."""
    _import_parser(sub)
    return dict(HANDLERS)
