"""Shared fixtures: every test gets its own response cache, run store and judge cards, so no test sees another's
answers or runs, and no test writes a run into the repository; the event-log backends (`event_backend`:
SQLite, DuckDB, PostgreSQL) for the one suite every backend passes, on a throwaway server (`postgres_url`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _isolated_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("PROMPTLAB_JUDGES_DIR", str(tmp_path / "judges"))


@pytest.fixture
def root() -> Path:
    return ROOT


# ---- event-log backends: SQLite, DuckDB (Parquet) and PostgreSQL, loaded with the same events ---------------
BACKENDS = ("sqlite", "duckdb", "postgres")


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server on loopback for the whole session (initdb + pg_ctl in a temp folder).

    Skips when no server can be started here, unless PROMPTLAB_REQUIRE_POSTGRES=1 (CI), which fails instead.
    """
    from promptlab.errors import SetupError
    from promptlab.testing._postgres import ThrowawayPostgres

    server = ThrowawayPostgres()
    try:
        server.start()
        import psycopg  # noqa: F401 - the backend's driver must be importable too
    except (SetupError, ImportError) as exc:
        server.stop()
        if os.environ.get("PROMPTLAB_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PROMPTLAB_REQUIRE_POSTGRES=1 but no PostgreSQL server could be started: {exc}")
        pytest.skip(f"no PostgreSQL server can be started here: {exc}")
    yield server.url
    server.stop()


def postgres_schema_url(base_url: str) -> str:
    """A fresh, empty schema on the session's server, as a URL whose search_path points at it."""
    import uuid

    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{base_url}?options=-csearch_path%3D{schema}"


class _BackendFactory:
    """``make(frame_or_events)`` → a Source of that backend holding exactly those events (``name``: which)."""

    def __init__(self, name: str, request, tmp_path: Path):
        self.name, self._request, self._tmp = name, request, tmp_path
        self._opened: list = []

    @property
    def writable(self) -> bool:
        return self.name != "duckdb"

    def url(self) -> str:
        """A fresh PostgreSQL schema's URL (postgres backend only)."""
        return postgres_schema_url(self._request.getfixturevalue("postgres_url"))

    def open(self, **options):
        """An empty, writable log of this backend (not for duckdb, which is read-only)."""
        from promptlab.production._eventlog import EventLog

        target = self.url() if self.name == "postgres" else self._tmp / f"events-{len(self._opened)}.db"
        log = EventLog(target, **options)
        self._opened.append(log)
        return log

    def __call__(self, data):
        import pandas as pd

        from promptlab.production._eventlog import Event, ParquetLog, write_parquet
        from promptlab.production._schema import COLUMN_NAMES

        frame = data if isinstance(data, pd.DataFrame) else \
            pd.DataFrame([event.row() for event in data if isinstance(event, Event)], columns=list(COLUMN_NAMES))
        if self.name == "duckdb":
            log = ParquetLog(write_parquet(frame, self._tmp / f"events-{len(self._opened)}.parquet"))
            self._opened.append(log)
            return log
        log = self.open()
        log.append_frame(frame)
        return log

    def close(self) -> None:
        for log in self._opened:
            log.close()


@pytest.fixture(params=BACKENDS)
def event_backend(request, tmp_path):
    """A factory per backend (sqlite, duckdb, postgres): ``make(frame_or_events) -> Source`` with those events."""
    factory = _BackendFactory(request.param, request, tmp_path)
    yield factory
    factory.close()


@pytest.fixture
def pg_url(postgres_url):
    """A fresh, empty schema on the session's PostgreSQL server, as a URL — one per test."""
    return postgres_schema_url(postgres_url)


@pytest.fixture(params=("sqlite", "postgres"))
def log_backend(request, tmp_path):
    """``log_backend.open(**options)`` → an empty writable log: a SQLite file, or a fresh PostgreSQL schema."""
    factory = _BackendFactory(request.param, request, tmp_path)
    yield factory
    factory.close()
