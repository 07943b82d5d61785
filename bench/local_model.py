"""Benchmark: the kit's local run against bare llama-cpp-python on the same prompts, in the same process, on 2
threads and on every core (issue 20, item 4).

    python bench/local_model.py [--cases 40] [--rounds 3] [--threads 2 all]
                                [--prompt prompts/classification/sentiment.yaml]

For each thread count (``all``: the cores this process may use, what `LocalProvider` picks by default), prints
seconds per case and cases per second (median over rounds) for:
  bare, from scratch   — llama-cpp-python alone, KV cache reset before every case;
  bare, shared prefix  — llama-cpp-python alone, consecutive calls (it reuses the evaluated prefix);
  promptlab run        — pl.run(..., LocalProvider(n_threads=t), cache=False), i.e. rendering, scheduling,
                         scoring and building the results frame included;
the ratio promptlab / bare shared-prefix (target <= 1.25), the speed-up of ``all`` over 2 threads, the prompt's
token count and the machine's load. Both Llama instances (bare and the kit's) are configured alike: n_ctx 4096,
n_batch 512, n_threads = n_threads_batch = t.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import promptlab as pl  # noqa: E402
from promptlab.providers._local import TURN_STOPS, LocalProvider, local_threads, model_path, render_transcript  # noqa: E402


def bare_llama(threads: int):
    """A Llama configured exactly as the kit configures its own."""
    from llama_cpp import Llama

    return Llama(model_path=model_path(), n_ctx=4096, n_threads=threads, n_threads_batch=threads, n_batch=512,
                 seed=0, verbose=False)


def time_bare(llama, transcripts: list[str], max_tokens: int, reset: bool) -> float:
    """Seconds per case for plain create_completion calls."""
    start = time.perf_counter()
    for text in transcripts:
        if reset:
            llama.reset()  # forget the evaluated tokens, so nothing of the previous prompt is reused
        llama.create_completion(text, max_tokens=max_tokens, temperature=0.0, stop=list(TURN_STOPS))
    return (time.perf_counter() - start) / len(transcripts)


def time_kit(suite, prompt, threads: int) -> tuple[float, float]:
    """Seconds per case for a whole promptlab run (no cache), and its accuracy."""
    start = time.perf_counter()
    results = pl.run(suite, {"A": prompt}, LocalProvider(n_threads=threads), cache=False, progress=False)
    elapsed = (time.perf_counter() - start) / len(suite)
    return elapsed, float(results.accuracy()["accuracy"].iloc[0])


def measure(threads: int, suite, prompt, transcripts: list[str], rounds: int) -> dict[str, list[float]]:
    """Seconds per case of the three clients on ``threads`` threads, one value per round."""
    llama = bare_llama(threads)
    pl.run(suite.sample(2, seed=1), {"A": prompt}, LocalProvider(n_threads=threads), cache=False,
           progress=False)  # warm-up (loads the kit's model)
    times: dict[str, list[float]] = {"scratch": [], "shared": [], "kit": []}
    for _ in range(rounds):
        times["scratch"].append(time_bare(llama, transcripts, prompt.max_tokens, reset=True))
        times["shared"].append(time_bare(llama, transcripts, prompt.max_tokens, reset=False))
        times["kit"].append(time_kit(suite, prompt, threads)[0])
    del llama
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", nargs="+", default=["2", "all"], help="thread counts; 'all' = every usable core")
    parser.add_argument("--prompt", default=str(ROOT / "prompts/classification/sentiment.yaml"))
    parser.add_argument("--suite", default=str(ROOT / "suites/sentiment.yaml"))
    args = parser.parse_args()

    prompt = pl.load_prompt(args.prompt)
    suite = pl.load_suite(args.suite).sample(args.cases, seed=0)
    transcripts = [render_transcript(prompt.render(c.input, model="gemma-3-270m")) for c in suite]
    counts = list(dict.fromkeys(local_threads() if t == "all" else int(t) for t in args.threads))
    results = {threads: measure(threads, suite, prompt, transcripts, args.rounds) for threads in counts}
    accuracy = time_kit(suite, prompt, counts[-1])[1]

    med = statistics.median
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    prefix_tokens = len(bare_llama(counts[0]).tokenize(transcripts[0].encode("utf-8"), add_bos=True))
    print(f"prompt {prompt.ref}: {prefix_tokens} tokens for the first case; {len(suite)} cases x {args.rounds} "
          f"rounds; usable cores {local_threads()}; load: {load}")
    labels = (("scratch", "bare llama-cpp, from scratch "), ("shared", "bare llama-cpp, shared prefix"),
              ("kit", "promptlab run (no cache)     "))
    for threads, times in results.items():
        print(f"\n{threads} threads")
        for key, label in labels:
            values = times[key]
            print(f"  {label}: {med(values):.4f} s/case  {1 / med(values):7.2f} cases/s  "
                  f"(rounds: {', '.join(f'{x:.4f}' for x in values)})")
        ratio = med(times["kit"]) / med(times["shared"])
        print(f"  ratio promptlab / bare shared-prefix: {ratio:.3f}  (target <= 1.25)")
    if len(counts) > 1:
        first, last = results[counts[0]], results[counts[-1]]
        print(f"\npromptlab cases/s on {counts[-1]} threads vs {counts[0]}: "
              f"{med(first['kit']) / med(last['kit']):.3f}x  (bare: {med(first['shared']) / med(last['shared']):.3f}x)")
    print(f"accuracy on the sample: {accuracy:.3f}")


if __name__ == "__main__":
    main()
