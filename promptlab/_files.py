"""File and identity utilities every room may use: atomic writes, and who is acting.

They live below the registry (which first needed them) so that evidence records, caches and reports can
write files safely without importing the registry's store.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import tempfile
from pathlib import Path


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` through a temporary file and ``os.replace``: readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_actor() -> str:
    """Who is acting: ``$PROMPTLAB_USER``, else git's ``user.name``, else the login name."""
    if os.environ.get("PROMPTLAB_USER"):
        return os.environ["PROMPTLAB_USER"]
    try:
        name = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        name = ""
    return name.strip() or getpass.getuser()
