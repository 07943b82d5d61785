"""Benchmark: the PostgreSQL event log — ingest from several writer processes, and the A/B read of a big log.

    python bench/scale_postgres.py [--url postgresql://…] [--ingest 400000] [--writers 4] [--events 10000000]

Without ``--url`` a throwaway durable server is started (`promptlab.testing._postgres.ThrowawayPostgres`,
fsync on, PostgreSQL's default settings otherwise) and removed afterwards. Each measurement uses its own schema.

* `ingest` — ``writers`` processes each open ``EventLog(url)`` and call ``log.record(...)`` in a loop (an
  application's logging path: build and check an `Event`, hash the unit id, buffer; the background thread
  COPYs batches), then close; then the same with ``log.append_frame`` of 10,000-event frames (the bulk
  path). Timed from the moment all writers are ready until the last one has closed (so everything is
  committed); ``lost`` = events recorded − rows in the table for that run. Target: ≥ 50,000
  events/s from 4 writers with 0 lost.
* `load_events` — fills a schema with ``n`` simulated A/B events (two arms, 48 hours, 200,000 units) generated
  by SQL on the server (``INSERT … SELECT … generate_series``), so 10M rows need no 10M-row frame in Python.
* `ab_read` — the time of ``analyze_experiment`` (hourly looks: 48 over 48 hours) on that log, end to end;
  `ab_read_measured` adds the CPU seconds of the server and the client. Target: < 10 s for 10M events.

`bench/scale.py` imports `ingest`, `load_events` and `ab_read`. Numbers depend on the machine and its load: the
header prints both.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from promptlab.production import Design, EventLog, analyze_experiment  # noqa: E402

DESIGN = Design("sentiment-rollout", ("A", "B"), (1.0, 1.0), "A")
T0_MS = 1_736_121_600_000  # 2025-01-06 00:00 UTC
HOURS = 48


def schema_url(url: str, prefix: str = "bench") -> str:
    """A new empty schema on the server, as a URL whose search_path points at it."""
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def _frames(k: int, n: int, run: str, rows: int = 10_000) -> list:
    """The bulk path's input: the writer's events as DataFrames of ``rows`` events (built before the clock)."""
    import numpy as np
    import pandas as pd

    from promptlab.production import hash_unit

    units = np.array([hash_unit(u) for u in range(5000)], dtype=object)
    out = []
    for lo in range(0, n, rows):
        i = np.arange(lo, min(n, lo + rows))
        out.append(pd.DataFrame({
            "ts_ms": T0_MS + i, "experiment": "ingest", "prompt": "sentiment_classifier", "version": "1.0.0",
            "arm": np.where(i % 2 == 0, "A", "B"), "unit_hash": units[i % 5000],
            "request_id": [f"{run}-{k}-{j}" for j in i], "latency_s": 0.4 + (i % 100) / 100, "input_tokens": 120,
            "output_tokens": 3, "cost_usd": 0.0004, "success": (i % 31 != 0).astype(int), "format_ok": 1,
            "model": "anthropic:claude-3-5-sonnet-20241022", "outcome": "answered"}))
    return out


def _writer(url: str, k: int, n: int, run: str, mode: str, ready, go, cpu) -> None:
    """One writer process: open the log, wait for the start signal, log ``n`` events, close (flushes); puts
    its CPU seconds from the start signal on (all its threads) in ``cpu[k]``."""
    log = EventLog(url)
    frames = _frames(k, n, run) if mode == "frame" else []
    ready.release()
    go.wait()
    cpu_started = time.process_time()
    for frame in frames:
        log.append_frame(frame)
    for i in range(n if mode == "record" else 0):
        log.record("sentiment_classifier", version="1.0.0", experiment="ingest", arm="AB"[i % 2],
                   unit_id=i % 5000, request_id=f"{run}-{k}-{i}", latency_s=0.4 + (i % 100) / 100,
                   input_tokens=120, output_tokens=3, cost_usd=0.0004, success=i % 31 != 0, format_ok=True,
                   model="anthropic:claude-3-5-sonnet-20241022", outcome="answered")
    log.close()
    cpu[k] = time.process_time() - cpu_started


def server_cpu_s(pid: int | None) -> float:
    """CPU seconds of a local PostgreSQL server: the postmaster, its finished children (cutime/cstime) and its
    live ones, read from /proc (0.0 when unknown)."""
    if not pid:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")

    def stat(p: int | str) -> list[str]:
        text = Path(f"/proc/{p}/stat").read_text()
        return text[text.rindex(")") + 2:].split()  # fields from the 3rd on

    try:
        own = stat(pid)
        total = sum(int(v) for v in own[11:15])  # utime stime cutime cstime of the postmaster
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and entry.name != str(pid):
                try:
                    fields = stat(entry.name)
                except (OSError, ValueError):
                    continue
                if fields[1] == str(pid):
                    total += int(fields[11]) + int(fields[12])
    except (OSError, ValueError):
        return 0.0
    return total / tick


def ingest(url: str, n_events: int, writers: int = 4, mode: str = "record", server_pid: int | None = None) -> dict:
    """Events/s of ``writers`` processes logging ``n_events`` in all, and the lost count.

    ``mode``: ``"record"`` — one `EventLog.record` call per event (the application's path); ``"frame"`` —
    `EventLog.append_frame` of 10,000-event DataFrames (the bulk path: imports, log shippers).

    Returns a dict: ``events``, ``writers``, ``mode``, ``seconds``, ``events_per_s``, ``lost`` (logged −
    stored), ``failed_writers``, and the CPU seconds the writers (``client_cpu_s``) and, given the local
    server's ``server_pid``, the server (``server_cpu_s``) spent — steadier than wall time on a shared machine.
    """

    url = schema_url(url, "ingest")
    EventLog(url).close()  # the table exists before the clock starts
    run = uuid.uuid4().hex[:8]
    ctx = multiprocessing.get_context("spawn")
    ready, go, cpu = ctx.Semaphore(0), ctx.Event(), ctx.Array("d", writers)
    share = [n_events // writers + (1 if k < n_events % writers else 0) for k in range(writers)]
    procs = [ctx.Process(target=_writer, args=(url, k, share[k], run, mode, ready, go, cpu)) for k in range(writers)]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    server_before = server_cpu_s(server_pid)
    started = time.perf_counter()
    go.set()
    for proc in procs:
        proc.join()
    seconds = time.perf_counter() - started
    client_cpu = sum(cpu)
    server_cpu = server_cpu_s(server_pid) - server_before
    with EventLog(url) as log:
        stored = log.query("SELECT COUNT(*) AS n FROM events WHERE request_id LIKE ?", [f"{run}-%"])["n"].iloc[0]
    return {"events": n_events, "writers": writers, "mode": mode, "seconds": seconds,
            "events_per_s": n_events / seconds, "lost": n_events - int(stored),
            "failed_writers": sum(p.exitcode != 0 for p in procs), "client_cpu_s": client_cpu,
            "server_cpu_s": server_cpu}


_LOAD_SQL = f"""
INSERT INTO events (ts_ms, experiment, prompt, version, arm, unit_hash, request_id, latency_s, input_tokens,
                    output_tokens, cost_usd, success, format_ok, error_type, quality, model, outcome)
SELECT {T0_MS} + i * {HOURS * 3_600_000} / %(n)s, 'sentiment-rollout', 'sentiment_classifier',
       CASE WHEN u %% 2 = 0 THEN '1.0.0' ELSE '1.1.0' END, CASE WHEN u %% 2 = 0 THEN 'A' ELSE 'B' END,
       substr(md5(u::text), 1, 16), 'r' || i,
       0.9 * exp(0.45 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())),
       100 + (i %% 50), 1 + (i %% 3), 0.0004 + (i %% 7) * 0.00001,
       (random() < CASE WHEN u %% 2 = 0 THEN 0.970 ELSE 0.975 END)::int, (random() < 0.99)::int,
       CASE WHEN random() < 0.005 THEN 'timeout' END, NULL, 'anthropic:claude-3-5-sonnet-20241022', 'answered'
FROM (SELECT i, (i * 7919) %% 200000 AS u FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i) AS g
"""


def load_events(url: str, n_events: int, *, chunk: int = 1_000_000) -> str:
    """A new schema holding ``n_events`` simulated A/B events; returns its URL (for `ab_read`)."""
    import psycopg

    url = schema_url(url, "abread")
    EventLog(url).close()  # creates the table, its indexes and triggers
    with psycopg.connect(url, autocommit=True) as conn:
        for lo in range(0, n_events, chunk):
            conn.execute(_LOAD_SQL, {"n": n_events, "lo": lo, "hi": min(n_events, lo + chunk) - 1})
        conn.execute("VACUUM ANALYZE events")
    return url


def ab_read(url: str) -> float:
    """Seconds for one full A/B read (`analyze_experiment`, hourly looks) of the log at ``url``."""
    return ab_read_measured(url)["seconds"]


def ab_read_measured(url: str, server_pid: int | None = None) -> dict:
    """One full A/B read of the log at ``url``: ``seconds`` (wall), ``client_cpu_s`` (this process) and, given
    the local server's ``server_pid``, ``server_cpu_s`` (the backend and any parallel workers) — the read runs
    almost entirely in the server, and its CPU seconds are steadier than wall time on a shared machine."""
    with EventLog(url) as log:
        server_before, cpu_before = server_cpu_s(server_pid), time.process_time()
        started = time.perf_counter()
        report = analyze_experiment(log, DESIGN, look_every_s=3600)
        seconds = time.perf_counter() - started
        client = time.process_time() - cpu_before
        # the reading backend is still alive (the log is open): its CPU counts among the live children
        server = server_cpu_s(server_pid) - server_before
    assert report.n > 0, "the log at this URL holds no events of the experiment; fill it with load_events"
    return {"seconds": seconds, "client_cpu_s": client, "server_cpu_s": server}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a PostgreSQL server (default: start a throwaway one)")
    parser.add_argument("--ingest", type=int, default=400_000, help="events logged by the writers (0: skip)")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--events", type=int, default=10_000_000, help="events in the A/B read (0: skip)")
    args = parser.parse_args()
    print(f"# {platform.platform()} · {os.cpu_count()} cores · load {os.getloadavg()[0]:.2f} · python "
          f"{platform.python_version()}")
    server = None
    url = args.url
    if url is None:
        from promptlab.testing._postgres import ThrowawayPostgres

        server = ThrowawayPostgres(durable=True).start()
        url = server.url
    try:
        pid = server.server_pid() if server is not None else None
        for mode in ("record", "frame") if args.ingest else ():
            got = ingest(url, args.ingest, args.writers, mode, server_pid=pid)
            ok = got["events_per_s"] >= 50_000 and got["lost"] == 0 and not got["failed_writers"]
            print(f"ingest   {got['events']:,} events, {got['writers']} writer processes, {mode:>6}: "
                  f"{got['seconds']:.2f} s = {got['events_per_s']:,.0f} events/s, lost {got['lost']}  "
                  f"(target ≥ 50,000/s, 0 lost: {'met' if ok else 'NOT met'})  · load {os.getloadavg()[0]:.2f}")
            cpu = got["client_cpu_s"] + got["server_cpu_s"]
            if cpu > 0:
                print(f"         CPU: writers {1e6 * got['client_cpu_s'] / got['events']:.1f} µs/event, server "
                      f"{1e6 * got['server_cpu_s'] / got['events']:.1f} µs/event → {os.cpu_count()} idle cores "
                      f"would take ~{got['events'] * os.cpu_count() / cpu:,.0f} events/s")
        if args.events:
            started = time.perf_counter()
            data = load_events(url, args.events)
            print(f"load     {args.events:,} events by SQL: {time.perf_counter() - started:.1f} s")
            got = ab_read_measured(data, server_pid=pid)
            seconds = got["seconds"]
            print(f"A/B read {args.events:,} events, 48 looks: {seconds:.2f} s  (target < 10 s: "
                  f"{'met' if seconds < 10 else 'NOT met'})  · load {os.getloadavg()[0]:.2f}")
            if pid:
                print(f"         CPU: server {got['server_cpu_s']:.2f} s, client {got['client_cpu_s']:.2f} s")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
