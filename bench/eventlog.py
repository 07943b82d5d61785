"""Benchmark: event-log ingest rate, and the time to analyse 1,000,000 events from SQLite and from Parquet.

    python bench/eventlog.py [--events 1000000] [--ingest 200000] [--repeats 3]

Ingest (into a fresh SQLite file in WAL mode, `EventLog` defaults: batches of 1,000):

* ``record``   — ``log.record(prompt=..., unit_id=..., ...)`` per call, as an application logs (builds and
                 validates an `Event`, hashes the unit id), single thread;
* ``record×4`` — the same from 4 threads sharing one log;
* ``bulk``     — ``log.append_frame(frame)``, the import path (column checks, one transaction).

Analysis of ``--events`` simulated events (`simulate_traffic`: two arms, 48 hours, diurnal volume) read three
ways, each timed end to end (median of ``--repeats``), from the SQLite file and from its Parquet export through
DuckDB (`ParquetLog`):

* ``A/B read``  — `analyze_experiment`: per-arm counts and sums per hourly look, distinct units for the SRM
                  check, the latency column for p50/p95, the always-valid decision and guardrails;
* ``metrics``   — `prompt_metrics` per version and hour (rates, means, quantiles with intervals);
* ``counts``    — one `aggregate` call per arm (the sufficient statistics alone).

The export time (SQLite → Parquet) is reported too. Numbers depend on the machine: the header prints it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from promptlab.production import (  # noqa: E402
    Design,
    EventLog,
    ParquetLog,
    TrafficSpec,
    aggregate,
    analyze_experiment,
    prompt_metrics,
    simulate_traffic,
)

DESIGN = Design("sentiment-rollout", ("A", "B"), (1.0, 1.0), "A")


def timed(fn, repeats: int = 1) -> float:
    """Median wall seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def ingest_record(folder: Path, n: int, threads: int) -> float:
    """Events per second through `EventLog.record` from ``threads`` threads."""
    log = EventLog(folder / f"record{threads}.db")
    per_thread = n // threads

    def work(k: int) -> None:
        for i in range(per_thread):
            log.record("sentiment_classifier", version="1.1.0", experiment="bench", arm="AB"[i % 2],
                       unit_id=f"user-{k}-{i % 5000}", latency_s=0.8, input_tokens=180, output_tokens=4,
                       cost_usd=0.0006, success=True, format_ok=True, model="anthropic:claude-3-5-sonnet-20241022",
                       outcome="answered")

    started = time.perf_counter()
    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    log.flush()
    elapsed = time.perf_counter() - started
    assert len(log) == per_thread * threads
    log.close()
    return per_thread * threads / elapsed


def ingest_bulk(folder: Path, frame) -> float:
    log = EventLog(folder / "bulk.db")
    elapsed = timed(lambda: log.append_frame(frame))
    log.close()
    return len(frame) / elapsed


def spec_for(events: int) -> TrafficSpec:
    return TrafficSpec(hours=48, calls_per_hour=events / 48, users=max(20_000, events // 20))


def analyses(source) -> dict:
    return {
        "A/B read": lambda: analyze_experiment(source, DESIGN),
        "metrics": lambda: prompt_metrics(source),
        "counts": lambda: aggregate(source, ["arm"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to analyse")
    parser.add_argument("--ingest", type=int, default=200_000, help="events to ingest per ingest mode")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per analysis timing (median)")
    args = parser.parse_args()
    import sqlite3

    import duckdb

    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"sqlite {sqlite3.sqlite_version}, duckdb {duckdb.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        frame = simulate_traffic(spec_for(args.events), seed=0)
        print(f"simulated {len(frame):,} events in {time.perf_counter() - started:.1f} s")

        print("\ningest (events/s)")
        print(f"  record     {ingest_record(folder, args.ingest, 1):>12,.0f}")
        print(f"  record×4   {ingest_record(folder, args.ingest, 4):>12,.0f}")
        print(f"  bulk       {ingest_bulk(folder, frame):>12,.0f}   ({len(frame):,} events in one append_frame)")

        log = EventLog(folder / "bulk.db")
        started = time.perf_counter()
        parquet_path = log.to_parquet(folder / "events.parquet")
        export_s = time.perf_counter() - started
        size_mb = parquet_path.stat().st_size / 1e6
        print(f"\nexport to Parquet: {export_s:.1f} s ({size_mb:.0f} MB; SQLite file "
              f"{(folder / 'bulk.db').stat().st_size / 1e6:.0f} MB)")

        parquet = ParquetLog(parquet_path)
        print(f"\nanalysis of {len(frame):,} events (seconds, median of {args.repeats})")
        print(f"  {'':10} {'SQLite':>8} {'DuckDB/Parquet':>15}")
        for (name, on_sqlite), on_parquet in zip(analyses(log).items(), analyses(parquet).values(), strict=True):
            print(f"  {name:10} {timed(on_sqlite, args.repeats):>8.2f} {timed(on_parquet, args.repeats):>15.2f}")
        report = analyze_experiment(parquet, DESIGN)
        print(f"\n{report!r}")
        log.close()
        parquet.close()


if __name__ == "__main__":
    main()
