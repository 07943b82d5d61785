"""What every event log shares, whatever stores it: the `Event` record, its rows and frames, the Arrow schema of
its Parquet export, the error messages of refused or failed queries, and `EventStore`, the API the SQLite
(`promptlab.production._eventlog.EventLog`) and PostgreSQL (`promptlab.production._pglog.PostgresLog`) logs
have in common (record, append, frame, len, summary, context manager) on top of their own ``extend``, ``flush``,
``query`` and ``close``.

Below both backends, so neither imports the other for these.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterable, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import EventLogError, MissingDependencyError
from ._query import EventFilter
from ._schema import (
    _HASH_RE,
    _INT_COLUMNS,
    _REAL_COLUMNS,
    COLUMN_NAMES,
    EVENT_COLUMNS,
    TABLE,
    hash_unit,
    now_ms,
)


@dataclass(frozen=True)
class Event:
    """One production call, as stored (see the module docstring for each column's meaning).

    Build it with keywords; ``unit_hash`` must already be hashed (`hash_unit`) — `EventLog.record` does that
    for you from a raw ``unit_id``.
    """

    prompt: str
    version: str | None = None
    ts_ms: int = field(default_factory=now_ms)
    experiment: str | None = None
    arm: str | None = None
    unit_hash: str | None = None
    request_id: str | None = None
    latency_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    success: bool | None = None
    format_ok: bool | None = None
    error_type: str | None = None
    quality: float | None = None
    model: str | None = None
    outcome: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or not self.prompt:
            raise EventLogError(f"an event needs the prompt's name; got prompt={self.prompt!r}.")
        if self.unit_hash is not None and not _HASH_RE.match(str(self.unit_hash)):
            raise EventLogError("unit_hash must be the output of hash_unit (16 hex digits), not a raw id; "
                                "pass unit_id= to EventLog.record and it is hashed for you.")
        for name in ("latency_s", "input_tokens", "output_tokens", "cost_usd"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise EventLogError(f"{name}={value!r} must be >= 0 or None (unknown).")

    @classmethod
    def _of(cls, values: dict[str, Any]) -> Event:
        """The event of ``values`` (known field names, ``prompt`` among them), checked like the constructor's.

        `EventStore.record`'s fast path, on the request path: a frozen dataclass's ``__init__`` sets each of the
        17 fields with its own ``object.__setattr__`` call (3.9 µs per event measured); this fills the instance
        dict in one update (what ``__init__`` ends up with) and runs the same `__post_init__` checks.
        """
        event = object.__new__(cls)
        state = event.__dict__
        state.update(_DEFAULTS)
        state.update(values)
        if "ts_ms" not in values:
            state["ts_ms"] = now_ms()
        event.__post_init__()
        return event

    def row(self) -> tuple:
        """The values in `COLUMN_NAMES` order, booleans as 0/1."""
        # one C-level attrgetter call: this runs once per logged call, on the request path
        values = list(_ROW(self))
        for i in _FLAG_AT:
            values[i] = _as_int_flag(values[i])
        return tuple(values)


_EVENT_FIELDS = frozenset(f.name for f in fields(Event))
_DEFAULTS = {f.name: f.default for f in fields(Event) if f.default is not MISSING}
_ROW = operator.attrgetter(*COLUMN_NAMES)
_FLAG_AT = tuple(COLUMN_NAMES.index(name) for name in ("success", "format_ok"))


def _as_int_flag(value: Any) -> int | None:
    return None if value is None else int(bool(value))



def _shown(sql: str) -> str:
    return sql if len(sql) <= 200 else sql[:200] + "…"


def read_only_error(owner: str, path: Path | str, sql: str, why: str) -> EventLogError:
    """The `EventLogError` of a statement refused because it would write."""
    return EventLogError(f"{owner}.query is read-only: {_shown(sql)!r} tries to change the log {str(path)!r} "
                         f"({why}); nothing was changed. Run one SELECT query at a time here; write events with "
                         "EventLog.record, append or append_frame (the log is append-only).")


def query_error(owner: str, path: Path | str, sql: str, exc: Exception) -> EventLogError:
    """The `EventLogError` of a failed query: refused writes are named as such."""
    text = str(exc).strip()
    if "not authorized" in text or "readonly" in text or "read-only" in text:
        return read_only_error(owner, path, sql, text)
    return EventLogError(f"the query {_shown(sql)!r} failed on {str(path)!r}: {text}. The table is `events` "
                         f"with the columns {list(COLUMN_NAMES)!r}.")


class EventStore:
    """The writing and reading API every appendable event log shares; a backend supplies `extend`, `flush`,
    `query`, `close` and `location` (the log's location as shown to people — never a password)."""

    dialect = "sqlite"
    """The SQL dialect `query` speaks (the pushed-down aggregations are rendered for it)."""
    _salt = ""
    _pid = 0  # the process that opened the log (a backend sets it, with its ``_finalizer``, when it opens)
    _finalizer: Any = None

    def _check_open(self) -> None:
        """Refuse a closed log, and a log opened in another process (before a fork): its connections are not
        this process's to use."""
        if self._finalizer.alive and os.getpid() == self._pid:  # every write asks: the check is kept this cheap
            return
        where = self.location()
        if not self._finalizer.alive:
            raise EventLogError(f"the event log {where!r} is closed; open a new EventLog({where!r}).")
        raise EventLogError(f"the event log {where!r} was opened in process {self._pid!r}, before a fork; open an "
                            f"EventLog({where!r}) in each process (after forking) instead.")

    def location(self) -> str:  # pragma: no cover - every backend overrides it
        """Where the events live, safe to print."""
        raise NotImplementedError

    def extend(self, events: Iterable[Event]) -> None:  # pragma: no cover - every backend overrides it
        """Buffer several events."""
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:  # pragma: no cover - overridden
        """Run one read-only statement with ``?`` parameters."""
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - every backend overrides it
        """Flush and close."""
        raise NotImplementedError

    def append(self, event: Event) -> None:
        """Buffer one event (written with the next batch)."""
        self.extend((event,))

    def record(self, prompt: str, *, unit_id: Any = None, **values: Any) -> Event:
        """Build an `Event` from keywords (``unit_id`` is hashed, never stored), buffer it and return it."""
        if not _EVENT_FIELDS.issuperset(values) or "unit_hash" in values:  # the cheap check on the request path
            unknown = set(values) - _EVENT_FIELDS
            raise EventLogError(f"unknown event fields {sorted(unknown | ({'unit_hash'} & set(values)))!r}; "
                                f"use unit_id= for the unit and the columns {list(COLUMN_NAMES)!r}.")
        values["prompt"], values["unit_hash"] = prompt, None if unit_id is None else hash_unit(unit_id, self._salt)
        event = Event._of(values)
        self.append(event)
        return event

    def hash_unit(self, unit_id: Any) -> str:
        """`hash_unit` with this log's salt (to look a unit up without storing its id)."""
        return hash_unit(unit_id, self._salt)

    def frame(self, where: Any = None, limit: int | None = None) -> pd.DataFrame:
        """The events as a DataFrame (``where``: a `promptlab.production._query.EventFilter`)."""
        return conform(self.query(*frame_sql(where, limit)))

    def __len__(self) -> int:
        return int(self.query(f"SELECT COUNT(*) AS n FROM {TABLE}")["n"].iloc[0])

    def summary(self) -> dict[str, Any]:
        """Events, time span and prompts in the log (what the notebook card shows)."""
        head = self.query(f"SELECT COUNT(*) AS n, MIN(ts_ms) AS first_ms, MAX(ts_ms) AS last_ms FROM {TABLE}")
        prompts = self.query(f"SELECT prompt, COUNT(*) AS n FROM {TABLE} GROUP BY prompt ORDER BY n DESC")
        return {"path": self.location(), "events": int(head["n"].iloc[0]), "first_ms": head["first_ms"].iloc[0],
                "last_ms": head["last_ms"].iloc[0],
                "prompts": {p: int(n) for p, n in zip(prompts["prompt"], prompts["n"], strict=True)}}

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _repr_html_(self) -> str:
        from .._display import eventlog_html

        return eventlog_html(self.summary())


def frame_sql(where: Any = None, limit: int | None = None) -> tuple[str, list[Any]]:
    """The query of `EventStore.frame`: every column of the selected events, in time order, and its parameters."""
    clause, params = (where or EventFilter()).sql()
    tail = f" LIMIT {int(limit)}" if limit is not None else ""
    return f"SELECT {', '.join(COLUMN_NAMES)} FROM {TABLE} WHERE {clause} ORDER BY ts_ms, event_id{tail}", params


# ---- DataFrames, Arrow, Parquet ------------------------------------------------------------------------------
def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Events with stable dtypes: nullable integers and booleans, floats, strings (missing columns added)."""
    out = frame.reindex(columns=list(COLUMN_NAMES)).copy()
    for name in ("ts_ms", "input_tokens", "output_tokens"):
        out[name] = pd.to_numeric(out[name]).astype("Int64")
    for name in ("success", "format_ok"):
        out[name] = pd.to_numeric(out[name]).astype("Int64").astype("boolean")
    for name in _REAL_COLUMNS:
        out[name] = pd.to_numeric(out[name]).astype(float)
    return out


def _frame_rows(frame: pd.DataFrame) -> list[tuple]:
    unknown = set(frame.columns) - set(COLUMN_NAMES)
    if unknown:
        raise EventLogError(f"unknown event columns {sorted(unknown)!r}; the columns are {list(COLUMN_NAMES)!r}.")
    if "prompt" not in frame or frame["prompt"].isna().any():
        raise EventLogError("every event needs a prompt name; the frame's 'prompt' column is missing or has NA.")
    if "unit_hash" in frame and not frame["unit_hash"].dropna().astype(str).str.fullmatch(_HASH_RE).all():
        raise EventLogError("unit_hash values must come from hash_unit (16 hex digits), never raw unit ids.")
    out = frame.reindex(columns=list(COLUMN_NAMES))
    if out["ts_ms"].isna().all():
        out["ts_ms"] = now_ms()
    columns = [_plain_column(out[name], name) for name in COLUMN_NAMES]
    return list(zip(*columns, strict=True))


def _plain_column(series: pd.Series, name: str) -> list:
    """Python values SQLite accepts: int/float/str, None for missing."""
    if name in _INT_COLUMNS:
        values = series.astype("Float64").tolist()
        return [None if v is pd.NA or v != v else int(v) for v in values]
    if name in _REAL_COLUMNS:
        values = pd.to_numeric(series).astype(float)
        return [None if v != v else v for v in values.tolist()]
    return [None if v is None or v != v else str(v) for v in series.astype(object).tolist()]


def _arrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is a core dependency
        raise MissingDependencyError("Parquet export needs pyarrow: pip install pyarrow") from exc
    types = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.string()}
    schema = pa.schema([(name, pa.int8() if name in ("success", "format_ok") else types[kind.split()[0]])
                        for name, kind in EVENT_COLUMNS])
    return pq, schema


def _arrow_table(rows: list[tuple], schema: Any) -> Any:
    import pyarrow as pa

    columns = list(zip(*rows, strict=True))
    return pa.Table.from_arrays([pa.array(col, type=schema.field(i).type) for i, col in enumerate(columns)],
                                schema=schema)


def write_parquet(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame of events as a Parquet file with the event log's schema (for simulated logs)."""
    pq, schema = _arrow()
    import pyarrow as pa

    rows = _frame_rows(frame)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = _arrow_table(rows, schema) if rows else pa.Table.from_pylist([], schema=schema)
    pq.write_table(table, path)
    return path
