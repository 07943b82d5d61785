"""Benchmark: production logs at scale — the targets of issue 18, printed beside the measured values.

    python bench/scale.py [--events 10000000] [--sqlite-events 1000000] [--repeats 3] [--postgres URL]

* **DuckDB/Parquet** — ``--events`` simulated events (`simulate_traffic`, two arms, 48 hours: 48 hourly
  looks) in Parquet files; the full A/B read (`analyze_experiment`: counts and sums per arm and look, distinct
  units, latency sketches, the always-valid decision and guardrails). Target: < 3 s for 10M events.
* **PostgreSQL** — through bench/scale_postgres.py (``--postgres`` or $PROMPTLAB_BENCH_POSTGRES names a
  server; without one a throwaway server is started): ingest from 4 writer processes, per event and in frames
  (target ≥ 50,000 events/s, 0 lost), and the A/B read of ``--events`` events (target < 10 s for 10M).
* **SQLite** — the same A/B read and the monitor on ``--sqlite-events`` events: every read is an aggregate or a
  sketch, so no analysis builds a frame from raw rows; reading every raw row is timed both ways for scale
  (``sqlite3`` tuples, and the columnar ADBC reader `promptlab.production._columnar.sqlite_frame`).

Timings are wall-clock medians of ``--repeats`` runs; the header prints the machine and its load average,
since the numbers depend on both.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from promptlab.production import (  # noqa: E402
    Design,
    EventLog,
    ParquetLog,
    TrafficSpec,
    analyze_experiment,
    prompt_metrics,
    simulate_traffic,
)
from promptlab.production._columnar import sqlite_frame  # noqa: E402
from promptlab.production._eventlog import _arrow, conform  # noqa: E402
from promptlab.production._schema import COLUMN_NAMES  # noqa: E402

DESIGN = Design("sentiment-rollout", ("A", "B"), (1.0, 1.0), "A")
CHUNK = 1_000_000


def timed(fn, repeats: int = 1) -> float:
    """Median wall seconds of ``repeats`` calls."""
    return timed_cpu(fn, repeats)[0]


def timed_cpu(fn, repeats: int = 1) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds of this process, all its threads) of ``repeats`` calls. On a machine
    shared with other work the CPU time is the steadier number: wall ≥ CPU / cores when nothing else runs."""
    walls, cpus = [], []
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def chunks(events: int, chunk: int = CHUNK):
    """Simulated traffic in chunks of ``chunk`` events over the same 48 hours (seeds differ per chunk)."""
    for k, start in enumerate(range(0, events, chunk)):
        size = min(chunk, events - start)
        spec = TrafficSpec(hours=48, calls_per_hour=size / 48, users=max(20_000, size // 20))
        yield simulate_traffic(spec, seed=k)


def write_parquet_folder(folder: Path, events: int) -> int:
    """Write ``events`` simulated events as Parquet files (columnar: pandas → Arrow, no Python rows)."""
    _, schema = _arrow()
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for k, frame in enumerate(chunks(events)):
        table = pa.Table.from_pandas(conform(frame).astype({"success": "Int8", "format_ok": "Int8"}),
                                     schema=schema, preserve_index=False)
        pq.write_table(table, folder / f"events-{k:04d}.parquet")
        total += len(frame)
    return total


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cpus"


def verdict(value: float, target: float, *, below: bool = True) -> str:
    ok = value < target if below else value >= target
    return "meets" if ok else "MISSES"


def bench_duckdb(folder: Path, events: int, repeats: int) -> None:
    started = time.perf_counter()
    written = write_parquet_folder(folder, events)
    print(f"\nDuckDB/Parquet: {written:,} events written in {time.perf_counter() - started:.0f} s")
    log = ParquetLog(folder)
    report = analyze_experiment(log, DESIGN)
    looks = len(report.looks) // max(1, len(DESIGN.challengers))
    seconds, cpu = timed_cpu(lambda: analyze_experiment(log, DESIGN), repeats)
    target = 3.0 * events / 10_000_000
    print(f"  A/B read, {looks} looks      {seconds:8.2f} s   target < {target:.1f} s "
          f"({verdict(seconds, target)}); CPU {cpu:.2f} s = {cpu / os.cpu_count():.2f} s on {os.cpu_count()} idle "
          f"cores   [{load()}]")
    seconds, cpu = timed_cpu(lambda: prompt_metrics(log), repeats)
    print(f"  monitor (per version, hour) {seconds:8.2f} s   CPU {cpu:.2f} s")
    log.close()


def _scale_postgres():
    """bench/scale_postgres.py (helper "postgres"'s ingest and read benchmark) as a module, or None."""
    if not (HERE / "scale_postgres.py").exists():
        return None
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # imported by name: its writer processes (spawned) import it again
    return importlib.import_module("scale_postgres")


def bench_postgres(url: str | None, events: int, ingest_events: int) -> None:
    module = _scale_postgres()
    if module is None:
        print("\nPostgreSQL: bench/scale_postgres.py is not here; skipped")
        return
    server = None
    if url is None:
        from promptlab.errors import SetupError
        from promptlab.testing._postgres import ThrowawayPostgres

        try:
            server = ThrowawayPostgres(durable=True).start()
        except SetupError as exc:
            print(f"\nPostgreSQL: no server given and none can be started here ({exc}); skipped")
            return
        url = server.url
    try:
        print()
        for mode in ("record", "frame"):
            got = module.ingest(url, ingest_events, writers=4, mode=mode)
            rate, lost = got["events_per_s"], got["lost"]
            print(f"PostgreSQL ingest, 4 writer processes, {mode:>6}: {rate:10,.0f} events/s, lost {lost}   "
                  f"target ≥ 50,000/s, 0 lost ({verdict(rate, 50_000, below=False)}"
                  f"{'' if lost == 0 else ', LOST EVENTS'})   [{load()}]")
        started = time.perf_counter()
        try:
            data = module.load_events(url, events)
        except Exception as exc:  # a failure of the loader must not hide the other measurements
            print(f"  loading {events:,} events failed: {type(exc).__name__}: {exc}")
            return
        print(f"  {events:,} events loaded by SQL in {time.perf_counter() - started:.0f} s")
        seconds = module.ab_read(data)
        target = 10.0 * events / 10_000_000
        print(f"  A/B read of {events:,} events, 48 looks {seconds:8.2f} s   target < {target:.1f} s "
              f"({verdict(seconds, target)})   [{load()}]")
    finally:
        if server is not None:
            server.stop()


def bench_sqlite(folder: Path, events: int, repeats: int) -> None:
    log = EventLog(folder / "scale.db")
    for frame in chunks(events):
        log.append_frame(frame)
    print(f"\nSQLite: {len(log):,} events")
    ab = timed(lambda: analyze_experiment(log, DESIGN), repeats)
    metrics = timed(lambda: prompt_metrics(log), repeats)
    print(f"  A/B read (aggregates + sketches)     {ab:8.2f} s   [{load()}]")
    print(f"  monitor (aggregates + sketches)      {metrics:8.2f} s")
    sql = f"SELECT {', '.join(COLUMN_NAMES)} FROM events ORDER BY ts_ms, event_id"
    tuples = timed(lambda: log.query(sql), 1)
    print(f"  every raw row, sqlite3 tuples        {tuples:8.2f} s   (no analysis reads raw rows)")
    if sqlite_frame(log.path, "SELECT 1 AS one") is None:
        print("  every raw row, columnar (ADBC)       not installed: pip install adbc-driver-sqlite")
    else:
        columnar = timed(lambda: sqlite_frame(log.path, sql), 1)
        print(f"  every raw row, columnar (ADBC)       {columnar:8.2f} s   (_columnar.sqlite_frame)")
    log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events for DuckDB/Parquet and PostgreSQL")
    parser.add_argument("--sqlite-events", type=int, default=1_000_000, help="events for SQLite")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per timing (median)")
    parser.add_argument("--postgres", default=os.environ.get("PROMPTLAB_BENCH_POSTGRES"),
                        help="postgresql:// URL of a server to benchmark (default: start a throwaway one)")
    parser.add_argument("--postgres-ingest", type=int, default=400_000, help="events the 4 writers log")
    parser.add_argument("--skip", nargs="*", default=[], choices=["duckdb", "postgres", "sqlite"])
    args = parser.parse_args()
    import sqlite3

    import duckdb

    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"sqlite {sqlite3.sqlite_version}, duckdb {duckdb.__version__}; {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        if "duckdb" not in args.skip:
            bench_duckdb(Path(tmp) / "parquet", args.events, args.repeats)
        if "postgres" not in args.skip:
            bench_postgres(args.postgres, args.events, args.postgres_ingest)
        if "sqlite" not in args.skip:
            bench_sqlite(Path(tmp), args.sqlite_events, args.repeats)


if __name__ == "__main__":
    main()
