"""Event log: hashing, batching, append-only SQLite, Parquet export, and the shared aggregation SQL."""

from __future__ import annotations

import gc
import hashlib
import sqlite3
import threading
import time

import numpy as np
import pandas as pd
import pytest

from promptlab.errors import EventLogError
from promptlab.production._eventlog import Event, EventLog, ParquetLog, write_parquet
from promptlab.production._query import EventFilter, aggregate, aggregate_sql, latency_quantiles, mean_var
from promptlab.production._schema import COLUMN_NAMES, hash_unit, to_ms

T0 = to_ms("2025-01-06T00:00:00")


def _frame(n_a: int = 5, n_b: int = 5) -> pd.DataFrame:
    rows = []
    for i in range(n_a + n_b):
        arm = "A" if i < n_a else "B"
        rows.append({"ts_ms": T0 + i * 1000, "prompt": "p", "version": "1", "arm": arm, "experiment": "e",
                     "unit_hash": hash_unit(f"u{i % 3}"), "latency_s": 0.1 * (i + 1), "success": i % 2,
                     "format_ok": None if i == 0 else 1, "error_type": "timeout" if i == 3 else None,
                     "cost_usd": 0.001 * (i + 1), "input_tokens": 10, "output_tokens": 2, "quality": None})
    return pd.DataFrame(rows)


def test_hash_unit_is_sha256_of_a_namespaced_id():
    # reference: hashlib by hand, so the stored hash never depends on Python's per-process hash()
    expected = hashlib.sha256(b"promptlab.unit\x00\x00user-17").hexdigest()[:16]
    assert hash_unit("user-17") == expected
    assert hash_unit("user-17", salt="s") != expected
    assert len(hash_unit(12345)) == 16


def test_events_refuse_raw_unit_ids_and_bad_values():
    with pytest.raises(EventLogError, match="hash_unit"):
        Event(prompt="p", unit_hash="alice@example.com")
    with pytest.raises(EventLogError, match="latency_s=-1"):
        Event(prompt="p", latency_s=-1)
    with pytest.raises(EventLogError, match="prompt"):
        Event(prompt="")


def test_record_hashes_the_unit_and_never_stores_the_raw_id(tmp_path):
    with EventLog(tmp_path / "e.db", unit_salt="pepper") as log:
        log.record("p", unit_id="alice@example.com", success=True)
        frame = log.frame()
        assert frame["unit_hash"].iloc[0] == hash_unit("alice@example.com", "pepper")
        assert log.hash_unit("alice@example.com") == hash_unit("alice@example.com", "pepper")
    raw = (tmp_path / "e.db").read_bytes() + (tmp_path / "e.db-wal").read_bytes() \
        if (tmp_path / "e.db-wal").exists() else (tmp_path / "e.db").read_bytes()
    assert b"alice" not in raw and b"pepper" not in raw


def test_record_builds_the_same_event_as_the_constructor_and_checks_it_the_same(tmp_path):
    with EventLog(tmp_path / "e.db") as log:
        got = log.record("p", unit_id="u1", version="2", latency_s=0.5, success=True, format_ok=False)
        assert got == Event(prompt="p", unit_hash=hash_unit("u1"), version="2", latency_s=0.5, success=True,
                            format_ok=False, ts_ms=got.ts_ms)
        assert abs(got.ts_ms - time.time() * 1000) < 60_000  # stamped now when not given
        assert log.record("p", ts_ms=T0) == Event(prompt="p", ts_ms=T0)
        with pytest.raises(AttributeError):
            got.prompt = "q"  # still frozen
        for bad, match in (({"latency_s": -1}, "latency_s=-1"), ({"cost_usd": float("nan")}, "cost_usd=nan")):
            with pytest.raises(EventLogError, match=match):
                log.record("p", **bad)
        with pytest.raises(EventLogError, match="prompt"):
            log.record("")
        log.flush()
        assert len(log) == 2


def test_record_rejects_unknown_fields(tmp_path):
    with EventLog(tmp_path / "e.db") as log, pytest.raises(EventLogError, match="unknown event fields"):
        log.record("p", latency_ms=3)


def test_writes_are_batched_and_flushed_before_reads(tmp_path):
    log = EventLog(tmp_path / "e.db", batch_size=3, max_delay_s=3600)
    reader = sqlite3.connect(tmp_path / "e.db")
    count = lambda: reader.execute("SELECT COUNT(*) FROM events").fetchone()[0]  # noqa: E731
    log.record("p")
    log.record("p")
    assert count() == 0  # still buffered
    log.record("p")
    assert count() == 3  # the batch was written
    log.record("p")
    assert len(log) == 4  # reads flush first
    log.close()


def test_old_buffered_events_are_written_on_the_next_write(tmp_path):
    log = EventLog(tmp_path / "e.db", batch_size=1000, max_delay_s=0.05)
    reader = sqlite3.connect(tmp_path / "e.db")
    log.record("p")
    time.sleep(0.08)
    log.record("p")
    assert reader.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 2
    log.close()


def test_buffer_is_written_when_the_log_is_garbage_collected(tmp_path):
    log = EventLog(tmp_path / "e.db", batch_size=1000, max_delay_s=3600)
    log.record("p")
    del log
    gc.collect()
    assert sqlite3.connect(tmp_path / "e.db").execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1


def test_closed_log_refuses_writes(tmp_path):
    log = EventLog(tmp_path / "e.db")
    log.close()
    log.close()  # twice is fine
    with pytest.raises(EventLogError, match="closed") as raised:
        log.record("p")
    assert f"EventLog({str(tmp_path / 'e.db')!r})" in str(raised.value)  # names the log to open again


def test_concurrent_threads_lose_no_event(tmp_path):
    log = EventLog(tmp_path / "e.db", batch_size=37)

    def work(k: int) -> None:
        for i in range(250):
            log.record("p", arm=str(k), latency_s=i / 1000)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(log) == 2000
    assert aggregate(log, ["arm"])["n"].tolist() == [250] * 8
    log.close()


def test_log_is_append_only(tmp_path):
    with EventLog(tmp_path / "e.db") as log:
        log.record("p")
        log.flush()
    conn = sqlite3.connect(tmp_path / "e.db")
    for statement in ("UPDATE events SET prompt = 'q'", "DELETE FROM events"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(statement)


def test_wal_mode(tmp_path):
    with EventLog(tmp_path / "e.db"):
        mode = sqlite3.connect(tmp_path / "e.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_append_frame_checks_columns_and_hashes(tmp_path):
    with EventLog(tmp_path / "e.db") as log:
        with pytest.raises(EventLogError, match="unknown event columns"):
            log.append_frame(pd.DataFrame({"prompt": ["p"], "latency_ms": [1]}))
        with pytest.raises(EventLogError, match="hash_unit"):
            log.append_frame(pd.DataFrame({"prompt": ["p"], "unit_hash": ["bob"]}))
        assert log.append_frame(_frame()) == 10
        frame = log.frame()
    assert list(frame.columns) == list(COLUMN_NAMES)
    assert frame["format_ok"].isna().sum() == 1 and frame["success"].dtype == "boolean"


def test_aggregate_counts_and_sums_by_hand(tmp_path):
    with EventLog(tmp_path / "e.db") as log:
        log.append_frame(_frame())
        agg = aggregate(log, ["arm"], units=True, latency_over_s=0.35).set_index("arm")
    a = agg.loc["A"]
    # hand counts over rows 0..4: success 0,1,0,1,0; format_ok NULL,1,1,1,1; one timeout; latency .1…​.5
    assert (a.n, a.successes, a.success_n, a.format_n, a.format_failures, a.errors, a.timeouts) == (5, 2, 5, 4, 0, 1, 1)
    assert a.latency_sum == pytest.approx(1.5) and a.latency_sumsq == pytest.approx(0.55)
    assert a.latency_over == 2  # 0.4 and 0.5
    assert a.units == 3
    assert (a.tokens_n, a.input_tokens_sum, a.output_tokens_sum) == (5, 50, 10)
    assert agg.loc["B"].cost_sum == pytest.approx(0.006 + 0.007 + 0.008 + 0.009 + 0.010)


def test_aggregate_windows_use_integer_arithmetic(tmp_path):
    with EventLog(tmp_path / "e.db") as log:
        log.append_frame(_frame())
        agg = aggregate(log, [], window_s=4)
    # events at T0 + 0..9 s in 4-second windows: 4, 4, 2 (T0 is a multiple of 4 s)
    assert agg["n"].tolist() == [4, 4, 2]
    assert agg["window_ms"].tolist() == [T0, T0 + 4000, T0 + 8000]


def test_filters_and_bad_keys(tmp_path):
    with EventLog(tmp_path / "e.db") as log:
        log.append_frame(_frame())
        assert aggregate(log, where=EventFilter(arms=("B",)))["n"].tolist() == [5]
        assert aggregate(log, where=EventFilter(exclude_arms=("B",)))["n"].tolist() == [5]
        assert aggregate(log, where=EventFilter().between(T0 + 2000, T0 + 5000))["n"].tolist() == [3]
        assert aggregate(log, where=EventFilter(prompt="nope")).empty
        with pytest.raises(EventLogError, match="cannot group"):
            aggregate(log, ["user"])
    sql, params = aggregate_sql(["arm"], where=EventFilter(experiment="e"), window_s=60)
    assert "(ts_ms - ts_ms % 60000)" in sql and params == ["e"]


def test_latency_quantiles_match_numpy_and_scipy(tmp_path):
    frame = pd.DataFrame({"prompt": "p", "ts_ms": T0, "latency_s": np.arange(1, 101, dtype=float)})
    with EventLog(tmp_path / "e.db") as log:
        log.append_frame(frame)
        q = latency_quantiles(log).iloc[0]
    # np.quantile(range(1, 101), [0.5, 0.95], method='inverted_cdf') = 50, 95;
    # scipy.stats.quantile_test(range(1, 101), p=0.95).confidence_interval() = [90, 100]
    # read from DDSketch buckets: each estimate within 1% (alpha), each bound at most one bucket (γ) wider
    gamma = 1.01 / 0.99
    assert (q.p95_s, q.p50_s) == (pytest.approx(95, rel=0.01), pytest.approx(50, rel=0.01))
    assert 90 / gamma <= q.p95_low_s <= 90 and 100 <= q.p95_high_s <= 100 * gamma


def test_parquet_export_and_duckdb_give_the_same_aggregates(tmp_path):
    with EventLog(tmp_path / "e.db") as log:
        log.append_frame(_frame())
        path = log.to_parquet(tmp_path / "out" / "e.parquet", chunk_rows=3)
        expected = aggregate(log, ["arm"], units=True, window_s=5, latency_over_s=0.35)
        expected_q = latency_quantiles(log, ["arm"])
        rows = log.frame()
    pq = ParquetLog(path)
    assert len(pq) == 10
    got = aggregate(pq, ["arm"], units=True, window_s=5, latency_over_s=0.35)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    pd.testing.assert_frame_equal(latency_quantiles(pq, ["arm"]).sort_values("arm").reset_index(drop=True),
                                  expected_q.sort_values("arm").reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(pq.frame(), rows, check_dtype=False)
    folder = ParquetLog(tmp_path / "out")  # a folder of files reads the same
    assert len(folder) == 10
    pq.close()


def test_write_parquet_and_missing_parquet(tmp_path):
    path = write_parquet(_frame(), tmp_path / "f.parquet")
    assert len(ParquetLog(path)) == 10
    with pytest.raises(EventLogError, match="to_parquet"):
        ParquetLog(tmp_path / "missing.parquet")


def test_mean_var_by_hand():
    # values 1, 2, 3, 4: mean 2.5, sample variance 5/3
    assert mean_var(4, 10, 30) == (2.5, pytest.approx(5 / 3))
    assert mean_var(1, 2, 4)[1] != mean_var(1, 2, 4)[1]  # NaN with one value
    assert mean_var(0, 0, 0)[0] != mean_var(0, 0, 0)[0]


def test_repr_and_html(tmp_path):
    with EventLog(tmp_path / "e.db") as log:
        log.append_frame(_frame())
        assert "\n" not in repr(log) and "EventLog(" in repr(log)
        html = log._repr_html_()
    assert "10 events" in html and "2025-01-06" in html


def _record_in_child(log: EventLog, queue) -> None:
    try:
        log.record("p")
        queue.put("wrote")
    except EventLogError as exc:
        queue.put(str(exc))


def test_a_log_used_across_fork_refuses(tmp_path):
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork")
    ctx = multiprocessing.get_context("fork")
    log = EventLog(tmp_path / "e.db")
    log.record("p")
    log.flush()
    queue = ctx.Queue()
    child = ctx.Process(target=_record_in_child, args=(log, queue))
    child.start()
    child.join(10)
    assert "before a fork" in queue.get(timeout=5)
    log.record("p")
    assert len(log) == 2  # the parent's connection is unharmed
    log.close()


# ---- query is read-only (issue 12, item 8) ------------------------------------------------------------------
_WRITES = ["DROP TRIGGER events_no_delete", "DELETE FROM events", "UPDATE events SET prompt = 'q'",
           "INSERT INTO events (ts_ms, prompt) VALUES (1, 'x')", "DROP TABLE events", "CREATE TABLE t (x)",
           "DROP INDEX events_ts", "PRAGMA query_only = OFF", "BEGIN IMMEDIATE"]


@pytest.mark.parametrize("statement", _WRITES)
def test_query_refuses_every_write_on_sqlite_and_changes_nothing(tmp_path, statement):
    # The old code committed DROP TRIGGER and then DELETE through query() (raising TypeError afterwards).
    with EventLog(tmp_path / "e.db") as log:
        log.append_frame(_frame(20, 0))
        with pytest.raises(EventLogError, match=r"EventLog.query is read-only: .* nothing was changed"):
            log.query(statement)
        with pytest.raises(EventLogError, match="read-only"):
            log.query("DELETE FROM events")  # the sequence: after the first statement, the rows
        assert len(log) == 20
        triggers = log.query("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
        assert triggers["name"].tolist() == ["events_no_delete", "events_no_update"]
        log.record("p")  # the log itself still writes
        assert len(log) == 21


def test_query_cannot_attach_another_file_and_bad_sql_is_an_event_log_error(tmp_path):
    with EventLog(tmp_path / "e.db") as log:
        log.record("p")
        other = tmp_path / "other.db"
        with pytest.raises(EventLogError, match="read-only"):
            log.query(f"ATTACH DATABASE 'file:{other}?mode=rwc' AS other")
        assert not other.exists()
        with pytest.raises(EventLogError, match=r"failed .*syntax error.* the columns \['ts_ms'"):
            log.query("SELEC 1")
        assert log.query("SELECT COUNT(*) AS n FROM events WHERE prompt = ?", ["p"])["n"].tolist() == [1]


@pytest.mark.parametrize("statement", [
    "COPY (SELECT * FROM events WHERE false) TO '{path}' (FORMAT parquet, USE_TMP_FILE false)",
    "DROP VIEW events", "CREATE TABLE t AS SELECT * FROM events", "ATTACH '{folder}/other.duckdb' AS other",
    "SET threads = 1", "INSTALL httpfs", "SELECT 1; DROP VIEW events", "PRAGMA database_list",
])
def test_parquet_log_query_refuses_every_write_and_changes_nothing(tmp_path, statement):
    # The old code ran these: COPY ... TO the log's own file emptied it, DROP VIEW broke the log.
    path = write_parquet(_frame(), tmp_path / "f.parquet")
    before = path.read_bytes()
    log = ParquetLog(path)
    with pytest.raises(EventLogError, match=r"ParquetLog.query is read-only: .* nothing was changed"):
        log.query(statement.format(path=path, folder=tmp_path))
    assert path.read_bytes() == before and len(log) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.parquet"]
    with pytest.raises(EventLogError, match=r"failed .*syntax error"):
        log.query("SELEC 1")
    log.close()
