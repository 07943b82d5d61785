"""PostgreSQL as a shared event log: `PostgresLog`, what ``EventLog("postgresql://…")`` gives.

Many processes on many hosts append to one ``events`` table (the columns of `promptlab.production._schema`:
``REAL`` as ``float8``, ``ts_ms`` and token counts as ``int8`` like SQLite's 64-bit integers, the 0/1 flags as
``int2``) and every analysis reads it with the same SQL as the SQLite and DuckDB logs. How it holds up:

* **Writes never wait for the server on the request path.** `record`/`append`/`extend` put rows in a buffer;
  a background thread writes them with binary ``COPY … FROM STDIN`` (one statement, one transaction per
  batch) when ``batch_size`` rows are waiting or the oldest has waited ``max_delay_s``. A row the server
  refuses (a NUL character in a text, a number out of range) is counted and reported by the next `flush`;
  it never blocks the rows around it.
* **Back-pressure.** At most ``max_buffer`` rows are pending (buffered or being written). When the server
  falls behind or is unreachable, `extend` blocks until there is room, and after ``block_s`` seconds raises
  `EventLogError` (the application decides whether to drop or retry); rows are never dropped silently.
* **What a crash can lose** (tested by killing a writer process with SIGKILL): only rows not yet committed —
  never more than ``max_buffer`` rows, and, while the server keeps up, only rows recorded in the last
  ``max_delay_s`` seconds plus the time of one ``COPY``. Committed rows are whole batches (a batch is one
  transaction, so no torn rows; `append_frame` returns only once its rows are committed). `flush`, `close`,
  the context manager's exit, garbage collection and a normal interpreter exit (``atexit``, also after an
  unhandled exception) write everything buffered; a process killed by SIGKILL or by an unhandled SIGTERM runs
  no exit code, so install a SIGTERM handler that calls ``sys.exit`` in servers that must lose nothing on
  shutdown.
* **Append-only.** Triggers refuse UPDATE, DELETE and TRUNCATE on the table.
* **Read-only queries.** `query` runs one statement (the extended protocol refuses several) in a ``READ
  ONLY`` transaction on its own connection and rolls it back, so SQL passed to it cannot write.
* **Settings for analysis reads** (`READ_SETTINGS`, overridable with ``read_settings=``). An analysis groups
  millions of rows into a few hundred thousand groups at most (units × arms for the sample-ratio looks).
  PostgreSQL's default ``work_mem`` of 4 MB makes those hash aggregates spill to disk or the planner sort
  instead; `query` raises it for its own transaction only (``set_config(…, is_local => true)``: rolled back
  with the transaction, no other session affected). Measured on 2M events and 200,000 units: the first-seen
  units query took 1.75 s with the default (an external sort, 24 MB on disk per worker), 0.78 s in memory.
* **Time-window reads.** A BRIN index on ``ts_ms``: events arrive in time order, so block ranges map to time
  ranges and a window reads only its blocks; it is a few kB per million rows and costs COPY nothing. B-trees
  are left out on purpose: measured here, B-trees on ``(experiment, arm, ts_ms)`` and ``(prompt, ts_ms)`` and a
  primary key on ``event_id`` (an identity column, unique by construction) cut COPY from about 98k to 36k
  rows/s, and the analyses read whole experiments or windows, where a scan of the window wins anyway. Add a
  B-tree yourself if you read narrow slices of a huge table by prompt or experiment.

The URL's password never appears in `repr`, `summary` or error messages (`_redact`). psycopg 3 is an optional
dependency (``pip install "psycopg[binary]"``), imported when a PostgreSQL log is opened.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd

from ..errors import EventLogError, MissingDependencyError
from ._events import Event, EventStore, _arrow, _arrow_table, _frame_rows, query_error, read_only_error
from ._schema import COLUMN_NAMES, EVENT_COLUMNS, TABLE

_LOG = logging.getLogger("promptlab.production")
_SCHEMES = ("postgresql://", "postgres://")
# PostgreSQL types of the columns: 64-bit integers like SQLite's (token counts, Unix ms), 0/1 flags as smallint
_PG_TYPES = {"ts_ms": "int8", "input_tokens": "int8", "output_tokens": "int8", "success": "int2",
             "format_ok": "int2", **{name: "float8" for name, kind in EVENT_COLUMNS if kind.startswith("REAL")}}
_COPY_TYPES = [_PG_TYPES.get(name, "text") for name in COLUMN_NAMES]
# binary COPY: psycopg's C dumpers pack each value (a third of the client CPU of text COPY, measured)
_COPY_SQL = f"COPY {TABLE} ({', '.join(COLUMN_NAMES)}) FROM STDIN (FORMAT BINARY)"
READ_SETTINGS: dict[str, str] = {"work_mem": "128MB"}
"""Server settings `PostgresLog.query` applies to its own read transaction (see the module docstring). A hash
aggregate may use ``work_mem`` × ``hash_mem_multiplier`` (2 by default): 256 MB, about a million groups, before
it spills (and it still works when it does). Pass ``read_settings={"work_mem": "32MB"}`` to use less, or
``{"work_mem": None}`` to keep the server's own value."""


def is_postgres_url(value: Any) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(value, str) and value.startswith(_SCHEMES)


def _redact(url: str) -> str:
    """The URL with its password (in the authority or a ``password=`` parameter) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    query = [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*/=-"), parts.fragment))


def _scrub(text: str, url: str) -> str:
    """An error text with the URL's password removed (psycopg may echo a malformed connection string)."""
    secrets = [urlsplit(url).password or ""]
    secrets += [v for k, v in parse_qsl(urlsplit(url).query) if k.lower() == "password"]
    for secret in filter(None, secrets):
        text = text.replace(secret, "***")
    return text.replace(url, _redact(url))


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise MissingDependencyError("a PostgreSQL event log needs psycopg 3: pip install 'promptlab[postgres]'") \
            from exc
    return psycopg


def _connect(url: str, *, read_only: bool = False) -> Any:
    """A psycopg connection: the writer's autocommits (a COPY is its own transaction); the reader's begins every
    statement ``READ ONLY`` and loads NUMERIC values as floats (as SQLite and DuckDB return them)."""
    psycopg = _psycopg()
    try:
        conn = psycopg.connect(url, autocommit=not read_only, connect_timeout=30)
    except psycopg.Error as exc:
        raise EventLogError(f"cannot connect to PostgreSQL at {_redact(url)!r}: {_scrub(str(exc).strip(), url)}. "
                            "Check the URL (postgresql://user:password@host:port/database) and that the server "
                            "is running.") from None
    if read_only:
        conn.read_only = True
        conn.adapters.register_loader("numeric", _numeric_as_float())
    return conn


@functools.cache
def _numeric_as_float() -> type:
    """A loader of NUMERIC results (binary format) as float: SUM of a BIGINT is NUMERIC in PostgreSQL, an
    integer or float in SQLite and DuckDB, and the analyses expect numbers, not `decimal.Decimal`."""
    try:
        from psycopg.types.numeric import NumericBinaryLoader
    except ImportError as exc:  # only reached after `_psycopg` found the driver; a broken install still names it
        raise MissingDependencyError("a PostgreSQL event log needs psycopg 3: pip install 'promptlab[postgres]'") \
            from exc

    class FloatNumeric(NumericBinaryLoader):
        def load(self, data: Any) -> float:
            return float(super().load(data))

    return FloatNumeric


# ---- schema --------------------------------------------------------------------------------------------------
def _column_sql() -> str:
    return ", ".join(f"{name} {pg}{' NOT NULL' if 'NOT NULL' in kind else ''}"
                     for (name, kind), pg in zip(EVENT_COLUMNS, _COPY_TYPES, strict=True))


def _schema_sql() -> list[str]:
    """The table, its indexes and the append-only triggers (run once, under an advisory lock)."""
    refuse = f"{TABLE}_append_only"
    return [
        f"CREATE TABLE {TABLE} (event_id BIGINT GENERATED ALWAYS AS IDENTITY, {_column_sql()})",
        f"CREATE INDEX {TABLE}_ts_brin ON {TABLE} USING brin (ts_ms)",
        f"CREATE OR REPLACE FUNCTION {refuse}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'the promptlab event log is append-only'; END $$",
        f"CREATE TRIGGER {TABLE}_no_change BEFORE UPDATE OR DELETE ON {TABLE} FOR EACH ROW "
        f"EXECUTE FUNCTION {refuse}()",
        f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} FOR EACH STATEMENT "
        f"EXECUTE FUNCTION {refuse}()",
    ]


def _ensure_schema(conn: Any) -> None:
    """Create the table once; writers starting together serialise on an advisory lock (per schema)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.promptlab.events'))")
        if conn.execute(f"SELECT to_regclass('{TABLE}')").fetchone()[0] is None:
            for statement in _schema_sql():
                conn.execute(statement)


# ---- SQL with ? parameters -----------------------------------------------------------------------------------
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|(\$[A-Za-z_0-9]*\$).*?\1|[?%]",
                     re.DOTALL)


def to_pyformat(sql: str) -> str:
    """SQL with ``?`` parameters as psycopg's ``%s`` — ``?`` inside string literals, quoted names, comments and
    dollar quotes is left alone — and every literal ``%`` doubled (psycopg reads ``%`` everywhere)."""

    def swap(match: re.Match) -> str:
        text = match.group(0)
        return "%s" if text == "?" else text.replace("%", "%%")

    return _TOKENS.sub(swap, sql)


def _read_settings(overrides: Mapping[str, str | None] | None) -> dict[str, str]:
    """`READ_SETTINGS` with the caller's overrides (a None value drops a setting); names are checked here, values
    by the server when the first query runs."""
    settings: dict[str, str | None] = {**READ_SETTINGS, **dict(overrides or {})}
    bad = [name for name in settings if not re.fullmatch(r"[a-z_][a-z0-9_.]*", str(name))]
    if bad:
        raise EventLogError(f"read_settings names {bad!r} are not PostgreSQL settings; use names like 'work_mem'.")
    return {name: str(value) for name, value in settings.items() if value is not None}


# ---- the background writer -----------------------------------------------------------------------------------
class _Writer:
    """The buffer and the thread that COPYs it to the server (kept apart from `PostgresLog` so that garbage
    collection of the log can still flush through it)."""

    def __init__(self, url: str, batch_size: int, max_delay_s: float, max_buffer: int, block_s: float):
        self.url, self.batch_size, self.max_delay_s = url, batch_size, max_delay_s
        self.max_buffer, self.block_s = max_buffer, block_s
        self.cond = threading.Condition()
        self.buffer: list[tuple] = []
        self.oldest = 0.0
        self.inflight = 0
        self.accepted = self.written = 0
        self.flush_to = 0
        self.error: str | None = None
        self.rejected, self.reported = 0, 0  # rows the server refused; how many of them flush has raised about
        self.problem = ""
        self.closing = False
        self.conn = _connect(url)
        _ensure_schema(self.conn)
        self.thread = threading.Thread(target=self._run, name="promptlab-pglog-writer", daemon=True)
        self.thread.start()

    # -- called by the application's threads
    def put(self, rows: list[tuple], *, bounded: bool = True) -> int:
        """Buffer rows (waiting for room when ``bounded``); returns the count to wait for to see them written."""
        with self.cond:
            if bounded and self._full(len(rows)):  # the clock is read only when there is no room
                self._wait_for_room(len(rows))
            first = not self.buffer
            if first:
                self.oldest = time.monotonic()
            self.buffer.extend(rows)
            self.accepted += len(rows)
            if first or len(self.buffer) >= self.batch_size:  # the writer starts its max_delay_s clock, or writes
                self.cond.notify_all()
            return self.accepted

    def _wait_for_room(self, adding: int) -> None:
        """Wait (holding ``cond``) until ``adding`` rows fit; after ``block_s`` raise `EventLogError`."""
        deadline = time.monotonic() + self.block_s
        while self._full(adding):
            left = deadline - time.monotonic()
            if left <= 0:
                raise EventLogError(
                    f"the PostgreSQL event log at {_redact(self.url)!r} is not keeping up: "
                    f"{len(self.buffer) + self.inflight} events are waiting (max_buffer={self.max_buffer}) "
                    f"after {self.block_s:g} s{self._why()}; these {adding} events were not logged. "
                    "Check the server, or raise max_buffer / block_s.")
            self.cond.wait(left)

    def _full(self, adding: int) -> bool:
        """No room for ``adding`` more rows (a batch bigger than max_buffer still goes in when nothing waits)."""
        pending = len(self.buffer) + self.inflight
        return pending > 0 and pending + adding > self.max_buffer

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every row buffered so far is committed; after ``timeout_s`` (default ``block_s``) of
        failed retries raise `EventLogError` (the rows stay buffered and are still retried)."""
        timeout_s = self.block_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        with self.cond:
            target = self.accepted
            self.flush_to = max(self.flush_to, target)
            self.cond.notify_all()
            while self.written < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self.thread.is_alive():
                    raise EventLogError(f"{target - self.written} events were not written to PostgreSQL at "
                                        f"{_redact(self.url)!r} within {timeout_s:g} s{self._why()}; they stay "
                                        "buffered and are retried. Check the server and call flush() again.")
                self.cond.wait(min(left, 0.5))
            if self.rejected > self.reported:
                self.reported = self.rejected
                raise EventLogError(f"PostgreSQL refused events at {_redact(self.url)!r}: {self.problem}; every "
                                    "other event was stored. Log text without NUL characters and numbers in "
                                    "range.")

    def _why(self) -> str:
        return f" (last error: {self.error})" if self.error else ""

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is buffered (waiting at most ``timeout_s``), stop the thread, close the connection."""
        try:
            self.flush(timeout_s)
        except EventLogError as exc:
            _LOG.error("promptlab event log: %s Those events are lost.", exc)
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.thread.join(timeout_s)
        self.conn.close()

    # -- the writer thread
    def _due(self) -> float | None:
        """0 when the buffer should be written now, else seconds until it is (None: nothing to write)."""
        if not self.buffer:
            return None
        if len(self.buffer) >= self.batch_size or self.flush_to > self.written or self.closing:
            return 0.0
        return max(0.0, self.max_delay_s - (time.monotonic() - self.oldest))

    def _run(self) -> None:
        failures = 0
        while True:
            with self.cond:
                while (wait := self._due()) != 0.0:
                    if self.closing:
                        return
                    self.cond.wait(wait)
                rows, self.buffer = self.buffer, []
                self.inflight, taken_at = len(rows), self.oldest
            try:
                rejected = self._copy(rows)
            except Exception as exc:  # noqa: BLE001 - the server or the network failed: keep the rows, retry
                failures += 1
                with self.cond:
                    self.buffer[:0] = rows  # back in front, in order, retried
                    self.inflight, self.oldest = 0, taken_at
                    self.error = _scrub(str(exc).strip() or type(exc).__name__, self.url)
                    self.cond.notify_all()
                    if self.closing and failures >= 3:
                        return
                time.sleep(min(2.0, 0.05 * 2 ** failures))
                continue
            failures = 0
            with self.cond:
                self.written += len(rows)
                self.inflight, self.error = 0, None
                self.rejected += rejected
                self.cond.notify_all()

    def _copy(self, rows: list[tuple]) -> int:
        """COPY the rows in one transaction; returns how many were rejected as unstorable.

        A row the server or the dumpers refuse (a NUL character in a text, a number out of range, a value of the
        wrong type) must not block the log forever: the batch is then written row by row, the refused rows are
        counted and reported (`flush` raises once, the log records the reason), the others are stored.
        """
        psycopg = _psycopg()
        if self.conn.closed or self.conn.broken:
            self.conn = _connect(self.url)
        try:
            self._copy_batch(rows)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise
        except (psycopg.Error, TypeError, ValueError, OverflowError) as exc:
            if self.conn.broken:
                raise
            bad = 0
            for row in rows:
                try:
                    self._copy_batch([row])
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    raise
                except (psycopg.Error, TypeError, ValueError, OverflowError):
                    bad += 1
            reason = f"{bad} event(s) could not be stored ({type(exc).__name__}: {str(exc).strip()[:200]})"
            self.problem = _scrub(reason, self.url)
            _LOG.error("promptlab event log %s: %s", _redact(self.url), self.problem)
            return bad
        return 0

    def _copy_batch(self, rows: list[tuple]) -> None:
        with self.conn.cursor() as cur, cur.copy(_COPY_SQL) as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                copy.write_row(row)


def _close_at_exit(writer: _Writer, reader: Any, pid: int) -> None:
    """Flush and close when the log is closed, garbage-collected, or the interpreter exits (not in a fork)."""
    if os.getpid() != pid:
        return
    writer.close()
    reader.close()


class PostgresLog(EventStore):
    """The shared event log on PostgreSQL: what ``EventLog("postgresql://…")`` returns, with the same methods.

    Each process (after any fork) opens its own log; all of them append to the same table. See the module
    docstring for the writer thread, back-pressure, what a crash can lose, and the read-only queries.

    Args:
        url: ``postgresql://user:password@host:port/database`` (psycopg's URL; ``?options=-csearch_path%3Dx``
            puts the table in schema ``x``).
        batch_size: rows that trigger a write before ``max_delay_s`` has passed.
        max_delay_s: the longest a row waits in the buffer while the server keeps up.
        max_buffer: the most rows waiting (buffered or being written); more blocks the caller.
        block_s: how long a caller waits for room before `EventLogError`.
        unit_salt: a secret mixed into `hash_unit` for ``unit_id`` values (never stored).
        read_settings: server settings for `query`'s transactions, over `READ_SETTINGS` (None drops one).
    """

    dialect = "postgres"
    """The SQL dialect `query` speaks (the pushed-down aggregations are rendered for it)."""

    def __init__(self, url: str, *, batch_size: int = 5000, max_delay_s: float = 0.5, max_buffer: int = 200_000,
                 block_s: float = 30.0, unit_salt: str = "", read_settings: Mapping[str, str | None] | None = None):
        if not is_postgres_url(url):
            raise EventLogError(f"{url!r} is not a PostgreSQL URL; use postgresql://user@host:port/database.")
        if batch_size < 1 or max_buffer < batch_size:
            raise EventLogError(f"need 1 <= batch_size <= max_buffer; got batch_size={batch_size!r}, "
                                f"max_buffer={max_buffer!r}.")
        self.url = _redact(url)
        self._salt = unit_salt
        self._settings = _read_settings(read_settings)
        self._lock = threading.Lock()
        self._writer = _Writer(url, batch_size, max_delay_s, max_buffer, block_s)
        try:
            self._reader = _connect(url, read_only=True)
        except EventLogError:
            self._writer.close()
            raise
        self._pid = os.getpid()
        self._finalizer = weakref.finalize(self, _close_at_exit, self._writer, self._reader, self._pid)

    def location(self) -> str:
        """The server and database (password removed)."""
        return self.url

    # ---- writing --------------------------------------------------------------------------------------
    def extend(self, events: Iterable[Event]) -> None:
        """Buffer several events (blocks while ``max_buffer`` rows are already waiting)."""
        rows = [event.row() for event in events]
        self._check_open()
        self._writer.put(rows)

    def append(self, event: Event) -> None:
        """Buffer one event (blocks while ``max_buffer`` rows are already waiting): `extend` without the
        iteration, since `record` calls it once per logged call."""
        row = event.row()
        self._check_open()
        self._writer.put([row])

    def append_frame(self, frame: pd.DataFrame) -> int:
        """Write a DataFrame of events now (columns from `COLUMN_NAMES`; missing ones are NULL); returns the
        number of rows. Checked by column, like the SQLite log; not bounded by ``max_buffer``."""
        rows = _frame_rows(frame)
        self._check_open()
        self._writer.put(rows, bounded=False)
        self._writer.flush()
        return len(rows)

    def flush(self) -> None:
        """Wait until everything buffered so far is committed."""
        self._check_open()
        self._writer.flush()

    def close(self) -> None:
        """Flush and close both connections (safe to call twice)."""
        self._finalizer()

    # ---- reading --------------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Flush, then run one read-only statement (``?`` parameters) and return a DataFrame.

        The statement runs alone in a ``READ ONLY`` transaction that is rolled back: writes, DDL and several
        statements at once raise `EventLogError` and change nothing.
        """
        self.flush()
        psycopg = _psycopg()
        with self._lock:
            try:
                with self._reader.cursor() as cur:
                    self._apply_settings(cur)
                    # binary=True forces the extended protocol, which runs exactly one statement
                    cur.execute(to_pyformat(sql), tuple(params), binary=True)
                    names = [d.name for d in cur.description or ()]
                    rows = cur.fetchall() if cur.description else []
            except psycopg.Error as exc:
                self._reader.rollback()
                raise self._error(sql, exc) from None
            self._reader.rollback()
        return pd.DataFrame.from_records(rows, columns=names)

    def _apply_settings(self, cur: Any) -> None:
        """Apply the read settings to the transaction just begun (one round trip; undone by its rollback)."""
        if self._settings:
            calls = ", ".join("set_config(%s, %s, true)" for _ in self._settings)
            cur.execute(f"SELECT {calls}", [v for pair in self._settings.items() for v in pair])

    def _error(self, sql: str, exc: Exception) -> EventLogError:
        state = getattr(exc, "sqlstate", None) or ""
        if state in {"25006", "42P14"} or "multiple commands" in str(exc):  # read-only txn; several statements
            return read_only_error("PostgresLog", self.url, sql, str(exc).strip())
        return query_error("PostgresLog", self.url, sql, exc)

    def to_parquet(self, path: str | Path, *, chunk_rows: int = 250_000) -> Path:
        """Export every event to one Parquet file (a server-side cursor streams it; memory stays flat)."""
        pq, schema = _arrow()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.flush()
        with self._lock:
            try:
                with self._reader.cursor(name="promptlab_export") as cur:
                    cur.execute(f"SELECT {', '.join(COLUMN_NAMES)} FROM {TABLE} ORDER BY event_id")
                    with pq.ParquetWriter(path, schema) as writer:
                        while rows := cur.fetchmany(chunk_rows):
                            writer.write_table(_arrow_table(rows, schema))
            finally:
                self._reader.rollback()
        return path

    def __repr__(self) -> str:
        state = "open" if self._finalizer.alive else "closed"
        return f"PostgresLog({self.url!r}, {state}, buffered={len(self._writer.buffer)})"
