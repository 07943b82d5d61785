"""Columnar reads of the SQLite event log: Arrow straight from SQLite (ADBC), no Python tuple per row.

Python's ``sqlite3`` hands back one tuple per row, and a frame built from a million tuples costs seconds. The
ADBC SQLite driver (``adbc-driver-sqlite``, an Apache Arrow project) reads the rows in C into Arrow columns,
which pandas takes over without a Python object per value. `sqlite_frame` is that path for the raw-row reads
of `EventLog` (``frame``); analyses never need it (they read aggregates and sketch buckets).

The connection is opened read-only (``mode=ro``: a write fails in SQLite itself). The driver infers each
column's type from the rows it has read, so the whole result is read as one batch (a column that is NULL for
its first thousand rows then holds text would otherwise be refused), and text columns of the event schema
come back as strings even when every value is NULL. When the driver is not installed, or refuses a result
(a column holding mixed types), `sqlite_frame` returns None and the caller reads the usual way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ._schema import EVENT_COLUMNS

_TEXT = frozenset(name for name, kind in EVENT_COLUMNS if kind.startswith("TEXT"))
_ONE_BATCH = "1000000000"  # rows per Arrow batch: all of them, so types are inferred from the whole result


def available() -> bool:
    """Whether the ADBC SQLite driver is installed (``pip install adbc-driver-sqlite``)."""
    try:
        import adbc_driver_sqlite.dbapi  # noqa: F401
    except ImportError:
        return False
    return True


def sqlite_frame(path: str | Path, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame | None:
    """Run one read-only query on a SQLite file and return its rows as a DataFrame built from Arrow columns.

    Returns None when the ADBC driver is missing or cannot type the result; the caller then falls back to
    ``sqlite3``. SQL errors are not swallowed silently: they also return None, and the fallback raises them
    with the log's own message.
    """
    try:
        import adbc_driver_sqlite.dbapi as adbc
    except ImportError:
        return None
    uri = Path(path).resolve().as_uri().replace("file://", "file:", 1) + "?mode=ro"
    try:
        with adbc.connect(uri) as conn, conn.cursor() as cursor:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": _ONE_BATCH})
            cursor.execute(sql, list(params))
            table = cursor.fetch_arrow_table()
    except Exception:  # noqa: BLE001 - any driver refusal means "read the usual way"
        return None
    return _to_pandas(table)


def _to_pandas(table: Any) -> pd.DataFrame:
    import pyarrow as pa

    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name in _TEXT and not pa.types.is_string(column.type):
            column = column.cast(pa.string())  # an all-NULL text column is typed int64 by the driver
        columns.append(column)
    frame = pa.table(columns, names=table.column_names).to_pandas()
    for name in frame.columns:
        if name in _TEXT and frame[name].isna().all():
            frame[name] = pd.Series([None] * len(frame), index=frame.index, dtype=object)  # as sqlite3 gives it
    return frame
