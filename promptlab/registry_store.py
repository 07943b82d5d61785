"""The registry's files: version files, the history, the alias files, evidence records — read, checked, written.

This is the storage layer under `promptlab.registry.Registry`: it knows where every file lives and how to read
and write it safely, not what a move is allowed to do. Every write goes through a temporary file and
``os.replace`` (`atomic_write`) while the lock file ``configs/.registry.lock`` is held, so a reader never sees
half a file and concurrent writers from several processes are serialised. Integrity: a registered version
records two hashes — ``content_hash`` (what changes model behaviour) and ``definition_hash`` (every field,
changelog and metadata included) — and `RegistryStore.verified` refuses a file whose hash differs.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock
from filelock import Timeout as LockTimeout
from pydantic import BaseModel, ConfigDict, ValidationError

from . import lifecycle as lc
from .errors import IntegrityError, PromptFileError, RegistryError
from .evidence import Evidence, load_record
from .lifecycle import ENVIRONMENTS, HistoryEvent, Ledger
from .prompt import Prompt, load_prompt


def find_root(start: str | Path | None = None) -> Path:
    """The repository root: the first folder at or above ``start`` (default: cwd) with ``prompts/``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "prompts").is_dir() and ((folder / "configs").is_dir() or (folder / ".git").exists()):
            return folder
    raise RegistryError(f"no prompts/ folder (beside configs/ or .git) in {str(here)!r} or above; pass the "
                        "repository root: Registry('path/to/repo').")


def definition_hash(prompt: Prompt) -> str:
    """SHA-256 (16 hex digits) of every field of the prompt, changelog and metadata included."""
    canonical = json.dumps(prompt.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


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


class AliasEntry(BaseModel):
    """The live version of one prompt in one environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    file: str
    content_hash: str


class AliasFile(BaseModel):
    """``configs/<environment>.yaml``: the live version of each prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: str
    prompts: dict[str, AliasEntry] = {}


_ALIAS_HEADER = ("# The live version of each prompt in {env}. Written by promptlab (promote / rollback); each\n"
                 "# change is also an event in configs/history.jsonl. Change it with `promptlab promote` or\n"
                 "# `promptlab rollback`, not by hand: `promptlab status` flags a file that disagrees with history.\n")


@dataclass(frozen=True)
class VersionFile:
    """A prompt version file found under ``prompts/`` (``path`` relative to the root)."""

    path: str
    prompt: Prompt


@dataclass(frozen=True)
class Problem:
    """Something wrong in the registry; ``kind`` is invalid, duplicate, modified, missing, alias or evidence."""

    kind: str
    ref: str
    message: str


@dataclass(frozen=True)
class View:
    """One consistent read of the registry: the version files (and the unreadable ones) and the history."""

    files: dict[tuple[str, str], VersionFile]
    problems: tuple[Problem, ...]
    ledger: Ledger


class RegistryStore:
    """Reads and writes the registry's files under ``root`` (``prompts/`` and ``configs/``).

    Args:
        root: the repository root.
        lock_timeout_s: how long a write waits for another process's lock before failing.
    """

    def __init__(self, root: Path, lock_timeout_s: float = 60.0):
        self.root = root
        self.prompts_dir, self.configs_dir = root / "prompts", root / "configs"
        self.history_path, self.evidence_dir = self.configs_dir / "history.jsonl", self.configs_dir / "evidence"
        self._lock = FileLock(str(self.configs_dir / ".registry.lock"), timeout=lock_timeout_s)

    # ---- reading ------------------------------------------------------------------------------------------------
    def events(self) -> list[HistoryEvent]:
        """Every history event, oldest first."""
        if not self.history_path.exists():
            return []
        events = []
        for number, line in enumerate(self.history_path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    events.append(HistoryEvent.model_validate_json(line))
                except ValidationError as exc:
                    raise RegistryError(f"{self.history_path}:{number}: not a history event "
                                        f"({exc.errors()[0]['msg']}). The history is append-only: restore the "
                                        "line from git.") from None
        return events

    def scan(self) -> tuple[dict[tuple[str, str], VersionFile], tuple[Problem, ...]]:
        """Every version file under ``prompts/`` by (name, version), and the files that are invalid or clash."""
        found: dict[tuple[str, str], VersionFile] = {}
        problems = []
        paths = sorted(self.prompts_dir.rglob("*.y*ml")) if self.prompts_dir.is_dir() else []
        for path in paths:
            if any(part.startswith(".") for part in path.relative_to(self.prompts_dir).parts):
                continue
            rel = path.relative_to(self.root).as_posix()
            try:
                prompt = load_prompt(path)
            except PromptFileError as exc:
                problems.append(Problem("invalid", rel, str(exc)))
                continue
            key = (prompt.name, prompt.version)
            if key in found:
                problems.append(Problem("duplicate", prompt.ref, f"{prompt.ref} is in both {found[key].path} "
                                        f"and {rel}; give one of them a new version."))
            else:
                found[key] = VersionFile(rel, prompt)
        return found, tuple(problems)

    def view(self) -> View:
        """Read the version files and the history once."""
        files, problems = self.scan()
        return View(files, problems, lc.replay(self.events()))

    def aliases(self, env: str) -> dict[str, AliasEntry]:
        """The entries of ``configs/<env>.yaml`` by prompt name."""
        if env not in ENVIRONMENTS:
            raise RegistryError(f"unknown environment {env!r}; the environments are {list(ENVIRONMENTS)!r}.")
        data = lc.read_config(self.configs_dir / f"{env}.yaml", env)
        try:
            return dict(AliasFile.model_validate(data or {"environment": env}).prompts)
        except ValidationError as exc:
            raise RegistryError(f"configs/{env}.yaml is not an alias file ({exc.errors()[0]['msg']}); restore it "
                                "from git (it holds `environment:` and `prompts: {name: {version, file, "
                                "content_hash}}`).") from None

    def live(self) -> dict[str, dict[str, str]]:
        """``{environment: {prompt: version}}`` from the alias files."""
        return {env: {n: e.version for n, e in self.aliases(env).items()} for env in ENVIRONMENTS}

    def evidence(self, prompt: Prompt, ledger: Ledger) -> list[Evidence]:
        """The stored evidence records of a version, oldest first (records of other content are skipped)."""
        ids = ledger.evidence.get((prompt.name, prompt.version), ())
        records = [load_record(self.evidence_dir / f"{i}.json") for i in ids
                   if (self.evidence_dir / f"{i}.json").exists()]
        return [r for r in records if r.content_hash == prompt.content_hash]

    # ---- integrity ----------------------------------------------------------------------------------------------
    def verified(self, name: str, version: str, view: View) -> Prompt:
        """A registered version, if its file still has the hash recorded at registration; `IntegrityError` if not."""
        event, found = view.ledger.registered[(name, version)], view.files.get((name, version))
        if found is None:
            raise IntegrityError(f"{name}@{version} was registered from {event.file} but no file under prompts/ "
                                 f"holds it now. Restore it from git (git checkout -- {event.file}).")
        now = definition_hash(found.prompt)
        if now != event.definition_hash:
            what = ("its behaviour changed (model, parameters, system, examples or template)"
                    if found.prompt.content_hash != event.content_hash else "its changelog or metadata changed")
            raise IntegrityError(
                f"{found.path} was edited after {name}@{version} was registered by {event.actor} at {event.at}: "
                f"{what} (hash {event.definition_hash!r} then, {now!r} now). Registered versions are immutable: "
                f"restore the file (git checkout -- {found.path}) or save the change as a new version with its own "
                "changelog entry and register that.")
        return found.prompt

    def problems(self) -> tuple[Problem, ...]:
        """Every integrity problem: invalid or clashing files, hand-edited or missing registered versions, alias
        files that disagree with the history, evidence files that are gone."""
        view = self.view()
        found = list(view.problems)
        for name, version in view.ledger.registered:
            try:
                self.verified(name, version, view)
            except IntegrityError as exc:
                kind = "modified" if (name, version) in view.files else "missing"
                found.append(Problem(kind, f"{name}@{version}", str(exc)))
        found += self._alias_problems(view.ledger)
        found += [Problem("evidence", f"{n}@{v}", f"evidence {i!r} of {n}@{v} is in the history but "
                          f"configs/evidence/{i}.json is missing; restore it from git.")
                  for (n, v), ids in view.ledger.evidence.items() for i in ids
                  if not (self.evidence_dir / f"{i}.json").exists()]
        return tuple(found)

    def _alias_problems(self, ledger: Ledger) -> list[Problem]:
        problems = []
        for env, on_file in self.live().items():
            expected = ledger.live(env)
            problems += [Problem("alias", name, f"configs/{env}.yaml says {name!r} is at {on_file.get(name)!r} but "
                                 f"the history says {expected.get(name)!r}; aliases move only by promote / rollback "
                                 "(restore the file from git).")
                         for name in sorted(set(on_file) | set(expected)) if on_file.get(name) != expected.get(name)]
        return problems + _stale_staging(ledger)

    # ---- writing (hold the lock) --------------------------------------------------------------------------------
    def locked(self) -> _LockGuard:
        """The write lock, as a context manager."""
        self.configs_dir.mkdir(parents=True, exist_ok=True)
        return _LockGuard(self._lock)

    def append(self, **fields: Any) -> HistoryEvent:
        """Append one event to the history, numbered after the last one (the caller holds the lock)."""
        text = self.history_path.read_text(encoding="utf-8") if self.history_path.exists() else ""
        seq = sum(1 for line in text.splitlines() if line.strip()) + 1
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        event = HistoryEvent.model_validate({"seq": seq, "at": at, **fields})
        line = json.dumps(event.model_dump(mode="json", exclude_defaults=True), ensure_ascii=False)
        atomic_write(self.history_path, text + ("\n" if text and not text.endswith("\n") else "") + line + "\n")
        return event

    def set_alias(self, env: str, name: str, found: VersionFile) -> None:
        """Point ``configs/<env>.yaml``'s entry for ``name`` at ``found`` (the caller holds the lock)."""
        entries = self.aliases(env)
        entries[name] = AliasEntry(version=found.prompt.version, file=found.path,
                                   content_hash=found.prompt.content_hash)
        data = {"environment": env, "prompts": {n: e.model_dump() for n, e in sorted(entries.items())}}
        body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        atomic_write(self.configs_dir / f"{env}.yaml", _ALIAS_HEADER.format(env=env) + body)


def _stale_staging(ledger: Ledger) -> list[Problem]:
    """Staging aliases that point at a version sent back to draft ("changes needed"): staging traffic would
    still reach a version the lifecycle withdrew."""
    stale = []
    for name, version in ledger.live("staging").items():
        state = ledger.state(name, version)
        if state == "draft":
            stale.append(Problem("alias", name, f"staging serves {name}@{version}, which went back to draft; "
                                 f"promote another version to staging or roll back (promptlab rollback {name} "
                                 "--env staging)."))
    return stale


class _LockGuard:
    """The registry's file lock as a context manager whose timeout error says what to do."""

    def __init__(self, lock: FileLock):
        self.lock = lock

    def __enter__(self) -> None:
        try:
            self.lock.acquire()
        except LockTimeout:
            raise RegistryError(f"another process has held the registry lock {self.lock.lock_file!r} too long; try "
                                "again when it finishes (a crashed process's lock is released by the OS).") from None

    def __exit__(self, *exc: Any) -> None:
        self.lock.release()
