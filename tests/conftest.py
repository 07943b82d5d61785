"""Shared fixtures: every test gets its own response cache, run store and judge cards, so no test sees another's
answers or runs, and no test writes a run into the repository."""

from __future__ import annotations

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
