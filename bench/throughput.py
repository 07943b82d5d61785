"""Benchmark: promptlab's runner against the bare OpenAI SDK, through the loopback fake server (issues 3 and 20).

    python bench/throughput.py [--cases 500] [--latency 0.2] [--rounds 3] [--concurrency 10 50] [--start-runs 5]
    python bench/throughput.py --start-only   # start to first request alone

Every measurement runs in processes of its own, so the numbers are the client's alone:

* the fake server (`FakeLLMServer`, OpenAI wire format) runs in a child process, answering after
  ``--latency`` seconds;
* each client run is a fresh child process (``--role client``) that times one run and reports wall time,
  process CPU time (``time.process_time``) and peak RSS (``ru_maxrss``) as one JSON line.

Clients:
  bare       — ``openai.AsyncOpenAI`` (max_retries=0) with an ``asyncio.Semaphore``, no framework: the
               near-ideal to beat. Under 429s it sleeps the server's Retry-After and tries again.
  promptlab  — ``pl.run(suite, prompt, OpenAIProvider(...), concurrency=c, progress=False,
               cache=pl.ResponseCache(<fresh file>))``: rendering, retries, caching, scoring and the
               results frame included.
  cached     — the same ``pl.run`` again on the cache the c=10 run filled: every call is a cache hit.

Scenarios: no faults, then 10% of requests answered 429 with ``Retry-After: 1`` (every case must still
complete); which requests get it, by arrival order, is one seeded schedule per round, the same for both
clients. Reported per configuration (median over rounds): wall time, the physical limit
N·latency/concurrency (for 429 runs: plus each rejected request's latency and Retry-After, which hold a
slot), wall/limit, wall relative to the bare SDK, CPU ms per case, peak RSS; plus the process start time
(``python -c "import promptlab"``, median of 5) and, for scale, the peak RSS of merely importing what a
run loads (promptlab's runner with pandas and pyarrow, and the openai SDK). Targets are printed beside the numbers.

Start to first request (``--start-only`` runs just this part): the time from spawning a process to the
server receiving its first request, for ``promptlab eval`` (the command line, a fresh response cache) and
for a bare SDK script (``import openai``, one ``AsyncOpenAI``, the same calls), each a fresh process,
alternating, ``--start-runs`` times each; medians with min-max spread, and the machine's load (``uptime``).
Arrival times come from the server's request log (``ReceivedRequest.received_at``, ``time.time()``).
Target: promptlab no worse than the bare script + 0.2 s.

Issue 20's targets (no framework tax at high concurrency) are in the same table, from the same run: wall time
at most 1.10x the bare SDK's at c=50, and promptlab's CPU per call at most the bare SDK's + 0.3 ms at every c.
``--quick`` (100 cases, 1 round, one start run) is a smoke run for CI; the report uses the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = "Classify the sentiment of the text as positive or negative. Answer with one word."
FEW_SHOT = (("I love it, works perfectly!", "positive"), ("Broke after one day.", "negative"))
MODEL = "gpt-4o-mini"
RETRY_AFTER_S = 1.0
REJECT_RATE = 0.1
TARGETS = {"ratio_c10": 1.05, "ratio_c50": 1.10, "cpu_ms": 4.0, "cpu_extra_ms": 0.3, "start_s": 1.0, "rss_mb": 150.0,
           "cached_s": 1.0, "first_request_extra_s": 0.2}
START_CASES = 20


def case_text(i: int) -> str:
    """The input of case ``i`` (distinct per case, so every request is a distinct cache key)."""
    return f"Review {i}: the product {'works well' if i % 2 == 0 else 'broke quickly'} for me."


def answer_rule(body: dict) -> str:
    """The fake server's answer: the label implied by the case text."""
    from promptlab.testing import last_user_text

    return "positive" if "works well" in last_user_text(body) else "negative"


# ---- the server process ------------------------------------------------------------------------------------
def fault_schedule(rate: float, length: int, seed: int = 0) -> list[str | None]:
    """Which requests, by arrival order, get a 429: the same list for every client, so they face the same
    faults (``rate`` of the requests, drawn independently)."""
    rng = random.Random(seed)
    return ["rate_limit" if rng.random() < rate else None for _ in range(length)]


def serve(latency_s: float) -> None:
    """Run a `FakeLLMServer` and obey JSON commands on stdin: ``prepare`` (forget the log, schedule faults),
    ``count`` and ``stop``; each reply gives the requests received and how many were rejected."""
    from promptlab.testing import FakeLLMServer

    with FakeLLMServer(answers=answer_rule, latency_s=latency_s, retry_after_s=RETRY_AFTER_S) as server:
        print(json.dumps({"base_url": server.openai_base_url}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            if command["cmd"] == "stop":
                break
            if command["cmd"] == "prepare":
                server.reset()
                server.inject_faults(*command["faults"])
            log = server.requests
            print(json.dumps({"count": len(log), "rejected": sum(r.fault is not None for r in log),
                              "first_at": min((r.received_at for r in log), default=None)}), flush=True)


class ServerProcess:
    """The fake server in a child process, driven over its stdin/stdout."""

    def __init__(self, latency_s: float):
        self.proc = subprocess.Popen([sys.executable, __file__, "--role", "server", "--latency", str(latency_s)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.base_url = json.loads(self.proc.stdout.readline())["base_url"]

    def command(self, cmd: str, **fields: object) -> dict:
        """Send one command; returns the reply (request counts so far)."""
        self.proc.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        """Ask the server to stop and wait for it."""
        self.proc.stdin.write(json.dumps({"cmd": "stop"}) + "\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# ---- the client processes ----------------------------------------------------------------------------------
def bare_messages(text: str) -> list[dict]:
    """The same messages promptlab renders for a case, built by hand."""
    shots = [m for q, a in FEW_SHOT for m in ({"role": "user", "content": f"Text: {q}"},
                                              {"role": "assistant", "content": a})]
    return [{"role": "system", "content": SYSTEM}, *shots, {"role": "user", "content": f"Text: {text}"}]


async def bare_run(base_url: str, cases: int, concurrency: int) -> int:
    """The near-ideal client: the official SDK and a semaphore; returns how many cases got an answer."""
    import openai

    client = openai.AsyncOpenAI(api_key="test", base_url=base_url, max_retries=0, timeout=60)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> str:
        async with semaphore:
            for _ in range(10):
                try:
                    response = await client.chat.completions.create(
                        model=MODEL, messages=bare_messages(case_text(i)), temperature=0.0, max_tokens=10)
                    return response.choices[0].message.content
                except openai.RateLimitError as error:
                    await asyncio.sleep(float(error.response.headers.get("retry-after", RETRY_AFTER_S)))
            raise RuntimeError(f"case {i} was rate limited 10 times")

    async with client:
        answers = await asyncio.gather(*[one(i) for i in range(cases)])
    return sum(answer is not None for answer in answers)


def promptlab_job(base_url: str, cases: int, concurrency: int, cache_path: str) -> Callable[[], int]:
    """Build the suite, prompt, provider and cache (untimed); returns the timed part: one `pl.run`, giving
    how many rows have no error."""
    import pyarrow.parquet  # noqa: F401 - the run store writes the rows with it at the end

    import promptlab as pl

    # pl.run's own imports load before timing, as `import openai` does for the bare client: the runner, and what
    # it loads after the calls (the scorers and the results frame: pandas, pyarrow)
    import promptlab.evaluation._results  # noqa: F401
    import promptlab.evaluation._runner  # noqa: F401
    import promptlab.evaluation._scorer_specs  # noqa: F401
    import promptlab.evaluation._scoring  # noqa: F401
    import promptlab.providers._structured  # noqa: F401
    from promptlab.providers._openai import OpenAIProvider

    suite = pl.Suite("bench", labels=["positive", "negative"])
    for i in range(cases):
        suite.add_case(case_text(i), "positive" if i % 2 == 0 else "negative", id=f"c{i}")
    prompt = pl.Prompt(name="bench", version="1", model=f"openai:{MODEL}", system=SYSTEM, max_tokens=10,
                       template="Text: {{ input }}",
                       few_shot_examples=[{"input": q, "output": a} for q, a in FEW_SHOT])
    provider = OpenAIProvider(api_key="test", base_url=base_url, max_concurrency=concurrency)
    cache = pl.ResponseCache(cache_path)

    def job() -> int:
        results = pl.run(suite, prompt, provider, concurrency=concurrency, progress=False, cache=cache)
        return int(results.df["error_type"].isna().sum())

    return job


def bare_job(base_url: str, cases: int, concurrency: int) -> Callable[[], int]:
    """The timed part of the bare client: one ``asyncio.run`` of `bare_run`."""
    return lambda: asyncio.run(bare_run(base_url, cases, concurrency))


def client(args: argparse.Namespace) -> None:
    """Time one run in this process and print wall, CPU and peak RSS as a JSON line. Imports and setup
    happen before the clock starts, for both clients alike."""
    import openai  # noqa: F401

    if args.impl == "bare":
        job = bare_job(args.base_url, args.cases, args.concurrency)
    else:
        job = promptlab_job(args.base_url, args.cases, args.concurrency, args.cache)
    profiler = _profiler(args.profile)
    cpu, wall = time.process_time(), time.perf_counter()
    completed = job()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall_s": wall, "cpu_ms": 1000 * cpu / args.cases, "rss_mb": rss_mb,
                      "completed": completed}))


def _profiler(path: str | None):
    if not path:
        return None
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


# ---- start to first request -------------------------------------------------------------------------------
BARE_START_SCRIPT = """
import asyncio, sys
import openai

async def main(base_url, messages):
    semaphore = asyncio.Semaphore(10)
    async with openai.AsyncOpenAI(api_key="test", base_url=base_url, max_retries=0, timeout=60) as client:
        async def one(batch):
            async with semaphore:
                response = await client.chat.completions.create(
                    model={model!r}, messages=batch, temperature=0.0, max_tokens=10)
                return response.choices[0].message.content
        await asyncio.gather(*(one(batch) for batch in messages))

asyncio.run(main(sys.argv[1], {messages!r}))
"""


def start_files(tmp: Path) -> tuple[Path, Path]:
    """The suite and prompt files `promptlab eval` runs in the start measurement (the bench's own cases)."""
    import yaml

    suite = {"name": "bench", "labels": ["positive", "negative"],
             "cases": [{"id": f"c{i}", "input": case_text(i), "expected": "positive" if i % 2 == 0 else "negative"}
                       for i in range(START_CASES)]}
    prompt = {"name": "bench", "version": "1.0.0", "model": f"openai:{MODEL}", "temperature": 0.0,
              "max_tokens": 10, "system": SYSTEM, "template": "Text: {{ input }}",
              "few_shot_examples": [{"input": q, "output": a} for q, a in FEW_SHOT]}
    (tmp / "suite.yaml").write_text(yaml.safe_dump(suite))
    (tmp / "prompt.yaml").write_text(yaml.safe_dump(prompt))
    return tmp / "suite.yaml", tmp / "prompt.yaml"


def start_command(impl: str, base_url: str, tmp: Path) -> list[str]:
    """The process to spawn: ``promptlab eval`` as a user runs it, or the bare SDK script."""
    if impl == "bare":
        messages = [bare_messages(case_text(i)) for i in range(START_CASES)]
        return [sys.executable, "-c", BARE_START_SCRIPT.format(model=MODEL, messages=messages), base_url]
    suite, prompt = start_files(tmp)
    return [sys.executable, "-m", "promptlab.cli", "eval", "--suite", str(suite), "--prompt", str(prompt),
            "--quiet"]


def time_to_first_request(server: ServerProcess, impl: str, tmp: Path, run: int) -> float:
    """Seconds from spawning one process to the server receiving its first request."""
    import os

    server.command("prepare", faults=[])
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "test",
           "PROMPTLAB_CACHE_DIR": str(tmp / f"cache-{impl}-{run}")}  # a fresh cache: every call is a miss
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = start_command(impl, server.base_url, tmp)
    spawned = time.time()
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp, env=env, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{impl} start run failed:\n{done.stderr[-3000:]}")
    first_at = server.command("count")["first_at"]
    if first_at is None:
        raise RuntimeError(f"{impl} start run sent no request:\n{done.stdout[-2000:]}")
    return first_at - spawned


def start_to_first_request(server: ServerProcess, runs: int) -> dict[str, list[float]]:
    """Both clients ``runs`` times each, alternating which goes first; seconds per run by client."""
    times: dict[str, list[float]] = {"bare": [], "promptlab": []}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            for impl in ("bare", "promptlab") if run % 2 == 0 else ("promptlab", "bare"):
                times[impl].append(time_to_first_request(server, impl, Path(tmp), run))
    return times


def print_start(times: dict[str, list[float]]) -> None:
    """Medians with min-max spread, the difference, the target and the load the numbers were taken under."""
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"start to first request ({len(times['bare'])} runs each, fresh processes; load: {load})")
    for impl, label in (("bare", "bare SDK script"), ("promptlab", "promptlab eval")):
        values = times[impl]
        print(f"  {label:<18}median {statistics.median(values):.3f} s   "
              f"(min {min(values):.3f}, max {max(values):.3f})")
    extra = statistics.median(times["promptlab"]) - statistics.median(times["bare"])
    goal = TARGETS["first_request_extra_s"]
    print(f"  promptlab - bare  {extra:+.3f} s   goal <= +{goal} s  {'met' if extra <= goal else 'NOT met'}")


# ---- the orchestrator --------------------------------------------------------------------------------------
@dataclass
class Measure:
    """The medians of one configuration over the rounds."""

    name: str
    concurrency: int | None
    wall_s: float
    cpu_ms: float
    rss_mb: float
    limit_s: float | None
    completed: int


def run_client(base_url: str, impl: str, cases: int, concurrency: int, cache: str) -> dict:
    """Start one client process and return its JSON report."""
    command = [sys.executable, __file__, "--role", "client", "--impl", impl, "--base-url", base_url,
               "--cases", str(cases), "--concurrency", str(concurrency), "--cache", cache]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"client {impl} c={concurrency} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_round(server: ServerProcess, args: argparse.Namespace, tmp: Path, rnd: int) -> dict[str, list]:
    """Every configuration once; returns reports keyed by configuration name (each with its limit)."""
    reports: dict[str, list] = {}
    for scenario, rate in (("", 0.0), ("429 ", REJECT_RATE)):
        for c in args.concurrency:
            impls = ("bare", "promptlab") if rnd % 2 == 0 else ("promptlab", "bare")
            for impl in impls:
                server.command("prepare", faults=fault_schedule(rate, 4 * args.cases, seed=rnd))
                cache = str(tmp / f"r{rnd}-{scenario.strip()}-c{c}.sqlite")
                report = run_client(server.base_url, impl, args.cases, c, cache)
                rejected = server.command("count")["rejected"]
                report["limit_s"] = (args.cases * args.latency + rejected * (args.latency + RETRY_AFTER_S)) / c
                reports.setdefault(f"{scenario}{impl}|{c}", []).append(report)
    server.command("prepare", faults=[])
    cached = run_client(server.base_url, "promptlab", args.cases, args.concurrency[0],
                        str(tmp / f"r{rnd}--c{args.concurrency[0]}.sqlite"))
    cached["limit_s"] = None
    reports.setdefault("cached re-run|0", []).append(cached)
    return reports


def summarise(reports: dict[str, list]) -> list[Measure]:
    """Medians per configuration."""
    measures = []
    for key, runs in reports.items():
        name, c = key.split("|")
        med = statistics.median
        limit = runs[0]["limit_s"]
        measures.append(Measure(name, int(c) or None, med(r["wall_s"] for r in runs),
                                med(r["cpu_ms"] for r in runs), max(r["rss_mb"] for r in runs),
                                med(r["limit_s"] for r in runs) if limit is not None else None,
                                min(r["completed"] for r in runs)))
    return measures


def start_time() -> float:
    """Median wall time of ``python -c "import promptlab"`` over 5 runs."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import promptlab"], check=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def import_rss() -> float:
    """Peak RSS (MB) of a process that only imports what a run loads (promptlab's runner — pandas, pyarrow —
    and the openai SDK): the floor under any run."""
    code = ("import resource, promptlab.evaluation._runner, promptlab.evaluation._results, openai; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return int(done.stdout) / 1024


def print_table(measures: list[Measure], cases: int) -> None:
    """One line per configuration, with wall relative to the bare SDK in the same scenario."""
    bare = {(m.name.replace("bare", ""), m.concurrency): m.wall_s for m in measures if "bare" in m.name}
    print(f"{'configuration':<22}{'c':>4}{'wall s':>9}{'limit s':>9}{'wall/limit':>11}{'vs bare':>9}"
          f"{'CPU ms/case':>13}{'peak RSS MB':>13}{'ok rows':>9}")
    for m in measures:
        ref = bare.get((m.name.replace("promptlab", ""), m.concurrency))
        ratio = f"{m.wall_s / ref:.3f}" if ref and "bare" not in m.name else "-"
        limit = f"{m.limit_s:.2f}" if m.limit_s else "-"
        per_limit = f"{m.wall_s / m.limit_s:.3f}" if m.limit_s else "-"
        print(f"{m.name:<22}{m.concurrency or '-':>4}{m.wall_s:>9.3f}{limit:>9}{per_limit:>11}{ratio:>9}"
              f"{m.cpu_ms:>13.2f}{m.rss_mb:>13.1f}{f'{m.completed}/{cases}':>9}")


def print_targets(measures: list[Measure], start_s: float, floor_mb: float, cases: int) -> None:
    """Each target, the measured value and whether it is met."""
    by = {(m.name, m.concurrency): m for m in measures}
    lines = []
    for c, key in ((10, "ratio_c10"), (50, "ratio_c50")):
        if ("promptlab", c) in by:
            ratio = by[("promptlab", c)].wall_s / by[("bare", c)].wall_s
            lines.append((f"wall vs bare SDK at c={c}", f"{ratio:.3f}", f"<= {TARGETS[key]}", ratio <= TARGETS[key]))
    for c in sorted({m.concurrency for m in measures if m.name == "promptlab"}):
        extra = by[("promptlab", c)].cpu_ms - by[("bare", c)].cpu_ms  # issue 20: the framework's CPU per call
        goal = TARGETS["cpu_extra_ms"]
        lines.append((f"CPU ms per call over bare at c={c}", f"{extra:+.2f}", f"<= +{goal}", extra <= goal))
    kit = [m for m in measures if "promptlab" in m.name or "cached" in m.name]
    cpu = max(m.cpu_ms for m in kit if "cached" not in m.name)
    rss = max(m.rss_mb for m in kit)
    cached = by[("cached re-run", None)]
    completed = all(m.completed == cases for m in measures)
    lines += [("CPU ms per case (max, uncached)", f"{cpu:.2f}", f"<= {TARGETS['cpu_ms']}", cpu <= TARGETS["cpu_ms"]),
              ("process start (import promptlab)", f"{start_s:.3f} s", f"< {TARGETS['start_s']} s",
               start_s < TARGETS["start_s"]),
              ("peak RSS (max)", f"{rss:.1f} MB", f"< {TARGETS['rss_mb']} MB", rss < TARGETS["rss_mb"]),
              ("  (imports alone: runner + openai)", f"{floor_mb:.1f} MB", "-", None),
              ("cached re-run", f"{cached.wall_s:.3f} s", f"< {TARGETS['cached_s']} s",
               cached.wall_s < TARGETS["cached_s"]),
              ("every case completed (429 runs too)", str(completed), "True", completed)]
    print(f"\n{'target':<38}{'measured':>12}{'goal':>12}  met")
    for name, value, goal, met in lines:
        print(f"{name:<38}{value:>12}{goal:>12}  {'-' if met is None else 'yes' if met else 'NO'}")


def orchestrate(args: argparse.Namespace) -> None:
    """Start the server process, run every configuration ``--rounds`` times, print the tables."""
    server = ServerProcess(args.latency)
    try:
        starts = start_to_first_request(server, args.start_runs)
        if args.start_only:
            print_start(starts)
            return
        with tempfile.TemporaryDirectory() as tmp:
            reports: dict[str, list] = {}
            for rnd in range(args.rounds):
                for key, runs in one_round(server, args, Path(tmp), rnd).items():
                    reports.setdefault(key, []).extend(runs)
    finally:
        server.stop()
    start_s, floor_mb = start_time(), import_rss()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {load}")
    print(f"{args.cases} cases, server latency {args.latency * 1000:.0f} ms (own process), "
          f"median of {args.rounds} rounds; 429 runs: {REJECT_RATE:.0%} of requests rejected with "
          f"Retry-After: {RETRY_AFTER_S:g}\n")
    measures = summarise(reports)
    print_table(measures, args.cases)
    print_targets(measures, start_s, floor_mb, args.cases)
    print()
    print_start(starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("main", "server", "client"), default="main")
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--impl", choices=("bare", "promptlab"), default="promptlab")
    parser.add_argument("--base-url")
    parser.add_argument("--cache")
    parser.add_argument("--start-runs", type=int, default=5, help="start-to-first-request runs per client")
    parser.add_argument("--start-only", action="store_true", help="measure start to first request only")
    parser.add_argument("--profile", help="client role: write cProfile stats of the timed run to this file")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100 cases, 1 round, 1 start run")
    args = parser.parse_args()
    if args.quick:
        args.cases, args.rounds, args.start_runs = 100, 1, 1
    if args.role == "server":
        serve(args.latency)
    elif args.role == "client":
        args.concurrency = args.concurrency[0]
        client(args)
    else:
        orchestrate(args)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
