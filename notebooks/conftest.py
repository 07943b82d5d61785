"""Under test the notebooks run the local model on a small sample, so the whole set stays quick."""

import os

os.environ.setdefault("PROMPTLAB_NOTEBOOK_SAMPLE", "10")
