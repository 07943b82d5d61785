"""Notebook 03 runs twice in a row on one registry: the second run finds its winner registered, not a crash.

nbmake runs every notebook once, each in a scratch registry; this test runs 03 twice against the same
registry, the way a user re-running the notebook on their repository does.
"""

from __future__ import annotations

import shutil

import pytest

import promptlab as pl
from promptlab.notebook._report import execute_notebook

pytestmark = pytest.mark.local_model


def test_notebook_03_exports_once_and_runs_again(root, tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp")
    monkeypatch.setenv("PROMPTLAB_NOTEBOOK_SAMPLE", "6")
    registry_root = tmp_path / "repo"
    for folder in ("prompts", "configs"):
        shutil.copytree(root / folder, registry_root / folder)
    terse = pl.load_prompt(root / "prompts/classification/sentiment_terse.yaml")
    new = terse.with_changes(version="1.3.0-notebook", system=terse.system + "\nAnswer with the label only.")
    new_path = tmp_path / "sentiment_new.yaml"
    new.save(new_path)
    params = {"REGISTRY_ROOT": str(registry_root), "EXPORT_OVERRIDE": "a test exports the best variant",
              "VARIANT_PATHS": {"baseline": str(root / "prompts/classification/sentiment.yaml"), "new": str(new_path)}}
    before = len(pl.Registry(registry_root).versions("sentiment_classifier"))

    execute_notebook(root / "notebooks/03_compare.ipynb", params)
    after_first = pl.Registry(registry_root).versions("sentiment_classifier")
    assert len(after_first) == before + 1  # exported once, by override (the history records why)
    history = pl.Registry(registry_root).history("sentiment_classifier")
    assert history["reason"].str.contains("exported by override: a test exports").any()

    second = execute_notebook(root / "notebooks/03_compare.ipynb", params)
    after_second = pl.Registry(registry_root).versions("sentiment_classifier")
    assert len(after_second) == len(after_first)  # no duplicate-content version
    printed = "".join(out.get("text", "") for cell in second.cells if cell.cell_type == "code"
                      for out in cell.get("outputs", []))
    assert "already registered as" in printed
