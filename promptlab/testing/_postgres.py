"""`ThrowawayPostgres`: a private PostgreSQL server for tests and benchmarks, started from the installed binaries.

``initdb`` in a fresh temporary folder, ``pg_ctl start`` on a free loopback port (Unix socket in the same
folder), trust authentication on loopback only, and on `stop` an immediate shutdown and the folder removed.
Nothing outside the folder is touched, so it never collides with a system cluster. PostgreSQL refuses to run as
root: as root the folder is handed to the ``postgres`` user and the binaries run through ``runuser``.

The binaries are found on ``PATH`` (symlinks followed) or in Debian's ``/usr/lib/postgresql/<version>/bin``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from ..errors import SetupError

_DEBIAN_BINS = "/usr/lib/postgresql/*/bin/initdb"
_FAST = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")


def postgres_bin_dir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres`` (None when PostgreSQL is not installed)."""
    found = shutil.which("initdb")
    candidates = [Path(os.path.realpath(found)).parent] if found else []
    candidates += sorted((Path(p).parent for p in glob.glob(_DEBIAN_BINS)),
                         key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    for folder in candidates:
        if (folder / "pg_ctl").exists() and (folder / "postgres").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder, on a free loopback port; use it as a context manager.

    ``url`` is ``postgresql://postgres@127.0.0.1:<port>/postgres`` once started.

    Args:
        durable: keep PostgreSQL's crash safety (fsync, synchronous commit). Off by default: tests care about
            processes, not power cuts, and run several times faster without it.
    """

    def __init__(self, *, durable: bool = False):
        self.durable = durable
        self.folder: Path | None = None
        self.port = 0
        self.url = ""

    def start(self) -> ThrowawayPostgres:
        """Create and start the cluster (raises `SetupError` saying why when it cannot)."""
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise SetupError("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin); "
                             "install it with: apt-get install postgresql")
        self.folder = Path(tempfile.mkdtemp(prefix="promptlab-pg-"))
        data, log = self.folder / "data", self.folder / "server.log"
        self.port = _free_port()
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 {'' if self.durable else _FAST}"
        try:
            self._as_owner()
            self._run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                       "--no-locale", "--no-sync"])
            self._run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60",
                       "start"])
        except (OSError, subprocess.SubprocessError, SetupError) as exc:
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            self.stop()
            raise SetupError(f"could not start a throwaway PostgreSQL: {exc}. {tail}".strip()) from None
        self._bin_dir = bin_dir
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return self

    def _as_owner(self) -> None:
        """As root, hand the folder to the ``postgres`` user (initdb and postgres refuse to run as root)."""
        if os.geteuid() == 0:
            shutil.chown(self.folder, user="postgres", group=None)
            self.folder.chmod(0o700)

    def _run(self, argv: list[str]) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise SetupError(f"{Path(argv[-1] if argv[-1] != 'start' else argv[0]).name} failed "
                             f"({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")

    def server_pid(self) -> int | None:
        """The postmaster's process id (None when not running) — for measuring the server's CPU time."""
        pidfile = self.folder / "data" / "postmaster.pid" if self.folder else None
        try:
            return int(pidfile.read_text().split()[0]) if pidfile else None
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Stop the server at once and remove its folder (safe to call twice)."""
        if self.folder is None:
            return
        data = self.folder / "data"
        if self.url and (data / "postmaster.pid").exists():
            with contextlib.suppress(SetupError, OSError, subprocess.SubprocessError):
                self._run([str(self._bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder, self.url = None, ""

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
