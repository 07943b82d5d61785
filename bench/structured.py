"""Benchmark: the label grammar on the local model — accuracy, format compliance and time per case, paired.

    python bench/structured.py [--sample N] [--rounds 1]

For each bundled classification suite (sentiment: 4 labels; support tickets: 8 labels, two template variables)
the suite's own prompt (with its few-shot examples, then without them) runs twice on the local Gemma model,
uncached: as written (free text), and with
``output: {labels: <the suite's labels>}`` (llama.cpp's choice grammar: the model can only answer a label).
Both variants answer the same cases, so they are compared paired by case:

* accuracy — `pl.compare(results, baseline="free")` (McNemar on the discordant cases, Holm);
* format compliance — the free answers are checked against the same label set (`Results.check_format`, the
  check a validating provider applies), then `pl.compare(..., metric="format_ok")`;
* time per case — the provider's latency per call (median, with the 25th-75th percentile spread), per variant;
  the free variant runs first and the constrained one second on each round, alternating across rounds.

Prints the machine's load (``uptime``) with the numbers.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import promptlab as pl  # noqa: E402

MODEL = "local:gemma-3-270m"
TASKS = {
    "sentiment": ("suites/sentiment.yaml", "prompts/classification/sentiment.yaml"),
    "support tickets": ("suites/support_tickets.yaml", "prompts/support/ticket_intent.yaml"),
}
# Each prompt also runs without its few-shot examples: the examples teach a base model the answer's shape, so the
# zero-shot prompt is where free text drifts off the label set (and where a grammar has something to fix).
SHOTS = ("few-shot", "zero-shot")


def variants(suite: pl.Suite, prompt: pl.Prompt, constrained_first: bool) -> dict[str, pl.Prompt]:
    """The prompt as written and the same prompt constrained to the suite's labels."""
    constrained = prompt.with_changes(output={"labels": list(suite.labels)})
    named = {"free": prompt, "grammar": constrained}
    return dict(reversed(named.items())) if constrained_first else named


def measure(name: str, suite: pl.Suite, prompt: pl.Prompt, rounds: int) -> None:
    """Run, compare and print one task."""
    runs = [pl.run(suite, variants(suite, prompt, constrained_first=bool(r % 2)), MODEL, cache=False,
                   progress=False) for r in range(rounds)]
    results = pl.Results.concat(runs) if rounds > 1 else runs[0]
    checked = results.check_format()
    print(f"\n== {name}: {len(suite)} cases × {rounds} round(s), labels {', '.join(suite.labels)}")
    print(checked.accuracy()[["variant", "n", "accuracy", "ci_low", "ci_high", "errors"]].to_string(index=False))
    compliance = checked.format_compliance()
    print(compliance[["variant", "n", "compliance", "ci_low", "ci_high", "source", "enforced"]].to_string(index=False))
    if rounds == 1:  # pairing needs one answer per case and variant
        print(pl.compare(checked, baseline="free").summary_text())
        print(pl.compare(checked, baseline="free", metric="format_ok").summary_text())
    latency = checked.df.groupby("variant")["latency_s"]
    table = latency.quantile([0.25, 0.5, 0.75]).unstack()
    for variant, row in table.iterrows():
        print(f"  time per case, {variant:<8} median {row[0.5]:.3f} s (25-75%: {row[0.25]:.3f}-{row[0.75]:.3f})")
    ratio = table.loc["grammar", 0.5] / table.loc["free", 0.5]
    print(f"  grammar / free median time: {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=None, help="a seeded sample of N cases per suite")
    parser.add_argument("--rounds", type=int, default=1, help="runs of both variants (1 keeps the pairing)")
    args = parser.parse_args()
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    for name, (suite_path, prompt_path) in TASKS.items():
        suite = pl.load_suite(ROOT / suite_path)
        if args.sample:
            suite = suite.sample(args.sample, seed=0)
        prompt = pl.load_prompt(ROOT / prompt_path)
        for shots in SHOTS:
            shaped = prompt if shots == "few-shot" else prompt.with_changes(few_shot_examples=())
            measure(f"{name}, {shots}", suite, shaped, args.rounds)
    print("\nload:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
