"""The response cache: SQLite, content-addressed by who answers (provider and endpoint), model, rendered
request, params and repeat index.

Every completed call is written as it completes, so a run interrupted by Ctrl-C, a kernel restart or a crash
and then started again pays for no call that had finished: resume is a cache hit. `put` commits at once; the
batch runner uses `put_soon`, which queues the row; a timer on the event loop commits what gathered in
`LINGER_S` (50 ms) in one transaction — a busy run commits many rows per transaction instead of one per call,
and no call waits on a commit. A queued row is answered by `get` from memory until it is committed; `flush`
(which the runner calls when a run ends or is interrupted, and which runs at interpreter exit) commits every
queued row. Only a process killed outright (SIGKILL, power loss) loses rows: those of its last 50 ms,
whose calls a resume makes again. Only the request and the answer are stored — never API keys or headers.
Failed calls are not cached (a retry may succeed).

A key covers everything that can change an answer: the provider's `cache_identity()` (its kind, its endpoint
and the options that shape its answers — never its key), the model, the rendered request with its
parameters, and the repeat index. A run pointed at another server therefore never gets the first server's
answers back.

The default file is per project: ``<project root>/.promptlab/cache/responses.sqlite``, where the project root
is the nearest folder at or above the current one holding ``pyproject.toml``, ``.git`` or ``promptlab.yaml``
(the current folder when none does). ``$PROMPTLAB_CACHE_DIR`` overrides it.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import hashlib
import json
import os
import sqlite3
import threading
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..errors import ArgumentError
from ..providers._base import Completion, Request

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    completion TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""
# Columns added after the first release; older cache files get them on open (NULL for old rows).
_ADDED_COLUMNS = {"endpoint": "TEXT", "model_asked": "TEXT"}

PROJECT_MARKERS = ("pyproject.toml", ".git", "promptlab.yaml")
"""What marks a project root for the default cache location."""

# What a cached completion keeps: everything but ``raw`` (provider payloads stay out of the cache; not
# deep-copying them with `dataclasses.asdict` is also what keeps `put` cheap).
_STORED_FIELDS = tuple(f.name for f in fields(Completion) if f.name != "raw")
_INSERT = ("INSERT OR REPLACE INTO responses (key, provider, model, completion, endpoint, model_asked) "
           "VALUES (?, ?, ?, ?, ?, ?)")


def project_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the current folder) holding one of
    `PROJECT_MARKERS`; ``start`` itself when none does."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return here


def project_folder(kind: str) -> Path:
    """The project-local folder of one kind of state — ``cache``, ``runs`` or ``judges``: the environment's
    ``$PROMPTLAB_<KIND>_DIR`` when set, else ``<project root>/.promptlab/<kind>`` (see `project_root`)."""
    override = os.environ.get(f"PROMPTLAB_{kind.upper()}_DIR")
    return Path(override) if override else project_root() / ".promptlab" / kind


def default_cache_path() -> Path:
    """Where the cache lives unless a path is given: ``$PROMPTLAB_CACHE_DIR/responses.sqlite``, else
    ``<project root>/.promptlab/cache/responses.sqlite``."""
    return project_folder("cache") / "responses.sqlite"


_KEY_JSON = json.JSONEncoder(sort_keys=True, default=str)  # `json.dumps(..., sort_keys=True, default=str)`, built once


def cache_key(identity: Mapping[str, Any], request: Request, repeat: int, namespace: str = "") -> str:
    """The content address of one call.

    Args:
        identity: the provider's `cache_identity()` — its kind, endpoint and answer-shaping options.
        request: the rendered request (its fingerprint covers model, messages and params).
        repeat: the repeat index (repeats are distinct calls, not copies of one answer).
        namespace: separates callers that send the same request for different purposes (the judge).
    """
    if not isinstance(identity, Mapping) or "provider" not in identity:
        raise ArgumentError(f"cache_key needs a provider's cache_identity() mapping with a 'provider' entry, got "
                            f"{identity!r}. Pass provider.cache_identity().")
    material = _KEY_JSON.encode([dict(identity), request.model, request.fingerprint(), repeat, namespace])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class ResponseCache:
    """A small SQLite key-value store of completions, safe to share between threads of one process.

    Args:
        path: the SQLite file; created with its folder when missing (default: `default_cache_path`).
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        # One process at a time sets the file up: two opening a new cache at once would otherwise race on the
        # switch to WAL ("database is locked") and on adding columns ("duplicate column name").
        with FileLock(f"{self.path}.lock", timeout=60):
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._add_missing_columns()
            self._db.commit()
        self._writer: _Batcher | None = None  # made by the first `put_soon`

    def _add_missing_columns(self) -> None:
        present = {row[1] for row in self._db.execute("PRAGMA table_info(responses)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE responses ADD COLUMN {column} {kind}")

    def get(self, key: str) -> Completion | None:
        """The stored completion for ``key`` (also one `put_soon` queued and not yet committed), or None."""
        if self._writer is not None and (queued := self._writer.pending.get(key)) is not None:
            return Completion(**json.loads(queued))
        with self._lock:
            row = self._db.execute("SELECT completion FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return Completion(**json.loads(row[0]))

    def put(self, key: str, provider: str, completion: Completion, *, endpoint: str | None = None,
            model_asked: str | None = None) -> None:
        """Store a completion and commit at once (what makes resume after a crash free).

        Args:
            key: from `cache_key`.
            provider: the provider's name (for `stats` and `clear`).
            completion: the answer; its ``raw`` payload is not stored.
            endpoint: where it came from (the identity's endpoint; never holds credentials), for `stats`.
            model_asked: the model id that was asked for (``completion.model`` is who answered), for `clear`.
        """
        with self._lock:
            self._db.execute(_INSERT, _row(key, provider, completion, endpoint, model_asked))
            self._db.commit()

    def put_soon(self, key: str, provider: str, completion: Completion, *, endpoint: str | None = None,
                 model_asked: str | None = None) -> None:
        """`put` without waiting: the row is queued and committed with the others queued within `LINGER_S`, in
        one transaction, by a timer on the running event loop (at once when no loop runs). `get` answers it
        from memory until then; `flush` commits it now. Same arguments as `put`."""
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = _Batcher(self)
        self._writer.queue(_row(key, provider, completion, endpoint, model_asked))

    def flush(self) -> None:
        """Commit every row queued by `put_soon` (a no-op when none is)."""
        if self._writer is not None:
            self._writer.flush()

    def __len__(self) -> int:
        self.flush()
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def stats(self) -> dict[str, Any]:
        """What the cache holds: path, entries, size on disk (bytes), oldest and newest entry (ISO UTC), and
        entries per provider / model answered / endpoint (``groups``, largest first)."""
        self.flush()
        with self._lock:
            entries, oldest, newest = self._db.execute(
                "SELECT COUNT(*), MIN(created_at), MAX(created_at) FROM responses").fetchone()
            groups = self._db.execute(
                "SELECT provider, model, endpoint, COUNT(*) AS n FROM responses "
                "GROUP BY provider, model, endpoint ORDER BY n DESC, provider, model").fetchall()
        size = sum(p.stat().st_size for p in self._files() if p.exists())
        return {"path": str(self.path), "entries": entries, "size_bytes": size, "oldest": oldest,
                "newest": newest, "groups": [{"provider": p, "model": m, "endpoint": e, "entries": n}
                                             for p, m, e, n in groups]}

    def _files(self) -> list[Path]:
        return [self.path, self.path.with_name(self.path.name + "-wal")]

    def clear(self, *, older_than: dt.timedelta | None = None, model: str | None = None) -> int:
        """Delete stored responses — all of them, or only those older than ``older_than`` and/or from
        ``model`` (matched against the model asked for and the model that answered). Returns how many went."""
        where, args = [], []
        if older_than is not None:
            cutoff = (dt.datetime.now(dt.UTC) - older_than).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            where.append("created_at < ?")
            args.append(cutoff)
        if model is not None:
            where.append("(model = ? OR model_asked = ?)")
            args += [model, model]
        sql = "DELETE FROM responses" + (" WHERE " + " AND ".join(where) if where else "")
        self.flush()
        with self._lock:
            removed = self._db.execute(sql, args).rowcount
            self._db.commit()
            if removed:  # give the space back to the disk, not only to SQLite's free list
                self._db.execute("VACUUM")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    def close(self) -> None:
        """Commit what `put_soon` queued and close the database connections."""
        self.flush()
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"


def _row(key: str, provider: str, completion: Completion, endpoint: str | None,
         model_asked: str | None) -> tuple:
    """The values of one ``responses`` row (`_INSERT`'s order)."""
    record = {name: getattr(completion, name) for name in _STORED_FIELDS}
    return key, provider, completion.model, json.dumps(record), endpoint, model_asked


LINGER_S = 0.05
"""How long rows queued by `put_soon` gather before one transaction commits them all (a flush or close cuts it
short). It bounds what a process killed outright can lose."""


class _Batcher:
    """The rows `ResponseCache.put_soon` queued, committed together by a timer on the event loop `LINGER_S` after
    the first of them.

    The commit runs on the loop itself, in one short transaction (WAL mode without a sync per commit: well under a
    millisecond for a batch of a busy run's answers). An earlier design committed from a writer thread; the thread
    then competed with the event loop for the GIL at every wake-up, which cost a busy run more than the commits
    themselves. Outside a running loop there is nothing to wait for: a row is committed at once. A failed commit
    (a full disk) warns once and drops the rows: the run keeps its answers, only a later resume would make those
    calls again.
    """

    def __init__(self, cache: ResponseCache):
        self._cache = cache
        self.pending: dict[str, str] = {}  # key -> completion JSON, until committed (read by `get`)
        self._queued: list[tuple] = []
        self._guard = threading.Lock()  # runs on several threads' loops may share one cache
        self._timer_loop: Any = None  # the loop whose timer will commit the queue (None: no timer set)
        self._warned = False
        # rows still queued when the interpreter exits (a loop closed before its timer fired) are committed then
        atexit.register(_flush_at_exit, weakref.ref(self))

    def queue(self, row: tuple) -> None:
        """Queue one row; the first of a batch sets the commit timer on the running loop (none: commit now)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._guard:
            self.pending[row[0]] = row[3]
            self._queued.append(row)
            schedule = loop is not None and self._timer_loop is not loop
            if schedule:
                self._timer_loop = loop
        if loop is None:
            self.flush()
        elif schedule:
            loop.call_later(LINGER_S, self.flush)

    def flush(self) -> None:
        """Commit every queued row in one transaction (a no-op when none is queued)."""
        with self._guard:
            batch, self._queued, self._timer_loop = self._queued, [], None
        if not batch:
            return
        try:
            with self._cache._lock, self._cache._db:  # one transaction: committed, or rolled back on an error
                self._cache._db.executemany(_INSERT, batch)
        except sqlite3.Error as exc:
            if not self._warned:
                self._warned = True
                warnings.warn(f"promptlab could not write {len(batch)} answers to the response cache "
                              f"{self._cache.path}: {exc}. The run keeps them; a resumed run would make those calls "
                              "again.", stacklevel=2)
        with self._guard:
            for key, _, _, text, _, _ in batch:
                if self.pending.get(key) is text:  # not queued again since
                    del self.pending[key]


def _flush_at_exit(writer: weakref.ref) -> None:
    if (alive := writer()) is not None:
        alive.flush()
