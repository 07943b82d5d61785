"""Benchmark: memory and CPU of a run as it grows — 1,000 against 100,000 cases on `FakeProvider` (issue 20, item 5).

    python bench/bigrun.py [--sizes 1000 100000] [--no-cache] [--no-record]

Each size runs in a fresh child process: it builds the suite (N distinct cases), one prompt and a `FakeProvider`
answering at once, imports what a run loads, then times one ``pl.run`` (response cache on, in a fresh file, and
the run store on, in a temporary folder — as a user's run has them). Reported per size: wall time, CPU ms per case
(``time.process_time``), the process's RSS before the run and its peak during it (``ru_maxrss``), the growth
(peak − before) in MB and KB per case, and the size of the results frame the run returns
(``df.memory_usage(deep=True)``, which a run cannot avoid holding: it is the answer). Targets: CPU per case at the
largest size within 1.25× of the smallest (flat), and RSS growth at the largest size no more than 2× the frame's
own bytes (rows streamed to disk, not every call's objects held). A third line shows what grows with the run alone:
the growth the largest size adds over the smallest, per byte its frame adds — one-time costs (the Parquet writer's
import at the first spilled chunk, the blocks Arrow's allocator keeps) cancel out of it.

The fake keeps no list of the requests it saw (its ``calls`` is a zero-length deque): that list is a test aid,
and would otherwise be the first thing to grow.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"cpu_ratio": 1.25, "rss_per_frame": 2.0}


def rss_mb() -> float:
    """The process's resident set now (Linux ``/proc/self/statm``), in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(args: argparse.Namespace) -> None:
    """One run of ``args.cases`` cases in this process; prints one JSON line."""
    import pyarrow.parquet  # noqa: F401 - rows spilled past a chunk, and the run store's file, are written with it

    import promptlab as pl
    import promptlab.evaluation._results  # noqa: F401 - what the run loads after its calls, loaded untimed
    import promptlab.evaluation._runner  # noqa: F401
    import promptlab.evaluation._scoring  # noqa: F401

    tmp = Path(args.tmp)
    os.environ["PROMPTLAB_RUNS_DIR"] = str(tmp / "runs")
    suite = pl.Suite("big", labels=["positive", "negative"])
    for i in range(args.cases):
        suite.add_case(f"review {i}: {'works well' if i % 2 == 0 else 'broke quickly'}",
                       "positive" if i % 2 == 0 else "negative", id=f"c{i}")
    prompt = pl.Prompt(name="big", version="1", model="fake:fake-model", system="Classify the sentiment.",
                       template="Text: {{ input }}", max_tokens=5,
                       few_shot_examples=[{"input": "great", "output": "positive"}])
    fake = pl.FakeProvider(lambda r: "positive" if "works well" in r.messages[-1].content else "negative")
    fake.calls = deque(maxlen=0)  # a test aid that would hold every request
    cache = pl.ResponseCache(tmp / "cache.sqlite") if args.cache else False
    before = rss_mb()
    cpu, wall = time.process_time(), time.perf_counter()
    results = pl.run(suite, prompt, fake, cache=cache, progress=False, record=args.record, concurrency=64)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frame_mb = results.df.memory_usage(deep=True).sum() / 2**20
    ok = int(results.df["passed"].fillna(False).sum())
    print(json.dumps({"cases": args.cases, "wall_s": wall, "cpu_ms": 1000 * cpu / args.cases, "before_mb": before,
                      "peak_mb": peak, "frame_mb": frame_mb, "passed": ok}))


def run_size(cases: int, cache: bool, record: bool) -> dict:
    """One size in a fresh child process; its JSON report."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, __file__, "--role", "child", "--cases", str(cases), "--tmp", tmp]
        command += [] if cache else ["--no-cache"]
        command += [] if record else ["--no-record"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"the {cases}-case run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("main", "child"), default="main")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--tmp")
    parser.add_argument("--no-cache", dest="cache", action="store_false")
    parser.add_argument("--no-record", dest="record", action="store_false")
    args = parser.parse_args()
    if args.role == "child":
        child(args)
        return
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"FakeProvider runs, cache {'on' if args.cache else 'off'}, run store {'on' if args.record else 'off'}; "
          f"load: {load}")
    print(f"{'cases':>8}{'wall s':>9}{'CPU ms/case':>13}{'RSS before':>12}{'peak':>9}{'growth MB':>11}"
          f"{'KB/case':>9}{'frame MB':>10}{'frame KB/case':>15}{'passed':>9}")
    reports = [run_size(n, args.cache, args.record) for n in args.sizes]
    for r in reports:
        growth = r["peak_mb"] - r["before_mb"]
        print(f"{r['cases']:>8}{r['wall_s']:>9.2f}{r['cpu_ms']:>13.3f}{r['before_mb']:>12.1f}{r['peak_mb']:>9.1f}"
              f"{growth:>11.1f}{1024 * growth / r['cases']:>9.2f}{r['frame_mb']:>10.1f}"
              f"{1024 * r['frame_mb'] / r['cases']:>15.2f}{r['passed']:>9}")
    small, big = reports[0], reports[-1]
    cpu_ratio = big["cpu_ms"] / small["cpu_ms"]
    per_frame = (big["peak_mb"] - big["before_mb"]) / big["frame_mb"]
    marginal = ((big["peak_mb"] - big["before_mb"]) - (small["peak_mb"] - small["before_mb"])) / (
        big["frame_mb"] - small["frame_mb"])
    print(f"\n{'target':<56}{'measured':>10}{'goal':>10}  met")
    for name, value, goal in ((f"CPU per case, {big['cases']} vs {small['cases']} cases", cpu_ratio,
                               TARGETS["cpu_ratio"]),
                              (f"RSS growth / results frame bytes at {big['cases']}", per_frame,
                               TARGETS["rss_per_frame"]),
                              (f"added RSS growth / added frame bytes, {small['cases']} → {big['cases']}", marginal,
                               TARGETS["rss_per_frame"])):
        print(f"{name:<56}{value:>10.3f}{'<= ' + str(goal):>10}  {'yes' if value <= goal else 'NO'}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
