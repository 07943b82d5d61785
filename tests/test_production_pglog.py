"""The PostgreSQL event log on a real server: writer processes lose nothing, a killed writer loses at most what
its bound says, the table is append-only, queries are read-only, back-pressure blocks and then says so, exit and
garbage collection flush, and the URL's password never shows.

The server is the session's throwaway cluster (`postgres_url` in tests/conftest.py); each test gets its own
schema (`pg_url`).
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promptlab.errors import EventLogError, MissingDependencyError
from promptlab.production import EventLog
from promptlab.production._pglog import PostgresLog, _redact, to_pyformat

ROOT = Path(__file__).resolve().parent.parent


def _count(url: str, where: str = "TRUE") -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM events WHERE {where}").fetchone()[0]


def _python(code: str, *args: str, **popen) -> subprocess.Popen:
    """A fresh interpreter running ``code`` on this checkout (not a fork: each writer opens its own log)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, **popen)


# ---- pure helpers ------------------------------------------------------------------------------------------------
def test_qmarks_become_pyformat_outside_literals_and_percent_is_doubled():
    assert to_pyformat("SELECT * FROM events WHERE a = ? AND b IN (?, ?)") == \
        "SELECT * FROM events WHERE a = %s AND b IN (%s, %s)"
    assert to_pyformat("SELECT 'why?', \"odd?col\", ts_ms % 60 FROM t WHERE x = ? -- really?\n") == \
        "SELECT 'why?', \"odd?col\", ts_ms %% 60 FROM t WHERE x = %s -- really?\n"
    assert to_pyformat("SELECT 'it''s ?' , $$a?$$, $q$b?%$q$ /* ? */ WHERE y = ?") == \
        "SELECT 'it''s ?' , $$a?$$, $q$b?%%$q$ /* ? */ WHERE y = %s"


def test_urls_are_redacted():
    assert _redact("postgresql://me:s3cret@db.example:5432/app?sslmode=require") == \
        "postgresql://me:***@db.example:5432/app?sslmode=require"
    assert "s3cret" not in _redact("postgresql://me@db/app?password=s3cret")
    assert _redact("postgresql://me@db/app") == "postgresql://me@db/app"


def test_unreachable_server_is_a_clear_error_without_the_password():
    with pytest.raises(EventLogError, match="cannot connect to PostgreSQL") as info:
        EventLog("postgresql://me:s3cret-pw@127.0.0.1:1/app?connect_timeout=2")
    assert "s3cret-pw" not in str(info.value) and "***" in str(info.value)


def test_missing_psycopg_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'promptlab\[postgres\]'"):
        EventLog("postgresql://me@127.0.0.1:1/app")


def test_bad_options_are_refused():
    with pytest.raises(EventLogError, match="batch_size"):
        PostgresLog("postgresql://me@127.0.0.1:1/app", batch_size=10, max_buffer=5)
    with pytest.raises(EventLogError, match="not a PostgreSQL URL"):
        PostgresLog("sqlite:///x.db")


# ---- on the server -----------------------------------------------------------------------------------------------
def test_eventlog_with_a_url_is_the_postgres_backend(pg_url):
    with EventLog(pg_url.replace("postgres@", "postgres:hunter2@"), unit_salt="pepper") as log:
        assert type(log) is PostgresLog and isinstance(log, EventLog) and log.dialect == "postgres"
        log.record("p", unit_id="alice", success=True)
        for text in (repr(log), log.location(), str(log.summary()), log._repr_html_()):
            assert "hunter2" not in text and "pepper" not in text and "alice" not in text
    assert _count(pg_url) == 1


WRITER = """
import sys
from promptlab.production import EventLog
url, k, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with EventLog(url, batch_size=700, max_delay_s=0.05) as log:
    for i in range(n):
        log.record("p", arm=f"w{k}", request_id=f"{k}-{i}", latency_s=i / n, success=i % 2, unit_id=i % 97)
"""


def test_four_writer_processes_lose_nothing(pg_url):
    writers = [_python(WRITER, pg_url, str(k), "6000") for k in range(4)]  # they also create the table at once
    assert [w.wait(timeout=180) for w in writers] == [0] * 4
    with EventLog(pg_url) as log:
        counts = log.query("SELECT arm, COUNT(*) AS n, COUNT(DISTINCT request_id) AS ids FROM events "
                           "GROUP BY arm ORDER BY arm")
    assert counts["arm"].tolist() == ["w0", "w1", "w2", "w3"]
    assert counts["n"].tolist() == counts["ids"].tolist() == [6000] * 4


CRASH = """
import sys, time
from promptlab.production import EventLog
log = EventLog(sys.argv[1], batch_size=1_000_000, max_delay_s=float(sys.argv[2]), max_buffer=1_000_000)
i = 0
while True:
    log.record("p", request_id=str(i), ts_ms=time.time_ns() // 1_000_000)
    i += 1
    if i % 50 == 0:
        print(i, flush=True)
    time.sleep(0.001)
"""


def test_a_killed_writer_loses_only_its_last_max_delay(pg_url):
    # The documented bound: a SIGKILLed writer loses only rows not yet committed, which (the server keeping
    # up) are the ones recorded in its last max_delay_s plus one COPY; what was committed is whole batches.
    max_delay_s, slack_s = 0.3, 3.0  # slack: one COPY and scheduling on a loaded 2-core machine
    writer = _python(CRASH, pg_url, str(max_delay_s), stdout=subprocess.PIPE)
    printed, started = 0, time.monotonic()
    while printed < 1500 and time.monotonic() - started < 120:  # about 2 s of logging once it has started
        printed = int(writer.stdout.readline() or printed)
    writer.send_signal(signal.SIGKILL)
    killed_ms = time.time_ns() // 1_000_000
    writer.wait(timeout=30)
    writer.stdout.close()
    with EventLog(pg_url) as log:
        got = log.query("SELECT COUNT(*) AS n, MAX(ts_ms) AS last_ms, MAX(CAST(request_id AS INTEGER)) AS top "
                        "FROM events")
    n, last_ms, top = int(got["n"].iloc[0]), int(got["last_ms"].iloc[0]), int(got["top"].iloc[0])
    assert n == top + 1  # a prefix: no holes, so nothing in the middle was lost
    assert n >= printed / 2  # it really wrote in the background while running
    assert killed_ms - last_ms <= (max_delay_s + slack_s) * 1000, (killed_ms - last_ms, n, printed)


EXITS = """
import sys
from promptlab.production import EventLog
log = EventLog(sys.argv[1], batch_size=10_000, max_delay_s=3600)
for i in range(1234):
    log.record("p", request_id=str(i))
if sys.argv[2] == "raise":
    raise RuntimeError("the app crashed, the interpreter still exits normally")
"""


@pytest.mark.parametrize("how", ["return", "raise"])
def test_interpreter_exit_flushes_the_buffer(pg_url, how):
    writer = _python(EXITS, pg_url, how, stderr=subprocess.PIPE)
    _, err = writer.communicate(timeout=120)
    assert writer.returncode == (0 if how == "return" else 1), err
    assert _count(pg_url) == 1234


def test_rows_are_written_in_the_background_and_on_garbage_collection(pg_url):
    log = EventLog(pg_url, batch_size=1000, max_delay_s=0.1)
    log.record("p")
    deadline = time.monotonic() + 10
    while _count(pg_url) == 0 and time.monotonic() < deadline:  # no further write or read is needed
        time.sleep(0.05)
    assert _count(pg_url) == 1
    slow = EventLog(pg_url, batch_size=1000, max_delay_s=3600)
    slow.record("p")
    del slow
    gc.collect()
    assert _count(pg_url) == 2
    log.close()


def test_back_pressure_blocks_then_raises_and_loses_nothing_it_accepted(pg_url):
    import psycopg

    log = EventLog(pg_url, batch_size=10, max_delay_s=0.01, max_buffer=50, block_s=0.5)
    log.record("p")
    log.flush()
    with psycopg.connect(pg_url) as blocker:
        blocker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")  # the server stops taking rows
        accepted, started = 1, time.monotonic()
        with pytest.raises(EventLogError, match="not keeping up"):
            for _ in range(500):
                log.record("p")
                accepted += 1
        assert 50 <= accepted <= 61 and time.monotonic() - started >= 0.5  # it blocked before giving up
        blocker.rollback()  # the server is back
    log.flush()
    assert len(log) == accepted
    log.close()


def test_the_writer_reconnects_when_its_connection_is_killed(pg_url):
    import psycopg

    with EventLog(pg_url, batch_size=10, max_delay_s=0.01) as log:
        log.record("p")
        log.flush()
        with psycopg.connect(pg_url, autocommit=True) as admin:  # a server restart or a failover, for the writer
            admin.execute("SELECT pg_terminate_backend(%s)", [log._writer.conn.info.backend_pid])
        for _ in range(25):
            log.record("p")
        log.flush()  # retried on a new connection
        assert len(log) == 26


def test_unstorable_events_are_reported_and_do_not_block_the_others(pg_url):
    with EventLog(pg_url, batch_size=100, max_delay_s=3600) as log:
        log.record("p", request_id="ok-1")
        log.record("p", request_id="nul \x00 inside")  # PostgreSQL text cannot hold NUL
        log.record("p", input_tokens=2 ** 70)  # out of BIGINT's range
        log.record("p", request_id="ok-2")
        with pytest.raises(EventLogError, match="2 event"):
            log.flush()
        log.record("p", request_id="ok-3")
        log.flush()  # reported once
        assert sorted(log.frame()["request_id"]) == ["ok-1", "ok-2", "ok-3"]


def test_the_table_is_append_only(pg_url):
    import psycopg

    with EventLog(pg_url) as log:
        log.record("p")
    for statement in ("UPDATE events SET prompt = 'q'", "DELETE FROM events", "TRUNCATE events"):
        with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.Error, match="append-only"):
            conn.execute(statement)
    assert _count(pg_url) == 1


def test_query_cannot_be_talked_out_of_read_only(pg_url):
    with EventLog(pg_url) as log:
        log.record("p")
        log.query("SELECT set_config('default_transaction_read_only', 'off', false) AS x")
        log.query("COMMIT")
        for statement in ("INSERT INTO events (ts_ms, prompt) VALUES (1, 'x')",
                          "DO $$ BEGIN INSERT INTO events (ts_ms, prompt) VALUES (1, 'x'); END $$",
                          "WITH gone AS (DELETE FROM events RETURNING 1) SELECT COUNT(*) FROM gone",
                          "SELECT 1; INSERT INTO events (ts_ms, prompt) VALUES (1, 'x')"):
            with pytest.raises(EventLogError):
                log.query(statement)
        assert len(log) == 1
    assert _count(pg_url) == 1


def test_time_windows_are_read_through_the_brin_index(pg_url):
    import psycopg

    with EventLog(pg_url) as log:
        log.append_frame(pd.DataFrame({"prompt": "p", "ts_ms": 1_700_000_000_000 + np.arange(60_000) * 1000}))
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("ANALYZE events")
        plan = "\n".join(log.query("EXPLAIN SELECT COUNT(*) FROM events WHERE ts_ms >= ? AND ts_ms < ?",
                                   [1_700_000_000_000, 1_700_000_600_000]).iloc[:, 0])
    assert "events_ts_brin" in plan and "Bitmap Index Scan" in plan


def test_a_log_used_across_fork_refuses(pg_url):
    log = EventLog(pg_url)
    pid = os.fork()
    if pid == 0:  # the child: the parent's log must refuse, and the child's own log works
        code = 1
        try:
            log.record("p")
        except EventLogError as exc:
            code = 0 if "fork" in str(exc) else 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    log.record("p")
    assert len(log) == 1
    log.close()


def test_analysis_reads_run_with_their_own_settings_for_that_read_only(pg_url):
    import psycopg

    from promptlab.production._pglog import READ_SETTINGS

    with psycopg.connect(pg_url) as conn:
        server_default = conn.execute("SHOW work_mem").fetchone()[0]
    assert server_default != READ_SETTINGS["work_mem"]  # else this test could not tell them apart
    show = "SELECT current_setting('work_mem') AS w"
    with EventLog(pg_url) as log:
        assert log.query(show)["w"].iloc[0] == READ_SETTINGS["work_mem"]
        # set for the read's transaction only: rolled back with it, the session keeps the server's value
        assert log._reader.execute("SHOW work_mem").fetchone()[0] == server_default
        log._reader.rollback()
    with EventLog(pg_url, read_settings={"work_mem": "32MB"}) as log:
        assert log.query(show)["w"].iloc[0] == "32MB"
    with EventLog(pg_url, read_settings={"work_mem": None}) as log:
        assert log.query(show)["w"].iloc[0] == server_default
    with EventLog(pg_url, read_settings={"work_mem": "lots"}) as log, \
            pytest.raises(EventLogError, match='invalid value for parameter "work_mem"'):
        log.query(show)
    with pytest.raises(EventLogError, match="not PostgreSQL settings"):
        EventLog(pg_url, read_settings={"work_mem; DROP TABLE events": "1MB"})
