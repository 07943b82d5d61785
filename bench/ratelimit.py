"""Benchmark: runs against rate limits, and a pool of servers against one (issue 20).

    python bench/ratelimit.py            # the full scale: 3,000 calls at 600 RPM and 150k TPM (~5 min per client)
    python bench/ratelimit.py --quick    # CI smoke: the same at 10x the limits (~30 s per client)
    python bench/ratelimit.py --part pool

Part 1, limits. The fake server (`FakeLLMServer(rpm=..., tpm=...)`, OpenAI wire format, its own process) admits
requests through an RPM and a TPM token bucket, answering 429 with OpenAI's body and headers beyond them. Its
buckets start EMPTY for every client (as if another client had just used the minute's allowance), so the bound
the limits set is the demand over the rates: ``max(calls / rpm, tokens / tpm)`` minutes, plus one latency —
tokens being what the server counted for the calls it answered (input words + answer words; the same for every
client: the cases and answers are fixed). Cases carry 150–330 words, so both limits bind. Each client runs in a
fresh process:

  bare      — ``openai.AsyncOpenAI`` with a fixed ``asyncio.Semaphore(concurrency)``; on a 429 it sleeps the
              server's Retry-After and tries again (the usual hand-written script).
  declared  — ``pl.run`` through ``OpenAIProvider(rate_limits={"rpm": ..., "tpm": ...})``.
  learned   — ``pl.run`` through ``OpenAIProvider()``: the limits come from the ``x-ratelimit-*`` headers.

Reported per client: wall, wall / bound, the span from the first to the last request the server received, 429s
in all and after the first 10 s (as a share of the calls), and
whether every case was answered. Targets: wall ≤ 1.05× the bound, 429s after 10 s ≤ 1% of calls.

Part 2, pool. Three fake servers, each answering ``--slots`` requests at a time after ``--pool-latency`` s (an
inference server's batch), in one process. ``pl.run`` through `ServerPool` over one of them, then over all three,
at a concurrency that can fill three; throughput = calls / wall. Target: three servers ≥ 2.7× one.

Each client prints one JSON line; the machine's load (``os.getloadavg``) is printed before and after.
(The 100k-case run's RSS growth and CPU per case are measured by ``bench/bigrun.py``.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = "Classify the sentiment of the review as positive or negative. Answer with one word."
MODEL = "gpt-4o-mini"
MAX_TOKENS = 50  # far above the one-word answers: the limiter must settle its reservations to keep pace
TARGETS = {"wall_over_bound": 1.05, "late_429_share": 0.01, "pool_speedup": 2.7}
WORDS = ("good", "bad", "fine", "slow", "fast", "solid", "cheap", "bright", "quiet", "loud", "warm", "cold")


def case_text(i: int) -> str:
    """Case ``i``: a review of 150-330 words (seeded), so each call takes ~150-330 tokens."""
    rng = random.Random(i)
    words = [rng.choice(WORDS) for _ in range(rng.randint(150, 330))]
    return f"Review {i}: " + " ".join(words)


def answer_rule(body: dict) -> str:
    from promptlab.testing import last_user_text

    return "positive" if "good" in last_user_text(body)[:60] else "negative"


# ---- servers ---------------------------------------------------------------------------------------------------
def serve_limited(args: argparse.Namespace) -> None:
    """A rate-limited server obeying stdin: ``prepare`` (fresh, empty buckets; forget the log), ``report``, ``stop``."""
    from promptlab.testing import FakeLLMServer
    from promptlab.testing._limits import ServerLimits

    with FakeLLMServer(answers=answer_rule, latency_s=args.latency, rpm=args.rpm, tpm=args.tpm) as server:
        print(json.dumps({"base_url": server.openai_base_url}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)["cmd"]
            if command == "stop":
                break
            if command == "prepare":
                server.reset()
                server.limits = ServerLimits(args.rpm, args.tpm)
                server.limits.drain(requests=0, tokens=0)
                print("{}", flush=True)
            elif command == "report":
                print(json.dumps(_server_report(server)), flush=True)


def _server_report(server) -> dict:
    log = server.requests
    first = min((r.received_at for r in log), default=0.0)
    refused = [r.received_at - first for r in log if r.fault == "rate_limit"]
    span = max((r.received_at for r in log), default=first) - first
    return {"requests": len(log), "refused": len(refused), "refused_after_10s": sum(t > 10 for t in refused),
            "span_s": span,
            "tokens": server.limits.tokens_used, "admitted": server.limits.admitted}


def serve_pool(args: argparse.Namespace) -> None:
    """Three servers with ``slots`` each, in this process; prints their base URLs and waits for stdin to close."""
    from promptlab.testing import FakeLLMServer

    servers = [FakeLLMServer(answers=answer_rule, latency_s=args.pool_latency, slots=args.slots).start()
               for _ in range(3)]
    print(json.dumps({"base_urls": [s.openai_base_url for s in servers]}), flush=True)
    sys.stdin.read()
    for server in servers:
        server.stop()


class Child:
    """A child process driven over stdin/stdout, one JSON line each way."""

    def __init__(self, *argv: str):
        self.proc = subprocess.Popen([sys.executable, __file__, *argv], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.hello = json.loads(self.proc.stdout.readline())

    def command(self, cmd: str) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": cmd}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"cmd": "stop"}) + "\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=30)


# ---- clients -----------------------------------------------------------------------------------------------------
def bare_messages(i: int) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": case_text(i)}]


async def bare_run(base_url: str, calls: int, concurrency: int) -> int:
    """A fixed semaphore and the official SDK; 429s sleep the server's Retry-After, then try again."""
    import openai

    client = openai.AsyncOpenAI(api_key="test", base_url=base_url, max_retries=0, timeout=120)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> bool:
        async with semaphore:
            for _ in range(1000):
                try:
                    await client.chat.completions.create(model=MODEL, messages=bare_messages(i), temperature=0.0,
                                                         max_tokens=MAX_TOKENS)
                    return True
                except openai.RateLimitError as error:
                    headers = error.response.headers
                    wait = float(headers.get("retry-after-ms", 0)) / 1000 or float(headers.get("retry-after", 1))
                    await asyncio.sleep(wait)
            return False

    async with client:
        return sum(await asyncio.gather(*[one(i) for i in range(calls)]))


def promptlab_job(args: argparse.Namespace):
    """Build suite, prompt and provider (untimed); returns the timed `pl.run`, giving the rows without error."""
    import promptlab as pl
    import promptlab.evaluation._results  # noqa: F401  (loaded before the clock, like `import openai`)
    import promptlab.evaluation._runner  # noqa: F401
    import promptlab.evaluation._scoring  # noqa: F401
    from promptlab.providers import OpenAIProvider, ServerPool

    suite = pl.Suite("bench", labels=["positive", "negative"])
    for i in range(args.calls):
        suite.add_case(case_text(i), "positive", id=f"c{i}")
    prompt = pl.Prompt(name="bench", version="1", model=f"openai:{MODEL}", system=SYSTEM, max_tokens=MAX_TOKENS,
                       template="{{ input }}")
    if args.impl == "pool":
        provider = ServerPool(args.base_url.split(","), model=MODEL, max_concurrency_per_server=args.concurrency)
    else:
        limits = {"rpm": args.rpm, "tpm": args.tpm} if args.impl == "declared" else None
        provider = OpenAIProvider(api_key="test", base_url=args.base_url, max_concurrency=args.concurrency,
                                  rate_limits=limits, timeout_s=120)
    cache = pl.ResponseCache(Path(tempfile.mkdtemp()) / "cache.sqlite")

    def job() -> int:
        results = pl.run(suite, prompt, provider, concurrency=args.concurrency, progress=False, cache=cache,
                         timeout_s=120, retries=20, max_error_rate=1.0)
        return int(results.df["error_type"].isna().sum())

    return job


def client(args: argparse.Namespace) -> None:
    """Time one run in this process; print wall, CPU and completed cases as one JSON line."""
    import openai  # noqa: F401

    if args.impl == "bare":
        job = lambda: asyncio.run(bare_run(args.base_url, args.calls, args.concurrency))  # noqa: E731
    else:
        job = promptlab_job(args)
    if args.sync:  # set up; say so; start when told (the server's buckets are emptied in between)
        print(json.dumps({"ready": True}), flush=True)
        sys.stdin.readline()
    cpu, wall = time.process_time(), time.perf_counter()
    completed = job()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"wall_s": wall, "cpu_ms": 1000 * cpu / args.calls, "completed": completed}))


def run_client(impl: str, base_url: str, calls: int, concurrency: int, args: argparse.Namespace,
               before=None) -> dict:
    """One client in a fresh process; ``before()`` runs once it is set up, just before its clock starts."""
    argv = [sys.executable, __file__, "--role", "client", "--impl", impl, "--base-url", base_url,
            "--calls", str(calls), "--concurrency", str(concurrency), "--rpm", str(args.rpm), "--tpm", str(args.tpm),
            "--sync"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    json.loads(proc.stdout.readline())  # ready
    if before is not None:
        before()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out = proc.stdout.read()
    if proc.wait() != 0:
        raise RuntimeError(f"the {impl} client failed")
    return json.loads(out.strip().splitlines()[-1])


# ---- the parts ---------------------------------------------------------------------------------------------------
def part_limits(args: argparse.Namespace) -> None:
    server = Child("--role", "server", "--rpm", str(args.rpm), "--tpm", str(args.tpm), "--latency", str(args.latency))
    print(f"\n## Rate limits: {args.calls} calls at {args.rpm:g} RPM and {args.tpm:g} TPM, latency {args.latency} s, "
          f"concurrency {args.concurrency} (server buckets start empty)")
    print(f"{'client':<10} {'wall s':>8} {'bound s':>8} {'wall/bound':>10} {'span s':>7} {'429s':>6} {'429s>10s':>9} "
          f"{'share>10s':>9} {'answered':>9} {'cpu ms':>7}")
    try:
        for impl in args.clients:
            result = run_client(impl, server.hello["base_url"], args.calls, args.concurrency, args,
                                before=lambda: server.command("prepare"))
            report = server.command("report")
            bound = max(args.calls / args.rpm, report["tokens"] / args.tpm) * 60 + args.latency
            ratio, share = result["wall_s"] / bound, report["refused_after_10s"] / args.calls
            ok = "ok" if ratio <= TARGETS["wall_over_bound"] and share <= TARGETS["late_429_share"] else "MISSED"
            print(f"{impl:<10} {result['wall_s']:8.1f} {bound:8.1f} {ratio:10.3f} {report['span_s']:7.1f} "
                  f"{report['refused']:6d} "
                  f"{report['refused_after_10s']:9d} {share:9.2%} {result['completed']:>5}/{args.calls:<3} "
                  f"{result['cpu_ms']:7.2f}  {ok if impl != 'bare' else ''}", flush=True)
    finally:
        server.stop()
    print(f"targets: wall/bound ≤ {TARGETS['wall_over_bound']}, 429s after the first 10 s ≤ "
          f"{TARGETS['late_429_share']:.0%} of calls (promptlab clients). span: first to last request the server "
          "received — the pacing alone, without the run's set-up (planning, rendering) and its results frame")


def part_pool(args: argparse.Namespace) -> None:
    servers = Child("--role", "pool-servers", "--slots", str(args.slots), "--pool-latency", str(args.pool_latency))
    urls = servers.hello["base_urls"]
    capacity = args.slots / args.pool_latency
    concurrency = 3 * args.slots * 2
    print(f"\n## Pool: fake servers of {args.slots} slots × {args.pool_latency} s (≤ {capacity:g} calls/s each), "
          f"concurrency {concurrency}")
    try:
        one = run_client("pool", urls[0], args.pool_calls, concurrency, args)
        three = run_client("pool", ",".join(urls), 3 * args.pool_calls, concurrency, args)
    finally:
        servers.proc.stdin.close()
        servers.proc.wait(timeout=30)
    rate_one, rate_three = args.pool_calls / one["wall_s"], 3 * args.pool_calls / three["wall_s"]
    speedup = rate_three / rate_one
    print(f"one server:    {args.pool_calls} calls in {one['wall_s']:.2f} s = {rate_one:.1f} calls/s "
          f"(cpu {one['cpu_ms']:.2f} ms/call)")
    print(f"three servers: {3 * args.pool_calls} calls in {three['wall_s']:.2f} s = {rate_three:.1f} calls/s "
          f"(cpu {three['cpu_ms']:.2f} ms/call)")
    print(f"speed-up {speedup:.2f}× (target ≥ {TARGETS['pool_speedup']}) "
          f"{'ok' if speedup >= TARGETS['pool_speedup'] else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", default="main", choices=["main", "server", "pool-servers", "client"])
    parser.add_argument("--impl", default="declared")
    parser.add_argument("--base-url")
    parser.add_argument("--quick", action="store_true", help="10x the limits: ~30 s per client instead of ~5 min")
    parser.add_argument("--part", choices=["all", "limits", "pool"], default="all")
    parser.add_argument("--clients", nargs="+", default=["bare", "declared", "learned"])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rpm", type=float, default=None)
    parser.add_argument("--tpm", type=float, default=None)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--pool-latency", type=float, default=1.0)
    parser.add_argument("--pool-calls", type=int, default=None)
    parser.add_argument("--sync", action="store_true", help="(client) wait for a line on stdin before timing")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    args.rpm = args.rpm or 600.0 * scale
    args.tpm = args.tpm or 150_000.0 * scale
    args.pool_calls = args.pool_calls or (60 if args.quick else 120)
    if args.role == "server":
        return serve_limited(args)
    if args.role == "pool-servers":
        return serve_pool(args)
    if args.role == "client":
        return client(args)
    print(f"# bench/ratelimit.py {'--quick ' if args.quick else ''}— load before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores")
    if args.part in ("all", "limits"):
        part_limits(args)
    if args.part in ("all", "pool"):
        part_pool(args)
    print(f"\nload after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
