"""Benchmark: production logs at scale — the targets of issue 18, printed beside the measured values.

    python bench/scale.py [--events 10000000] [--sqlite-events 1000000] [--repeats 3] [--postgres URL]

* **DuckDB/Parquet** — ``--events`` simulated events (`simulate_traffic`, two arms, 48 hours: 48 hourly
  looks) in Parquet files; the full A/B read (`analyze_experiment`: counts and sums per arm and look, distinct
  units, latency sketches, the always-valid decision and guardrails). Target: < 3 s for 10M events.
* **PostgreSQL** — when ``--postgres`` (or $PROMPTLAB_BENCH_POSTGRES) names a server and
  bench/scale_postgres.py is present: ingest from 4 writer processes (target ≥ 50,000 events/s, 0 lost) and
  the A/B read of what was ingested (target < 10 s for 10M events).
* **SQLite** — the same A/B read and the monitor on ``--sqlite-events`` events: every read is an aggregate or a
  sketch, so no analysis builds a frame from raw rows; the raw-row path (``log.frame()``) is timed beside it
  for scale.

Timings are wall-clock medians of ``--repeats`` runs; the header prints the machine and its load average,
since the numbers depend on both.
"""

from __future__ import annotations

import argparse
import importlib.util
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
from promptlab.production._eventlog import _arrow, conform  # noqa: E402

DESIGN = Design("sentiment-rollout", ("A", "B"), (1.0, 1.0), "A")
CHUNK = 1_000_000


def timed(fn, repeats: int = 1) -> float:
    """Median wall seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


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
    seconds = timed(lambda: analyze_experiment(log, DESIGN), repeats)
    target = 3.0 * events / 10_000_000
    print(f"  A/B read, {looks} looks      {seconds:8.2f} s   target < {target:.1f} s "
          f"({verdict(seconds, target)})   [{load()}]")
    print(f"  monitor (per version, hour) {timed(lambda: prompt_metrics(log), repeats):8.2f} s")
    log.close()


def bench_postgres(url: str, events: int) -> None:
    path = HERE / "scale_postgres.py"
    if not path.exists():
        print("\nPostgreSQL: bench/scale_postgres.py is not here; skipped")
        return
    spec = importlib.util.spec_from_file_location("scale_postgres", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.ingest(url, events, writers=4)
    rate, lost = result.get("events_per_s", float("nan")), result.get("lost", None)
    print(f"\nPostgreSQL: ingest from 4 writer processes {rate:12,.0f} events/s, lost {lost}   "
          f"target ≥ 50,000/s and 0 lost ({verdict(rate, 50_000, below=False)}{'' if lost == 0 else ', LOST'})"
          f"   [{load()}]")
    seconds = module.ab_read(url)
    target = 10.0 * events / 10_000_000
    print(f"  A/B read of {events:,} events  {seconds:8.2f} s   target < {target:.1f} s ({verdict(seconds, target)})")


def bench_sqlite(folder: Path, events: int, repeats: int) -> None:
    log = EventLog(folder / "scale.db")
    for frame in chunks(events):
        log.append_frame(frame)
    print(f"\nSQLite: {len(log):,} events")
    ab = timed(lambda: analyze_experiment(log, DESIGN), repeats)
    metrics = timed(lambda: prompt_metrics(log), repeats)
    raw = timed(lambda: log.frame(), 1)
    print(f"  A/B read (aggregates + sketches)   {ab:8.2f} s   [{load()}]")
    print(f"  monitor (aggregates + sketches)    {metrics:8.2f} s")
    print(f"  every raw row as a frame (for scale) {raw:6.2f} s   (no analysis reads this way)")
    log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events for DuckDB/Parquet and PostgreSQL")
    parser.add_argument("--sqlite-events", type=int, default=1_000_000, help="events for SQLite")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per timing (median)")
    parser.add_argument("--postgres", default=os.environ.get("PROMPTLAB_BENCH_POSTGRES"),
                        help="postgresql:// URL of a server to benchmark (its events table is written)")
    args = parser.parse_args()
    import sqlite3

    import duckdb

    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"sqlite {sqlite3.sqlite_version}, duckdb {duckdb.__version__}; {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        bench_duckdb(Path(tmp) / "parquet", args.events, args.repeats)
        if args.postgres:
            bench_postgres(args.postgres, args.events)
        else:
            print("\nPostgreSQL: no --postgres URL (or $PROMPTLAB_BENCH_POSTGRES); skipped")
        bench_sqlite(Path(tmp), args.sqlite_events, args.repeats)


if __name__ == "__main__":
    main()
