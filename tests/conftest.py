"""Shared fixtures: every test gets its own response cache, so no test sees another's answers."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def root() -> Path:
    return ROOT
