"""Issue 19's "Done when": the prompt search on the bundled support-ticket suite with the local model.

    python bench/search_support_tickets.py [--moves instruction] [--budget 330] [--seed 0] [--out search.json]

Runs `pl.optimize_prompt` on prompts/support/ticket_intent.yaml and suites/support_tickets.yaml with
local:gemma-3-270m, then prints the report: the winner, its search score (optimistic), the confirmation accuracy of
the start and the winner on the untouched cases with their Wilson intervals, the paired test (McNemar mid-p,
Newcombe's interval), what was tried, and the calls spent. The default is the cheapest configuration that exercises
the whole flow (four instruction rewrites, eta 3): about 80 calls. ``--moves instruction,fewshot,compression``
searches more (several hundred calls). Set $PROMPTLAB_CACHE_DIR to keep its answers apart from the project's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import promptlab as pl  # noqa: E402

REWRITES = ("definitions_bulleted", "labels_only", "format_label_only", "format_exact_word")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", default="instruction")
    parser.add_argument("--budget", type=int, default=330, help="model calls, confirmation included")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the search record (JSON)")
    args = parser.parse_args()
    prompt = pl.load_prompt(ROOT / "prompts/support/ticket_intent.yaml")
    suite = pl.load_suite(ROOT / "suites/support_tickets.yaml")
    options = {"instruction": {"rewrites": REWRITES},
               "fewshot": {"ks": (4, 8), "n_random": 1, "strategies": ("random", "coverage")}}
    started = time.perf_counter()
    result = pl.optimize_prompt(prompt, suite, pl.providers.LOCAL_MODEL_ID, seed=args.seed, budget=args.budget,
                                eta=3, min_cases=4, moves=tuple(args.moves.split(",")), move_options=options)
    print(result.to_markdown())
    print(result.tried().to_string(index=False))
    print(f"elapsed: {time.perf_counter() - started:.0f} s")
    if args.out is not None:
        args.out.write_text(json.dumps(result.record(), indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
