"""The production event log: one row per production call, append-only, SQLite (WAL) by default.

Every call an application makes through promptlab — served, failed, escalated, refused by a budget, or answered
in the shadow — becomes one `Event`. `EventLog` buffers events in memory and writes them in batches (one
transaction per batch, thread-safe), so logging costs microseconds on the request path. The file is SQLite in
WAL mode (readers never block the writer); triggers refuse UPDATE and DELETE, so the log is append-only, and
`EventLog.query` runs on a second connection that cannot write at all (read-only file, ``query_only``, an
authorizer that allows reads only), so SQL passed to it can read but never change, drop or attach anything.

Columns (`EVENT_COLUMNS`; units in the names, unknown is NULL/NA, never 0):

============== ======= =============================================================================
ts_ms          int     when the call finished, Unix time in milliseconds (UTC)
experiment     text    the A/B test, canary or shadow the call belongs to (NULL outside experiments)
prompt         text    the prompt's name
version        text    the prompt's version
arm            text    the experiment arm (``A``, ``B``, ``stable``, ``canary``, ``live``, ``shadow`` …)
unit_hash      text    `hash_unit` of the unit (user, session) id — the raw id is never stored
request_id     text    one id per application request (a live call and its shadow share it)
latency_s      real    wall time of the call, retries and fallbacks included
input_tokens   int     tokens in, as reported by the provider
output_tokens  int     tokens out
cost_usd       real    price of the call (NULL when the model is not in the price table)
success        int     1 when the call did its job (answered, in format, or the outcome you record)
format_ok      int     1/0 when the answer's format was checked, NULL when not
error_type     text    ``timeout``, ``rate_limit``, ``server`` … (NULL when the call succeeded)
quality        real    a quality score (for example a judge's 1–5), NULL when not scored
model          text    the model that actually answered
outcome        text    ``answered``, ``fallback``, ``escalated``, ``refused`` (client calls)
============== ======= =============================================================================

Analyses never read rows one by one: they aggregate counts and sums in SQL (`promptlab.production._query`),
which runs unchanged on this SQLite file, on PostgreSQL, or, through DuckDB, on a Parquet export of any size
(`ParquetLog`). ``EventLog("postgresql://…")`` gives the shared PostgreSQL log
(`promptlab.production._pglog.PostgresLog`) with the same API; what the backends share lives in `_events`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import EventLogError, MissingDependencyError
from ._columnar import sqlite_frame
from ._events import (
    Event,
    EventStore,
    _arrow,
    _arrow_table,
    _frame_rows,
    conform,
    frame_sql,
    query_error,
    read_only_error,
    write_parquet,
)
from ._pglog import PostgresLog, is_postgres_url
from ._query import EventFilter
from ._schema import COLUMN_NAMES, EVENT_COLUMNS, TABLE

__all__ = ["Event", "EventLog", "ParquetLog", "PostgresLog", "conform", "write_parquet"]


def _schema_sql() -> list[str]:
    columns = ", ".join(f"{name} {kind}" for name, kind in EVENT_COLUMNS)
    return [
        f"CREATE TABLE IF NOT EXISTS {TABLE} (event_id INTEGER PRIMARY KEY, {columns})",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_prompt_ts ON {TABLE} (prompt, ts_ms)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_experiment ON {TABLE} (experiment, arm)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_ts ON {TABLE} (ts_ms)",
        f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE} "
        "BEGIN SELECT RAISE(ABORT, 'the promptlab event log is append-only'); END",
        f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
        "BEGIN SELECT RAISE(ABORT, 'the promptlab event log is append-only'); END",
    ]


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


_READ_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                           sqlite3.SQLITE_RECURSIVE})


def _allow_reads_only(action: int, *_: Any) -> int:
    """SQLite authorizer of the query connection: reading is allowed, anything else (writes, DDL, ATTACH,
    PRAGMA, transactions) is denied before it runs."""
    return sqlite3.SQLITE_OK if action in _READ_ACTIONS else sqlite3.SQLITE_DENY


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """The connection `EventLog.query` runs on: it cannot write, three times over — the file is opened
    ``mode=ro``, ``query_only`` is on, and an authorizer denies every statement that is not a read."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=30.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA query_only=ON")
    conn.set_authorizer(_allow_reads_only)
    return conn


def _write_rows(conn: sqlite3.Connection, rows: Sequence[tuple]) -> None:
    """Insert rows in one transaction."""
    marks = ", ".join("?" * len(COLUMN_NAMES))
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(f"INSERT INTO {TABLE} ({', '.join(COLUMN_NAMES)}) VALUES ({marks})", rows)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _flush_at_exit(conn: sqlite3.Connection, reader: sqlite3.Connection, buffer: list[tuple],
                   lock: threading.Lock, pid: int) -> None:
    """Write what is still buffered when the log is garbage-collected or the interpreter exits.

    In a forked child nothing is touched: a SQLite connection must never be used (or closed, which may
    checkpoint and remove the WAL under the parent) in a process other than the one that opened it.
    """
    if os.getpid() != pid:
        return
    with lock:
        reader.close()
        if buffer:
            try:
                _write_rows(conn, list(buffer))
            except sqlite3.Error:
                return
            buffer.clear()
        conn.close()


class _Backends(type):
    """`EventLog`'s metaclass: ``EventLog("postgresql://…")`` builds a `PostgresLog` (same API, a shared
    server instead of a file), and a `PostgresLog` counts as an `EventLog` in ``isinstance``."""

    def __call__(cls, path: Any, *args: Any, **kwargs: Any) -> Any:
        if cls is EventLog and is_postgres_url(path):
            return PostgresLog(path, *args, **kwargs)
        return super().__call__(path, *args, **kwargs)

    def __instancecheck__(cls, instance: Any) -> bool:
        return super().__instancecheck__(instance) or (cls is EventLog and isinstance(instance, PostgresLog))


class EventLog(EventStore, metaclass=_Backends):
    """The embedded event log: SQLite in WAL mode, append-only, batched writes.

    ``EventLog("postgresql://user@host/db")`` opens the shared PostgreSQL log instead (`PostgresLog`: the same
    methods; many processes and hosts append at once; see its docstring for its own options).

    ``log.record(prompt="sentiment", version="2.1.0", latency_s=0.4, success=True, unit_id="user-17")``
    buffers one event; the buffer is written when it holds ``batch_size`` events, when the oldest buffered
    event is older than ``max_delay_s`` (checked on the next write), on `flush`, before every read, on `close`,
    and when the log is garbage-collected or the interpreter exits. Safe to share between threads; several
    processes may write the same file (SQLite serialises their batches) — each opening its own `EventLog` after
    any fork (a log used across a fork refuses with `EventLogError`).

    Args:
        path: the SQLite file (created with its folder if missing), or a ``postgresql://`` URL.
        batch_size: events buffered before a write.
        max_delay_s: the longest an event waits in the buffer before the next write flushes it.
        unit_salt: a secret mixed into `hash_unit` for ``unit_id`` values (never stored).
    """

    dialect = "sqlite"
    """The SQL dialect `query` speaks (the pushed-down aggregations are rendered for it)."""

    def __init__(self, path: str | Path, *, batch_size: int = 1000, max_delay_s: float = 1.0,
                 unit_salt: str = ""):
        if batch_size < 1:
            raise EventLogError(f"batch_size={batch_size!r} must be >= 1 (1 writes every event at once).")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch_size, self.max_delay_s = batch_size, max_delay_s
        self._salt = unit_salt
        self._lock = threading.Lock()
        self._buffer: list[tuple] = []
        self._oldest = 0.0
        self._conn = _connect(self.path)
        for statement in _schema_sql():
            self._conn.execute(statement)
        self._reader = _connect_readonly(self.path)
        self._pid = os.getpid()
        self._finalizer = weakref.finalize(self, _flush_at_exit, self._conn, self._reader, self._buffer, self._lock,
                                           self._pid)

    def location(self) -> str:
        """The SQLite file."""
        return str(self.path)

    # ---- writing --------------------------------------------------------------------------------------
    def extend(self, events: Iterable[Event]) -> None:
        """Buffer several events."""
        rows = [event.row() for event in events]
        with self._lock:
            self._check_open()
            if not self._buffer:
                self._oldest = time.monotonic()
            self._buffer.extend(rows)
            due = time.monotonic() - self._oldest >= self.max_delay_s
            if len(self._buffer) >= self.batch_size or due:
                self._write_locked()

    def append_frame(self, frame: pd.DataFrame) -> int:
        """Write a DataFrame of events at once (columns from `COLUMN_NAMES`; missing ones are NULL).

        The bulk path for imports and simulated traffic: values are checked by column, not per `Event`.
        Returns the number of rows written.
        """
        rows = _frame_rows(frame)
        with self._lock:
            self._check_open()
            self._write_locked()
            _write_rows(self._conn, rows)
        return len(rows)

    def flush(self) -> None:
        """Write the buffered events now."""
        with self._lock:
            self._check_open()
            self._write_locked()

    def _write_locked(self) -> None:
        if self._buffer:
            _write_rows(self._conn, self._buffer)
            self._buffer.clear()

    def close(self) -> None:
        """Flush and close the file (safe to call twice)."""
        self._finalizer()

    # ---- reading --------------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Flush, then run one read-only SQL statement on the ``events`` table and return a DataFrame.

        It runs on a connection that cannot write (`_connect_readonly`): UPDATE, DELETE, DROP, CREATE, ATTACH,
        PRAGMA … raise `EventLogError` and change nothing, as does SQL that fails (the message says why).
        """
        with self._lock:
            self._check_open()
            self._write_locked()
            try:
                cursor = self._reader.execute(sql, tuple(params))
                rows = cursor.fetchall()
            except sqlite3.Error as exc:
                raise query_error("EventLog", self.path, sql, exc) from None
            names = [d[0] for d in cursor.description or ()]
        return pd.DataFrame.from_records(rows, columns=names)

    def frame(self, where: Any = None, limit: int | None = None) -> pd.DataFrame:
        """The events as a DataFrame (``where``: a `promptlab.production._query.EventFilter`).

        Read as Arrow columns by `promptlab.production._columnar.sqlite_frame` when the ADBC SQLite driver is
        installed (no Python tuple per row: a million rows in a third of the time); else through ``sqlite3``.
        """
        sql, params = frame_sql(where, limit)
        self.flush()  # the columnar reader is another connection: it sees committed rows only
        columnar = sqlite_frame(self.path, sql, params)
        return conform(columnar if columnar is not None else self.query(sql, params))

    def to_parquet(self, path: str | Path, *, chunk_rows: int = 250_000) -> Path:
        """Export every event to one Parquet file (streamed in chunks; memory stays flat)."""
        pq, schema = _arrow()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.flush()
        reader = _connect(self.path)
        try:
            cursor = reader.execute(f"SELECT {', '.join(COLUMN_NAMES)} FROM {TABLE} ORDER BY event_id")
            with pq.ParquetWriter(path, schema) as writer:
                while rows := cursor.fetchmany(chunk_rows):
                    writer.write_table(_arrow_table(rows, schema))
        finally:
            reader.close()
        return path

    def __repr__(self) -> str:
        state = "open" if self._finalizer.alive else "closed"
        return f"EventLog({str(self.path)!r}, {state}, buffered={len(self._buffer)})"


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as exc:
        raise MissingDependencyError("reading a Parquet event log needs DuckDB: pip install 'promptlab[scale]' "
                                     "(or pip install duckdb)") from exc
    return duckdb


class ParquetLog:
    """A read-only event log in Parquet (one file, a folder or a glob), queried through DuckDB.

    It answers the same SQL as `EventLog` (the table is called ``events``), so every analysis — A/B tests,
    monitoring, alerts — runs on it unchanged, and only aggregates leave DuckDB.

    Args:
        path: a Parquet file, a folder of them, or a glob such as ``logs/*.parquet``.
        threads: DuckDB worker threads (None: DuckDB's default, all cores).
    """

    dialect = "duckdb"
    """The SQL dialect `query` speaks (the pushed-down aggregations are rendered for it)."""

    def __init__(self, path: str | Path, *, threads: int | None = None):
        self.path = Path(path)
        target = str(self.path / "*.parquet") if self.path.is_dir() else str(self.path)
        self._con = _duckdb().connect(":memory:")
        if threads:
            self._con.execute(f"SET threads = {int(threads)}")
        quoted = target.replace("'", "''")
        try:
            self._con.execute(f"CREATE VIEW {TABLE} AS SELECT * FROM read_parquet('{quoted}')")
        except Exception as exc:
            raise EventLogError(f"cannot read Parquet events at {target!r}: {exc}. Export one with "
                                "EventLog.to_parquet(path).") from None
        self._lock = threading.Lock()

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run one SELECT query on the ``events`` view and return a DataFrame.

        Anything else (COPY, which could overwrite the Parquet files, CREATE, DROP, ATTACH, SET, PRAGMA …) is
        refused with `EventLogError` before it runs: DuckDB parses the text and only a single SELECT
        statement is executed (an in-memory DuckDB connection cannot be opened ``read_only``).
        """
        duckdb = _duckdb()
        with self._lock:
            try:
                statements = self._con.extract_statements(sql)
                kinds = [statement.type.name for statement in statements]
                if kinds != ["SELECT"]:
                    why = (f"{' and '.join(kinds) or 'no'} statement{'s' if len(kinds) != 1 else ''}, not one "
                           "SELECT")
                    raise read_only_error("ParquetLog", self.path, sql, why)
                return self._con.execute(sql, list(params)).df()
            except duckdb.Error as exc:
                raise query_error("ParquetLog", self.path, sql, exc) from None

    def frame(self, where: Any = None, limit: int | None = None) -> pd.DataFrame:
        """The events as a DataFrame (``where``: a `promptlab.production._query.EventFilter`)."""

        clause, params = (where or EventFilter()).sql()
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        return conform(self.query(f"SELECT {', '.join(COLUMN_NAMES)} FROM {TABLE} WHERE {clause} "
                                  f"ORDER BY ts_ms{tail}", params))

    def __len__(self) -> int:
        return int(self.query(f"SELECT COUNT(*) AS n FROM {TABLE}")["n"].iloc[0])

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._con.close()

    def __repr__(self) -> str:
        return f"ParquetLog({str(self.path)!r})"
