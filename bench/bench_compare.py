"""Benchmark: `compare()` on a 1,000,000-row results frame (cases × variants × repeats).

Run: ``/work/venv/bin/python bench/bench_compare.py`` (``--cases``, ``--variants``, ``--repeats`` to resize).
Prints the frame's shape and the median of 3 timings: pass/fail (McNemar path with 1 repeat, paired t over
cases with 5), graded scores on a 0.1 grid (bootstrap drawn over distinct differences) and continuous scores
(percentile bootstrap resampling 50,000 cases 2,000 times per variant — the slow path), and ``by_category()``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from promptlab.stats._comparison import compare


def build_frame(cases: int, variants: int, repeats: int, seed: int = 0) -> pd.DataFrame:
    """A results frame in the schema's columns compare() reads, with per-variant pass rates and scores."""
    rng = np.random.default_rng(seed)
    n = cases * variants * repeats
    case = np.repeat(np.arange(cases), variants * repeats)
    variant = np.tile(np.repeat(np.arange(variants), repeats), cases)
    difficulty = rng.normal(0, 1, cases)[case]
    logit = 0.8 - difficulty + 0.05 * variant + rng.normal(0, 0.5, n)
    passed = rng.random(n) < 1 / (1 + np.exp(-logit))
    failed_call = rng.random(n) < 0.01
    score = np.clip(np.round(passed * 0.7 + rng.random(n) * 0.3, 1), 0, 1)
    names = np.array([chr(ord("A") + v) for v in range(variants)])
    frame = pd.DataFrame({
        "case_id": pd.array(np.char.add("case-", case.astype(str)), dtype="string"),
        "variant": pd.array(names[variant], dtype="string"),
        "model": pd.array(np.full(n, "local:gemma-3-270m"), dtype="string"),
        "repeat": pd.array(np.tile(np.arange(repeats), cases * variants), dtype="Int64"),
        "category": pd.array(np.array(["happy_path", "edge_case", "adversarial"])[case % 3], dtype="string"),
        "passed": pd.array(np.where(failed_call, None, passed), dtype="boolean"),
        "score": np.where(failed_call, np.nan, score),
        "cost_usd": 1e-5 * (1 + variant) + rng.random(n) * 1e-6,
        "latency_s": rng.lognormal(-0.5 + 0.05 * variant, 0.4, n),
        "error_type": pd.array(np.where(failed_call, "timeout", None), dtype="string"),
    })
    return frame


def timed(fn, runs: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    start = time.perf_counter()
    frame = build_frame(args.cases, args.variants, args.repeats)
    print(f"frame: {len(frame):,} rows = {args.cases:,} cases × {args.variants} variants × {args.repeats} repeats "
          f"(built in {time.perf_counter() - start:.1f} s)")
    for label, fn in [
        ("compare(metric='passed')", lambda: compare(frame, "A")),
        ("compare(metric='score')", lambda: compare(frame, "A", metric="score")),
        ("compare(...).by_category()", lambda: compare(frame, "A").by_category()),
    ]:
        seconds, result = timed(fn)
        print(f"{label:<30} median of 3: {seconds:6.2f} s   {result!r}")
    noise = np.random.default_rng(1).normal(0, 0.01, len(frame))
    continuous = frame.assign(score=frame["score"] + noise)
    seconds, result = timed(lambda: compare(continuous, "A", metric="score"))
    print(f"{'score, continuous values':<30} median of 3: {seconds:6.2f} s   {result!r}")
    one = build_frame(args.cases * args.repeats, args.variants, 1)
    seconds, result = timed(lambda: compare(one, "A"))
    print(f"{'compare, 1 repeat (McNemar)':<30} median of 3: {seconds:6.2f} s   {result!r}")


if __name__ == "__main__":
    main()
