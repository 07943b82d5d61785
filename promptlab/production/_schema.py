"""The event log's schema and the small functions on its values: table and columns, unit hashing, times.

Below both the log (`_eventlog`) and the SQL built on it (`_query`), so neither imports the other for them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from typing import Any

TABLE = "events"
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ts_ms", "INTEGER NOT NULL"), ("experiment", "TEXT"), ("prompt", "TEXT NOT NULL"), ("version", "TEXT"),
    ("arm", "TEXT"), ("unit_hash", "TEXT"), ("request_id", "TEXT"), ("latency_s", "REAL"),
    ("input_tokens", "INTEGER"), ("output_tokens", "INTEGER"), ("cost_usd", "REAL"), ("success", "INTEGER"),
    ("format_ok", "INTEGER"), ("error_type", "TEXT"), ("quality", "REAL"), ("model", "TEXT"),
    ("outcome", "TEXT"),
)
"""(name, SQLite type) of every event column, in storage order."""
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in EVENT_COLUMNS)
UNIT_HASH_CHARS = 16
_HASH_RE = re.compile(rf"^[0-9a-f]{{{UNIT_HASH_CHARS}}}$")
_INT_COLUMNS = ("ts_ms", "input_tokens", "output_tokens", "success", "format_ok")
_REAL_COLUMNS = ("latency_s", "cost_usd", "quality")


def hash_unit(unit_id: Any, salt: str = "") -> str:
    """The stored form of a unit (user, session) id: 16 hex digits of SHA-256, stable across processes.

    The raw id never reaches the log. Ids that are easy to guess (emails, small integers) can be recovered
    from an unsalted hash by trying candidates; pass a secret ``salt`` (kept out of the log) to prevent that.

    Args:
        unit_id: the id as the application knows it (converted with ``str``).
        salt: an optional secret mixed into the hash.
    """
    text = f"promptlab.unit\x00{salt}\x00{unit_id}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:UNIT_HASH_CHARS]


def now_ms() -> int:
    """The current Unix time in milliseconds."""
    return time.time_ns() // 1_000_000


def to_ms(value: dt.datetime | dt.date | str | float | int) -> int:
    """Unix milliseconds from a datetime (naive means UTC), an ISO string, or a number already in ms."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return int(round(aware.timestamp() * 1000))
    if isinstance(value, dt.date):
        return to_ms(dt.datetime(value.year, value.month, value.day))
    return int(value)
