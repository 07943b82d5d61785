"""Benchmark: the kit's local run against bare llama-cpp-python on the same prompts, in the same process.

    python bench/local_model.py [--cases 40] [--rounds 3] [--prompt prompts/classification/sentiment.yaml]

Prints seconds per case (median over rounds) for:
  bare, from scratch   — llama-cpp-python alone, KV cache reset before every case;
  bare, shared prefix  — llama-cpp-python alone, consecutive calls (it reuses the evaluated prefix);
  promptlab run        — pl.run(..., model="local:gemma-3-270m", cache=False), i.e. rendering, scheduling,
                         scoring and building the results frame included;
and the ratio promptlab / bare shared-prefix (target <= 1.25), plus the prompt's token count.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import promptlab as pl  # noqa: E402
from promptlab.providers._local import TURN_STOPS, model_path, render_transcript  # noqa: E402


def bare_llama():
    """A Llama configured exactly as the kit configures its own."""
    from llama_cpp import Llama

    return Llama(model_path=model_path(), n_ctx=4096, n_threads=2, n_batch=512, seed=0, verbose=False)


def time_bare(llama, transcripts: list[str], max_tokens: int, reset: bool) -> float:
    """Seconds per case for plain create_completion calls."""
    start = time.perf_counter()
    for text in transcripts:
        if reset:
            llama.reset()  # forget the evaluated tokens, so nothing of the previous prompt is reused
        llama.create_completion(text, max_tokens=max_tokens, temperature=0.0, stop=list(TURN_STOPS))
    return (time.perf_counter() - start) / len(transcripts)


def time_kit(suite, prompt) -> tuple[float, float]:
    """Seconds per case for a whole promptlab run (no cache), and its accuracy."""
    start = time.perf_counter()
    results = pl.run(suite, {"A": prompt}, pl.providers.LOCAL_MODEL_ID, cache=False, progress=False)
    elapsed = (time.perf_counter() - start) / len(suite)
    return elapsed, float(results.accuracy()["accuracy"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt", default=str(ROOT / "prompts/classification/sentiment.yaml"))
    parser.add_argument("--suite", default=str(ROOT / "suites/sentiment.yaml"))
    args = parser.parse_args()

    prompt = pl.load_prompt(args.prompt)
    suite = pl.load_suite(args.suite).sample(args.cases, seed=0)
    transcripts = [render_transcript(prompt.render(c.input, model="gemma-3-270m")) for c in suite]
    llama = bare_llama()
    prefix_tokens = len(llama.tokenize(transcripts[0].encode("utf-8"), add_bos=True))
    pl.run(suite.sample(2, seed=1), {"A": prompt}, pl.providers.LOCAL_MODEL_ID, cache=False, progress=False)  # warm-up

    scratch, shared, kit = [], [], []
    for _ in range(args.rounds):
        scratch.append(time_bare(llama, transcripts, prompt.max_tokens, reset=True))
        shared.append(time_bare(llama, transcripts, prompt.max_tokens, reset=False))
        kit_s, accuracy = time_kit(suite, prompt)
        kit.append(kit_s)
    med = statistics.median
    print(f"prompt {prompt.ref}: {prefix_tokens} tokens for the first case; "
          f"{len(suite)} cases x {args.rounds} rounds")
    for label, values in (("bare llama-cpp, from scratch ", scratch), ("bare llama-cpp, shared prefix", shared),
                          ("promptlab run (no cache)     ", kit)):
        print(f"{label}: {med(values):.4f} s/case  (rounds: {', '.join(f'{x:.4f}' for x in values)})")
    print(f"ratio promptlab / bare shared-prefix: {med(kit) / med(shared):.3f}  (target <= 1.25)")
    print(f"accuracy on the sample: {accuracy:.3f}")


if __name__ == "__main__":
    main()
