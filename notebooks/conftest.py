"""Notebooks under test: a small sample of cases, and each notebook its own empty response cache, run store and
judge cards.

Hermetic: a notebook must not pass because another notebook (or an earlier run on this machine) left its
answers in a shared cache. nbmake starts each notebook's kernel inside the test, after this hook, so the
kernel inherits the variable set here.
"""

import os
import tempfile

os.environ.setdefault("PROMPTLAB_NOTEBOOK_SAMPLE", "10")


def pytest_runtest_setup(item):
    """Point ``PROMPTLAB_CACHE_DIR``, ``PROMPTLAB_RUNS_DIR`` and ``PROMPTLAB_JUDGES_DIR`` at fresh folders for every
    notebook (no notebook under test writes its runs or judge cards into the repository, or reads another's)."""
    if str(item.fspath).endswith(".ipynb"):
        os.environ["PROMPTLAB_CACHE_DIR"] = tempfile.mkdtemp(prefix=f"promptlab-cache-{item.fspath.purebasename}-")
        os.environ["PROMPTLAB_RUNS_DIR"] = tempfile.mkdtemp(prefix=f"promptlab-runs-{item.fspath.purebasename}-")
        os.environ["PROMPTLAB_JUDGES_DIR"] = tempfile.mkdtemp(prefix=f"promptlab-judges-{item.fspath.purebasename}-")
