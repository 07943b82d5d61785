"""The registry's files: version files, the history, the alias files, evidence records — read, checked, written.

This is the storage layer under `promptlab.registry._registry.Registry`: it knows where every file lives and how to read
and write it safely, not what a move is allowed to do. Every write goes through a temporary file and
``os.replace`` (`atomic_write`) while the lock file ``configs/.registry.lock`` is held, so a reader never sees
half a file and concurrent writers from several processes are serialised. Integrity: a registered version
records two hashes — ``content_hash`` (what changes model behaviour) and ``definition_hash`` (every field,
changelog and metadata included) — and `RegistryStore.verified` refuses a file whose hash differs.

The history is hash-chained, so a line edited, inserted, removed, reordered or appended by hand is detected
(`check_chain`): every event promptlab writes carries ``prev_hash`` (the chain's link to the line before it)
and ``hash`` (SHA-256 of the line's canonical JSON — keys sorted, no spaces, UTF-8 — without the ``hash``
field; ``prev_hash`` is inside, so each hash covers the whole history before it). The first event of a new
history has ``prev_hash`` = `GENESIS`. Histories written before chaining migrate without a rewrite: their
leading unhashed lines are folded into a running hash (the link after a legacy line is SHA-256 of the link
before it, a newline and the line's canonical JSON), so the first hashed event anchors them all; until one is
written they are reported as *unchained*. An unhashed line after a hashed one is refused. The chain has no
secret key: whoever recomputes every hash after an edit forges it — it catches hand edits and naive tampering,
and git's history of ``configs/history.jsonl`` (signed commits, protected branches) is the anchor beyond that.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock
from filelock import Timeout as LockTimeout
from pydantic import BaseModel, ConfigDict

from .._files import atomic_write
from .._yaml import check, report
from ..authoring._prompt import Prompt, load_prompt
from ..errors import IntegrityError, PromptFileError, RegistryError
from . import _lifecycle as lc
from ._evidence import Evidence, load_record
from ._lifecycle import ENVIRONMENTS, HistoryEvent, Ledger

GENESIS = "0" * 64
"""The ``prev_hash`` of the first event of a history."""
HISTORY = "configs/history.jsonl"


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


# ---- the hash chain of the history ---------------------------------------------------------------------------
def canonical_json(data: dict[str, Any]) -> bytes:
    """A history line's canonical JSON: keys sorted, no spaces, UTF-8 (what its hash covers)."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def event_hash(data: dict[str, Any]) -> str:
    """SHA-256 (hex) of a history line's canonical JSON without its own ``hash`` field."""
    return hashlib.sha256(canonical_json({k: v for k, v in data.items() if k != "hash"})).hexdigest()


def _legacy_link(link: str, data: dict[str, Any]) -> str:
    """The link after a line written before chaining: the line folded into the running hash."""
    return hashlib.sha256(link.encode("ascii", "replace") + b"\n" + canonical_json(data)).hexdigest()


@dataclass(frozen=True)
class HistoryChain:
    """What the hash chain of ``configs/history.jsonl`` says (see the module docstring).

    Attributes:
        events: events that check out (before the first bad line).
        legacy: leading events written before hash chaining.
        head: the link the next event's ``prev_hash`` must carry.
        bad_line: the line number of the first line that breaks the chain (None: intact).
        problem: what is wrong with that line.
    """

    events: int = 0
    legacy: int = 0
    head: str = GENESIS
    bad_line: int | None = None
    problem: str = ""

    @property
    def intact(self) -> bool:
        """Whether no line breaks the chain."""
        return self.bad_line is None

    @property
    def message(self) -> str:
        """The problem with the place and the fix (empty when intact)."""
        if self.intact:
            return ""
        return (f"{HISTORY}:{self.bad_line}: {self.problem}. The history is append-only and hash-chained; "
                f"promptlab trusts no version, alias or approval until it is restored: see the change with "
                f"`git log -p -- {HISTORY}` and restore the file (git checkout -- {HISTORY}).")

    def describe(self) -> str:
        """One line for `promptlab status`."""
        if not self.intact:
            return f"broken at line {self.bad_line} ({self.problem})"
        if not self.events:
            return "no events yet"
        if self.legacy == self.events:
            return (f"{self.events} events written before hash chaining (unchained); the next event promptlab "
                    "writes anchors them")
        legacy = (f"; the first {self.legacy} predate hashing and are anchored by the hashed events after them"
                  if self.legacy else "")
        return f"{self.events} events, hash chain intact{legacy}"


def check_chain(lines: list[tuple[int, dict[str, Any]]]) -> HistoryChain:
    """Walk the history's lines (line number, parsed JSON), oldest first; stop at the first that breaks it."""
    link, legacy, chained = GENESIS, 0, False
    for index, (number, data) in enumerate(lines, start=1):
        problem = _link_problem(index, data, link, chained)
        if problem:
            return HistoryChain(index - 1, legacy, link, number, problem)
        if "hash" in data:
            chained, link = True, str(data["hash"])
        else:
            legacy, link = legacy + 1, _legacy_link(link, data)
    return HistoryChain(len(lines), legacy, link)


def _link_problem(index: int, data: dict[str, Any], link: str, chained: bool) -> str:
    """Why one line breaks the chain ('' when it does not)."""
    if data.get("seq") != index:
        return (f"seq {data.get('seq')!r} where {index} was expected: a line before it was removed, inserted or "
                "reordered")
    if "hash" not in data and "prev_hash" not in data:
        return ("it has no hash although the lines before it do: promptlab did not write it (a line appended "
                "or edited by hand)") if chained else ""
    if data.get("hash") != event_hash(data):
        return "its content does not match its hash: the line was edited after promptlab wrote it"
    if data.get("prev_hash") != link:
        return ("its prev_hash does not match the line before it: that line was edited, or lines were removed, "
                "inserted or reordered")
    return ""


@dataclass(frozen=True)
class History:
    """The history as read: its events (up to the first unreadable line), its chain, whether every line read."""

    events: tuple[HistoryEvent, ...]
    chain: HistoryChain
    readable: bool = True


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
    """Something wrong in the registry; ``kind`` is invalid, duplicate, modified, missing, alias, evidence or
    history (a broken hash chain)."""

    kind: str
    ref: str
    message: str


@dataclass(frozen=True)
class View:
    """One consistent read of the registry: the version files (and the unreadable ones) and the history."""

    files: dict[tuple[str, str], VersionFile]
    problems: tuple[Problem, ...]
    ledger: Ledger
    chain: HistoryChain = HistoryChain()


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
        """Every history event, oldest first (`IntegrityError` naming the line when one is not an event)."""
        history = self.history()
        if not history.readable:
            raise IntegrityError(history.chain.message)
        return list(history.events)

    def history(self) -> History:
        """The events and the state of the hash chain; reading stops at the first line that is not an event."""
        return _parse_history(self._history_text())

    def _history_text(self) -> str:
        return self.history_path.read_text(encoding="utf-8") if self.history_path.exists() else ""

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

    def view(self, *, trusted: bool = True) -> View:
        """Read the version files and the history once.

        Args:
            trusted: refuse (`IntegrityError`, naming the first bad line) when the history's hash chain is
                broken — every read that serves a version or moves one does; ``False`` reads the events before
                the bad line, for `problems` and listings.
        """
        files, problems = self.scan()
        history = self.history()
        if trusted and not history.chain.intact:
            raise IntegrityError(history.chain.message)
        events = history.events if history.chain.intact else history.events[: history.chain.events]
        return View(files, problems, lc.replay(events), history.chain)

    def aliases(self, env: str) -> dict[str, AliasEntry]:
        """The entries of ``configs/<env>.yaml`` by prompt name."""
        if env not in ENVIRONMENTS:
            raise RegistryError(f"unknown environment {env!r}; the environments are {list(ENVIRONMENTS)!r}.")
        data = lc.read_config(self.configs_dir / f"{env}.yaml", env)
        aliases, problems = check(AliasFile, data or {"environment": env})
        if problems:
            raise RegistryError(report(f"configs/{env}.yaml", "alias file", problems,
                                       "Restore it from git (it holds `environment:` and `prompts: {name: {version, "
                                       "file, content_hash}}`)."))
        return dict(aliases.prompts)

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
        files that disagree with the history, evidence files that are gone, and the first line that breaks the
        history's hash chain."""
        view = self.view(trusted=False)
        found = list(view.problems)
        if not view.chain.intact:
            found.append(Problem("history", f"{HISTORY}:{view.chain.bad_line}", view.chain.message))
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
        for env in ENVIRONMENTS:
            on_file, expected = self.aliases(env), ledger.live(env)
            for name in sorted(set(on_file) | set(expected)):
                message = alias_problem(env, name, on_file.get(name), ledger)
                problems += [Problem("alias", name, message)] if message else []
        return problems + _stale_staging(ledger)

    def checked_alias(self, env: str, name: str, view: View) -> AliasEntry | None:
        """The alias entry of ``name`` in ``env`` if the history backs it (None when neither has one);
        `IntegrityError` when the alias file names a version the history never moved there, or another hash."""
        entry = self.aliases(env).get(name)
        message = alias_problem(env, name, entry, view.ledger)
        if message:
            raise IntegrityError(message)
        return entry

    # ---- writing (hold the lock) --------------------------------------------------------------------------------
    def locked(self) -> _LockGuard:
        """The write lock, as a context manager."""
        self.configs_dir.mkdir(parents=True, exist_ok=True)
        return _LockGuard(self._lock)

    def append(self, **fields: Any) -> HistoryEvent:
        """Append one event to the history, numbered and chained after the last one (the caller holds the lock).

        Raises:
            IntegrityError: the chain is broken; nothing is appended to a history that cannot be trusted.
        """
        text = self._history_text()
        history = _parse_history(text)
        if not history.chain.intact:
            raise IntegrityError(history.chain.message)
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        draft = HistoryEvent.model_validate({"seq": len(history.events) + 1, "at": at, **fields,
                                             "prev_hash": history.chain.head})
        data = draft.model_dump(mode="json", exclude_defaults=True)
        data["hash"] = event_hash(data)
        line = json.dumps(data, ensure_ascii=False)
        atomic_write(self.history_path, text + ("\n" if text and not text.endswith("\n") else "") + line + "\n")
        return HistoryEvent.model_validate(data)

    def set_alias(self, env: str, name: str, found: VersionFile) -> None:
        """Point ``configs/<env>.yaml``'s entry for ``name`` at ``found`` (the caller holds the lock)."""
        entries = self.aliases(env)
        entries[name] = AliasEntry(version=found.prompt.version, file=found.path,
                                   content_hash=found.prompt.content_hash)
        data = {"environment": env, "prompts": {n: e.model_dump() for n, e in sorted(entries.items())}}
        body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        atomic_write(self.configs_dir / f"{env}.yaml", _ALIAS_HEADER.format(env=env) + body)


def _parse_history(text: str) -> History:
    """Parse the history's lines and check their chain; parsing stops at the first line that is not an event."""
    lines: list[tuple[int, dict[str, Any]]] = []
    events: list[HistoryEvent] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            data, problems = None, [f"not JSON: {exc}"]
        else:
            event, problems = check(HistoryEvent, data)
            problems = [f"{problem.field}: {problem.text}" if problem.field else problem.text for problem in problems]
        if problems:
            reason = "; ".join(problems)
            chain = check_chain(lines)
            if chain.intact:  # the lines before are fine: the unreadable one is the first bad line
                chain = replace(chain, bad_line=number, problem=f"not a history event ({reason})")
            return History(tuple(events), chain, readable=False)
        events.append(event)
        lines.append((number, data))
    return History(tuple(events), check_chain(lines))


def alias_problem(env: str, name: str, entry: AliasEntry | None, ledger: Ledger) -> str:
    """Why ``configs/<env>.yaml``'s entry for ``name`` cannot be trusted ('' when the history backs it).

    The entry must name the version the history says is live in ``env`` (a version gets there only by a gated
    move or a rollback to one), with the content hash that version was registered with.
    """
    path, live = f"configs/{env}.yaml", ledger.live(env).get(name)
    fix = (f"Aliases move only through the gates: promptlab promote {name} VERSION --to {env} (or promptlab "
           f"rollback {name} --env {env}); or restore the alias file: git checkout -- {path}.")
    if entry is None:
        return "" if live is None else (f"{path} has no entry for {name!r}, but the history says {env} serves "
                                        f"{name}@{live}; {fix}")
    if entry.version != live:
        state = ledger.state(name, entry.version)
        ref = f"{name}@{entry.version}"
        was = f"{ref} is in state {state!r}" if state else f"{ref} is not registered"
        says = f"the history says {live!r}" if live else f"the history says nothing is live in {env}"
        return (f"{path} says {name!r} is at {entry.version!r} but {says} ({was}); only a gated move or a "
                f"rollback changes what {env} serves, so the alias file was changed by hand. {fix}")
    registered = ledger.registered.get((name, entry.version))
    if registered is not None and entry.content_hash != registered.content_hash:
        return (f"{path} records content hash {entry.content_hash!r} for {name}@{entry.version}, but the history "
                f"registered it with {registered.content_hash!r}. {fix}")
    return ""


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
