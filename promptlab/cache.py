"""The response cache: SQLite, content-addressed by provider, model, rendered request, params and repeat index.

Every completed call is written the moment it completes, so a run interrupted by Ctrl-C, a kernel restart or
a crash and then started again pays for no call that had finished: resume is a cache hit. Only the request
and the answer are stored — never API keys or headers. Failed calls are not cached (a retry may succeed).

The default file is ``$PROMPTLAB_CACHE_DIR/responses.sqlite`` (``~/.cache/promptlab`` when unset).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from dataclasses import fields
from pathlib import Path

from .providers.base import Completion, Request

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    completion TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


# What a cached completion keeps: everything but ``raw`` (provider payloads stay out of the cache; not
# deep-copying them with `dataclasses.asdict` is also what keeps `put` cheap).
_STORED_FIELDS = tuple(f.name for f in fields(Completion) if f.name != "raw")


def default_cache_path() -> Path:
    """Where the cache lives unless a path is given: ``$PROMPTLAB_CACHE_DIR`` or ``~/.cache/promptlab``."""
    root = os.environ.get("PROMPTLAB_CACHE_DIR") or Path.home() / ".cache" / "promptlab"
    return Path(root) / "responses.sqlite"


def cache_key(provider: str, request: Request, repeat: int, namespace: str = "") -> str:
    """The content address of one call: provider, model, request (with params) and repeat index."""
    material = json.dumps([provider, request.model, request.fingerprint(), repeat, namespace])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class ResponseCache:
    """A small SQLite key-value store of completions, safe to share between threads of one process.

    Args:
        path: the SQLite file; created with its folder when missing.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def get(self, key: str) -> Completion | None:
        """The stored completion for ``key``, or None."""
        with self._lock:
            row = self._db.execute("SELECT completion FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return Completion(**json.loads(row[0]))

    def put(self, key: str, provider: str, completion: Completion) -> None:
        """Store a completion and commit at once (what makes resume after a crash free)."""
        record = {name: getattr(completion, name) for name in _STORED_FIELDS}
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, provider, model, completion) VALUES (?, ?, ?, ?)",
                (key, provider, completion.model, json.dumps(record)),
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def clear(self) -> None:
        """Delete every stored response."""
        with self._lock:
            self._db.execute("DELETE FROM responses")
            self._db.commit()

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"
