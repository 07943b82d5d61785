"""The git-native prompt registry: immutable versions, movable aliases, gated promotion, history, rollback.

Layout (everything is a plain file, so a pull request shows every change)::

    prompts/<group>/<file>.yaml      version files: every YAML under prompts/ is one version of one prompt
    configs/staging.yaml             the live version of each prompt in staging   (written by the registry)
    configs/production.yaml          the live version of each prompt in production
    configs/history.jsonl            append-only, hash-chained: one event per line (who, when, from, to, evidence,
                                     reason, and the hashes that make a hand edit detectable)
    configs/evidence/<id>.json       the numbers a move was based on (+ <id>.parquet: the rows)
    configs/gates.yaml               thresholds of the gates and the checklist (`promptlab.registry._lifecycle`)
    configs/monitoring.yaml          alert rules; configs/fallbacks.yaml: the fallback of each prompt

A version file is a prompt file (`promptlab.authoring._prompt`); ``name`` + ``version`` identify it, so several versions
of one prompt may sit side by side in a group folder, as the bundled ``sentiment.yaml``, ``sentiment_v2.yaml``
and ``sentiment_terse.yaml`` do. A file is a *working copy* until it is registered: `Registry.register`
records its hashes in the history, and from then on the version is immutable — a hand edit is detected by its
hash (`Registry.verify`, ``promptlab status``) and `Registry.get` refuses it. Versions the registry writes
(`register` of an in-memory prompt, `export`) go to ``prompts/<group>/<name>_v<version>.yaml``.
``name@staging``, ``name@production`` and ``name@latest`` (the last registered) are the aliases `get` resolves;
an environment alias is served only if the history backs it (a hand-edited alias file raises `IntegrityError`),
and nothing is served or moved while the history's hash chain is broken (`promptlab.registry._store`).

Writes are atomic (temporary file + ``os.replace``) and serialised by a lock file (``configs/.registry.lock``),
so several processes promoting at once lose nothing.

Modules: this one is the API (`Registry`); `promptlab.registry._status` is its status view,
`promptlab.registry._write_rules` the checks and texts of its writes, `promptlab.registry._article` the article's
`PromptRegistry` over it; `promptlab.registry._store` reads and writes the files; `promptlab.registry._lifecycle`
holds the states, moves, gates and history events;
`promptlab.registry._evidence` summarises evidence; `promptlab.registry._checklist` the production checklist;
`promptlab.authoring._diff` the version diff.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from pathlib import Path
from typing import Any

import pandas as pd

from .._files import atomic_write, current_actor
from ..authoring._diff import PromptDiff
from ..authoring._prompt import ChangelogEntry, Prompt, load_prompt
from ..errors import GateRefused, IntegrityError, RegistryError
from ..providers._pinning import pin_status
from . import _evidence as ev
from . import _lifecycle as lc
from ._checklist import Checklist, Facts, authors, build_checklist, load_fallbacks, load_monitoring
from ._evidence import Evidence
from ._lifecycle import ENVIRONMENTS, GateResult, HistoryEvent
from ._status import RegistryStatus, _version_row
from ._store import (
    AliasEntry,
    HistoryChain,
    Problem,
    RegistryStore,
    View,
    definition_hash,
    find_root,
)
from ._write_rules import (
    _auto_changes,
    _check_new_content,
    _check_new_version,
    _free_version,
    _no_rollback,
    _refuse_unproven_export,
    _same_as_registered,
)

__all__ = ["AliasEntry", "HistoryChain", "Problem", "Registry", "RegistryStatus", "current_actor",
           "definition_hash", "find_root", "parse_ref"]

_CHAIN_FIELDS = {"prev_hash", "hash"}
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def parse_ref(ref: str, version: str | None = None) -> tuple[str, str]:
    """``"name@selector"`` (or ``name`` and ``version``) → ``(name, selector)``; the default is ``latest``."""
    if not isinstance(ref, str) or not ref.strip():
        raise RegistryError(f"a prompt reference must be 'name' or 'name@version', got {ref!r}.")
    name, sep, selector = ref.strip().rpartition("@") if "@" in ref else (ref.strip(), "", "")
    if sep and version is not None and version != selector:
        raise RegistryError(f"{ref!r} names version {selector!r} but version={version!r} was passed; give one.")
    return name, (selector or version or "latest")


# ---- the registry -----------------------------------------------------------------------------------------------
class Registry:
    """The prompt registry of one repository (see the module docstring for the layout).

    Args:
        root: the folder holding ``prompts/`` and ``configs/``; default: found from the current folder upwards.
        policy: gate thresholds (a `GatePolicy` or a YAML path); default ``configs/gates.yaml``.
        lock_timeout_s: how long a write waits for another process's lock before failing.
    """

    def __init__(self, root: str | Path | None = None, *, policy: lc.GatePolicy | str | Path | None = None,
                 lock_timeout_s: float = 60.0):
        self.root = Path(root).resolve() if root is not None else find_root()
        if not self.root.is_dir():
            raise RegistryError(f"registry root {str(self.root)!r} is not a folder. Pass the repository root.")
        self.store = RegistryStore(self.root, lock_timeout_s)
        self.prompts_dir, self.configs_dir = self.store.prompts_dir, self.store.configs_dir
        self._policy = lc.load_policy(policy) if isinstance(policy, (str, Path)) else policy

    # ---- reading ------------------------------------------------------------------------------------------------
    def policy(self) -> lc.GatePolicy:
        """The gate thresholds in force (``configs/gates.yaml`` unless a policy was passed)."""
        return self._policy or lc.load_policy(self.configs_dir / "gates.yaml")

    def events(self) -> list[HistoryEvent]:
        """Every history event, oldest first."""
        return self.store.events()

    def aliases(self, env: str) -> dict[str, AliasEntry]:
        """The entries of ``configs/<env>.yaml`` by prompt name: version, file, content_hash."""
        return self.store.aliases(env)

    def get(self, ref: str, version: str | None = None) -> Prompt:
        """A prompt version: ``get("sentiment_classifier@production")``, ``get(name, version="latest")``.

        Registered versions are checked against their recorded hash (`IntegrityError` when edited by hand);
        an explicit version that is not registered yet is read from its working file. An environment alias is
        served only when the history backs it: the alias file must name the version that the history moved
        there through the gates (or rolled back to), with its registered content hash; and the history's hash
        chain must be intact. Otherwise `IntegrityError` says which file, what it says, what the history says,
        and how to fix it.
        """
        view = self.store.view()
        name, version = self._resolve(*parse_ref(ref, version), view)
        if (name, version) in view.ledger.registered:
            return self.store.verified(name, version, view)
        if (name, version) in view.files:
            return view.files[(name, version)].prompt
        raise RegistryError(self._unknown(name, version, view))

    def registered(self, ref: str, version: str | None = None) -> Prompt:
        """Like `get`, but the version must be registered (a working file is not enough)."""
        return self._registered(ref, version, self.store.view())

    def _registered(self, ref: str, version: str | None, view: View) -> Prompt:
        name, version = self._resolve(*parse_ref(ref, version), view)
        if (name, version) in view.ledger.registered:
            return self.store.verified(name, version, view)
        if (name, version) in view.files:
            raise RegistryError(f"{name}@{version} is not registered. Register it first: "
                                f"registry.register('{name}@{version}') (CLI: promptlab register PATH).")
        raise RegistryError(self._unknown(name, version, view))

    def _resolve(self, name: str, selector: str, view: View) -> tuple[str, str]:
        if selector in ENVIRONMENTS:  # the alias file is trusted only as far as the history backs it
            entry = self.store.checked_alias(selector, name, view)
            if entry is None:
                raise RegistryError(f"nothing is live in {selector} for {name!r}. Promote a version: "
                                    f"registry.promote('{name}@<version>', to={selector!r}).")
            return name, entry.version
        if selector == "latest":
            latest = view.ledger.latest(name)
            if latest is None:
                raise RegistryError(self._unknown(name, None, view))
            return name, latest
        return name, selector

    def _unknown(self, name: str, version: str | None, view: View) -> str:
        keys = [*view.files, *view.ledger.registered]
        names = sorted({n for n, _ in keys})
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3)
            return f"no prompt named {name!r} under {self.prompts_dir}; " + (
                f"did you mean {close!r}?" if close else f"the prompts are {names!r}.")
        known = sorted({v for n, v in keys if n == name})
        if version is None:
            return (f"{name!r} has no registered version yet (files: {known!r}). Register one: "
                    f"registry.register('{name}@{known[0]}') (CLI: promptlab register PATH).")
        return f"{name!r} has no version {version!r}; its versions are {known!r}."

    def path_of(self, ref: str, version: str | None = None) -> Path:
        """The file of a version."""
        prompt = self.get(ref, version)
        return self.root / self.store.scan()[0][(prompt.name, prompt.version)].path

    def state(self, ref: str, version: str | None = None) -> str:
        """The lifecycle state of a version (``unregistered`` for a working file)."""
        prompt = self.get(ref, version)
        return self.store.view().ledger.state(prompt.name, prompt.version) or "unregistered"

    # ---- views ----------------------------------------------------------------------------------------------------
    def history(self, name: str | None = None) -> pd.DataFrame:
        """The history, one row per event (of one prompt if ``name`` is given): who, when, from, to, why.

        The chain's ``prev_hash`` and ``hash`` are left out (`events` has them; `chain` checks them)."""
        columns = [f for f in HistoryEvent.model_fields if f not in _CHAIN_FIELDS]
        rows = [e.model_dump(exclude=_CHAIN_FIELDS) for e in self.events() if name is None or e.prompt == name]
        return pd.DataFrame(rows, columns=columns)

    def versions(self, name: str | None = None) -> pd.DataFrame:
        """Every version, registered or not: prompt, version, state, live (environments), file, model, pinned,
        content_hash, registered_by, registered_at. A broken history is read up to its first bad line (`verify`
        names it)."""
        view = self.store.view(trusted=False)
        live = self.store.live()
        keys = sorted(k for k in set(view.files) | set(view.ledger.registered) if name is None or k[0] == name)
        return pd.DataFrame([_version_row(k, view, live) for k in keys],
                            columns=["prompt", "version", "state", "live", "file", "model", "pinned", "content_hash",
                                     "registered_by", "registered_at"])

    def verify(self) -> tuple[Problem, ...]:
        """Every integrity problem: invalid or clashing files, hand-edited or missing registered versions, alias
        files that disagree with the history, evidence files that are gone, and the first line that breaks the
        history's hash chain (kind ``history``, ref ``configs/history.jsonl:LINE``)."""
        return self.store.problems()

    def chain(self) -> HistoryChain:
        """The state of the history's hash chain: events, legacy (unchained) events, the first bad line."""
        return self.store.history().chain

    def status(self) -> RegistryStatus:
        """Every version, what is live where, every problem (`verify`) and the state of the history's chain."""
        live = self.store.live()
        return RegistryStatus(self.versions(), self.verify(), live, chain=self.chain())

    def diff(self, a: str | Prompt, b: str | Prompt) -> PromptDiff:
        """What changed from ``a`` to ``b`` (refs such as ``"name@1.0.0"``, or `Prompt` objects)."""
        return PromptDiff(a if isinstance(a, Prompt) else self.get(a), b if isinstance(b, Prompt) else self.get(b))

    def pinning(self) -> pd.DataFrame:
        """Every model the registry depends on (version files and fallbacks), flagged when it floats
        (`promptlab.providers._pinning.pin_status`): source, ref, model, pinned, reason, suggestion."""
        rows = [("version", f.prompt.ref, f.prompt.model) for f in self.store.scan()[0].values()]
        fallbacks = load_fallbacks(self.configs_dir / "fallbacks.yaml").prompts
        rows += [("fallback", name, m) for name, fb in fallbacks.items() for m in fb.models]
        checks = [pin_status(model) for _, _, model in rows]
        return pd.DataFrame([{"source": s, "ref": r, "model": m, "pinned": c.pinned, "reason": c.reason,
                              "suggestion": c.suggestion} for (s, r, m), c in zip(rows, checks, strict=True)],
                            columns=["source", "ref", "model", "pinned", "reason", "suggestion"])

    # ---- evidence and gates ---------------------------------------------------------------------------------------
    def evidence(self, ref: str, version: str | None = None) -> list[Evidence]:
        """The evidence attached to a version, oldest first."""
        prompt = self.get(ref, version)
        return self.store.evidence(prompt, self.store.view().ledger)

    def _summarise(self, prompt: Prompt, source: Any, kind: str | None, variant: str | None,
                   actor: str) -> ev.Summary:
        return ev.summarise(source, prompt, self.policy().for_prompt(prompt.name), kind=kind, variant=variant,
                            actor=actor, suite_ids=self._suite_ids(prompt))

    def _suite_ids(self, prompt: Prompt) -> frozenset[str] | None:
        suite = prompt.metadata.get("suite")
        if not isinstance(suite, str) or not (self.root / suite).is_file():
            return None
        from ..authoring._suite import load_suite

        return frozenset(case.id for case in load_suite(self.root / suite))

    def attach(self, ref: str, evidence: Any, *, kind: str | None = None, variant: str | None = None,
               actor: str | None = None) -> Evidence:
        """Attach evidence to a registered version without moving it; returns the stored record.

        Args:
            ref: the version (``name@version``).
            evidence: a `Results`, a `Comparison`, or the path of saved results (.parquet) or a record (.json).
            kind: ``eval``, ``comparison``, ``shadow`` or ``canary`` (default: from the object).
            variant: the comparison's variant that is this version, when its content hash cannot tell.
            actor: who attaches it (default `current_actor`).
        """
        actor = actor or current_actor()
        with self.store.locked():
            prompt = self.registered(ref)
            summary = self._summarise(prompt, evidence, kind, variant, actor)
            record = ev.write_record(summary, self.store.evidence_dir, self.root)
            self.store.append(actor=actor, action="evidence", prompt=prompt.name, version=prompt.version,
                              evidence=(record.id,))
        return record

    def checklist(self, ref: str, version: str | None = None, *, evidence: Any = None,
                  kind: str | None = None) -> Checklist:
        """The production checklist of a version, from its evidence (plus ``evidence``, not stored) and configs."""
        view = self.store.view()
        prompt = self.get(ref, version)
        extra = [self._summarise(prompt, evidence, kind, None, "check").record] if evidence is not None else []
        return self._checklist(prompt, view, self.store.evidence(prompt, view.ledger) + extra)

    def _checklist(self, prompt: Prompt, view: View, records: list[Evidence]) -> Checklist:
        key = (prompt.name, prompt.version)
        record = lc.latest(records, ev.SUITE_KINDS, need_eval=True)
        facts = Facts(prompt, self.policy().for_prompt(prompt.name), record.eval if record else None,
                      view.ledger.registered.get(key), self._intact(key, view), view.ledger.reviews.get(key),
                      load_monitoring(self.configs_dir / "monitoring.yaml").rules_for(prompt.name),
                      load_fallbacks(self.configs_dir / "fallbacks.yaml").prompts.get(prompt.name))
        return build_checklist(facts)

    def _intact(self, key: tuple[str, str], view: View) -> bool:
        try:
            return key in view.ledger.registered and self.store.verified(*key, view) is not None
        except IntegrityError:
            return False

    def gate(self, ref: str, to: str, *, evidence: Any = None, kind: str | None = None,
             reviewer: str | None = None, variant: str | None = None) -> GateResult:
        """The gate of moving a registered version to ``to``, evaluated without moving it (a dry run)."""
        view = self.store.view()
        prompt = self._registered(ref, None, view)
        lc.check_move(prompt.ref, view.ledger.state(prompt.name, prompt.version), to)
        extra = [self._summarise(prompt, evidence, kind, variant, "check").record] if evidence is not None else []
        return self._gate(prompt, to, view, self.store.evidence(prompt, view.ledger) + extra, reviewer)

    def _gate(self, prompt: Prompt, to: str, view: View, records: list[Evidence], reviewer: str | None) -> GateResult:
        thresholds = self.policy().for_prompt(prompt.name)
        if to == "test":
            return lc.gate_test(prompt, records, thresholds, prompt.metadata.get("suite"))
        if to == "review":
            writers = authors(prompt, view.ledger.registered.get((prompt.name, prompt.version)))
            return lc.gate_review(prompt, reviewer, writers)
        if to == "staging":
            return lc.gate_staging(prompt, records, thresholds)
        if to == "production":
            checklist = self._checklist(prompt, view, records)
            return GateResult("production", prompt.ref, checklist.passed,
                              tuple(f"{i.key}: {i.reason}" for i in checklist.failures),
                              tuple(f"{i.key}: {i.needed}" for i in checklist.failures), details=checklist)
        return GateResult("none", prompt.ref, True)

    # ---- writing --------------------------------------------------------------------------------------------------
    def register(self, prompt: Prompt | str | Path, *, group: str | None = None, actor: str | None = None) -> Prompt:
        """Register a version: from then on it is immutable and moves through the lifecycle (state ``draft``).

        Args:
            prompt: a `Prompt` (written to ``prompts/<group>/<name>_v<version>.yaml`` unless a file under
                ``prompts/`` already holds it), the path of a version file, or a ``name@version`` ref.
            group: the folder under ``prompts/`` for a new file (default: beside the prompt's other versions).
            actor: who registers it (default `current_actor`).

        Returns:
            The registered prompt. Registering the same content again changes nothing.

        Raises:
            RegistryError: the version has no changelog entry of its own at the top, its version is reserved,
                it is already registered (or on file) with different content, or another registered version of
                the prompt already has exactly this behaviour (content hash).
        """
        actor = actor or current_actor()
        with self.store.locked():
            prompt, source = self._as_prompt(prompt)
            _check_new_version(prompt)
            view = self.store.view()
            event = view.ledger.registered.get((prompt.name, prompt.version))
            if event is not None:
                return _same_as_registered(prompt, event)
            _check_new_content(prompt, view)
            path = self._file_for(prompt, source, view.files, group)
            self.store.append(actor=actor, action="register", prompt=prompt.name, version=prompt.version,
                              to_state="draft", file=path, content_hash=prompt.content_hash,
                              definition_hash=definition_hash(prompt))
        return prompt

    def _as_prompt(self, prompt: Prompt | str | Path) -> tuple[Prompt, Path | None]:
        if isinstance(prompt, Prompt):
            return prompt, None
        path = Path(prompt)
        if isinstance(prompt, str) and "@" in prompt and not path.exists():
            return self.get(prompt), None
        path = path if path.is_absolute() or path.exists() else self.root / path
        return load_prompt(path), path.resolve()

    def _file_for(self, prompt: Prompt, source: Path | None, files: dict, group: str | None) -> str:
        existing = files.get((prompt.name, prompt.version))
        if existing is not None:
            if definition_hash(existing.prompt) != definition_hash(prompt):
                raise RegistryError(f"{existing.path} already holds {prompt.ref} with different content; give the "
                                    "new prompt its own version (and changelog entry).")
            return existing.path
        if source is not None and self.prompts_dir.resolve() in source.parents:
            return source.relative_to(self.root).as_posix()
        folder = group or next((Path(f.path).parent.relative_to("prompts").as_posix()
                                for (n, _), f in files.items() if n == prompt.name), None)
        if not folder:
            raise RegistryError(f"where should {prompt.ref} go? No other version of {prompt.name!r} is under "
                                "prompts/; pass group='classification' (a folder under prompts/).")
        safe_folder = "/".join(_SAFE.sub("_", part) for part in Path(folder).parts if part not in ("..", ".", "/"))
        stem = f"{_SAFE.sub('_', prompt.name)}_v{_SAFE.sub('_', prompt.version)}"
        path = self.prompts_dir / safe_folder / f"{stem}.yaml"
        if path.exists():
            raise RegistryError(f"{path.relative_to(self.root)} already exists; pass another group= or version.")
        atomic_write(path, prompt.to_yaml())
        return path.relative_to(self.root).as_posix()

    def promote(self, ref: str, to: str, *, evidence: Any = None, kind: str | None = None,
                reviewer: str | None = None, reason: str = "", variant: str | None = None,
                actor: str | None = None) -> HistoryEvent:
        """Move a registered version to lifecycle state ``to`` if its gate passes; the move is recorded.

        Args:
            ref: the version (``name@version``).
            to: ``test``, ``review``, ``staging``, ``production`` (gated), or ``draft`` / ``optimize`` (back).
            evidence: evidence to attach with the move (a `Results`, a `Comparison`, or a saved file's path);
                it is stored only when the move is made.
            kind: the evidence kind (``eval``, ``comparison``, ``shadow``, ``canary``).
            reviewer: the approving reviewer (the review gate).
            reason: why; required for moves back.
            variant: the comparison's variant that is this version, when its content hash cannot tell.
            actor: who moves it (default `current_actor`).

        Returns:
            The history event. Moves into staging or production also move that environment's alias.

        Raises:
            GateRefused: the gate refused; the message names the gate, what failed and what would pass.
            RegistryError: the lifecycle does not allow the move, or the version is not registered.
        """
        actor = actor or current_actor()
        with self.store.locked():
            view = self.store.view()
            prompt = self._registered(ref, None, view)
            state = view.ledger.state(prompt.name, prompt.version)
            lc.check_move(prompt.ref, state, to)
            if to in lc.BACKWARD and not reason.strip():
                raise RegistryError(f"moving {prompt.ref} back to {to!r} needs a reason (what failed, what to "
                                    "change): promote(..., reason='...').")
            new = self._summarise(prompt, evidence, kind, variant, actor) if evidence is not None else None
            records = self.store.evidence(prompt, view.ledger) + ([new.record] if new else [])
            result = self._gate(prompt, to, view, records, reviewer)
            if not result.passed:
                raise GateRefused(lc.refusal_message(result, state, to), gate=result.gate, failures=result.failures,
                                  needed=result.needed, details=result)
            stored = (ev.write_record(new, self.store.evidence_dir, self.root).id,) if new else ()
            return self._record_move(prompt, state, to, stored, reviewer, reason, actor)

    def _record_move(self, prompt: Prompt, state: str, to: str, evidence: tuple[str, ...], reviewer: str | None,
                     reason: str, actor: str) -> HistoryEvent:
        env = to if to in ENVIRONMENTS else None
        previous = self.aliases(env).get(prompt.name) if env else None
        event = self.store.append(actor=actor, action="move", prompt=prompt.name, version=prompt.version,
                                  from_state=state, to_state=to, env=env,
                                  from_version=previous.version if previous else None,
                                  to_version=prompt.version if env else None, evidence=evidence,
                                  reviewer=reviewer if to == "review" else None, reason=reason)
        if env:
            self.store.set_alias(env, prompt.name, self.store.scan()[0][(prompt.name, prompt.version)])
        return event

    def rollback(self, name: str, env: str = "production", *, to: str | None = None, reason: str = "",
                 actor: str | None = None) -> HistoryEvent:
        """Move ``env``'s alias of ``name`` back to the version live before it (or to ``to``); history is kept.

        Raises:
            RegistryError: nothing to roll back to, ``to`` was never live there before, or the target's file was
                edited after registration.
        """
        actor = actor or current_actor()
        if env not in ENVIRONMENTS:
            raise RegistryError(f"unknown environment {env!r}; the environments are {list(ENVIRONMENTS)!r}.")
        with self.store.locked():
            view = self.store.view()
            stack = view.ledger.deployed.get((name, env), ())
            target = to or (stack[-2] if len(stack) >= 2 else None)
            if target is None or target not in stack[:-1]:
                raise RegistryError(_no_rollback(name, env, stack, to))
            self.store.verified(name, target, view)
            event = self.store.append(actor=actor, action="rollback", prompt=name, env=env, from_version=stack[-1],
                                      to_version=target, reason=reason or "rollback")
            self.store.set_alias(env, name, view.files[(name, target)])
        return event

    def export(self, variant: Prompt, evidence: Any = None, *, version: str | None = None,
               changes: str | None = None, author: str | None = None, group: str | None = None,
               override: str = "") -> Prompt:
        """Make a notebook variant (typically the winner of a comparison) a registered version.

        Writes ``prompts/<group>/<name>_v<version>.yaml`` with a new changelog entry, registers it (state
        ``draft``) and attaches ``evidence`` — the `Comparison` or `Results` that made it win.

        Args:
            variant: the prompt to export (e.g. ``base.with_changes(system=...)``).
            evidence: the comparison or results behind it.
            version: its version; default: ``variant.version`` if free, else the next minor version.
            changes: the changelog text; default: the sections changed from the latest version, and the evidence.
            author: who wrote it (default `current_actor`).
            group: the folder under ``prompts/`` (default: beside the prompt's other versions).
            override: why to export although a comparison given as evidence detected no improvement; it is
                recorded in the history beside the evidence, for the reviewer to read.

        Raises:
            RegistryError: a registered version already has exactly this behaviour (content hash).
            GateRefused: the comparison does not show this variant better than its baseline, and no
                ``override`` says why to export it anyway.
            EvidenceError: the evidence holds no rows of this variant.
        """
        author = author or current_actor()
        with self.store.locked():
            view = self.store.view()
            same = [v for (n, v), e in view.ledger.registered.items()
                    if n == variant.name and e.content_hash == variant.content_hash]
            if same:
                raise RegistryError(f"{variant.name}@{same[-1]} is registered with exactly this behaviour (content "
                                    f"hash {variant.content_hash!r}); there is nothing new to export.")
            draft = variant.with_changes(version=version or _free_version(variant, view))
            new = self._summarise(draft, evidence, None, None, author) if evidence is not None else None
            _refuse_unproven_export(draft, new.record if new else None, override)
            base = view.ledger.latest(variant.name)
            text = changes or _auto_changes(self.store.verified(variant.name, base, view) if base else None, draft,
                                            new.record if new else None)
            entry = ChangelogEntry(version=draft.version, date=dt.date.today(), author=author, changes=text)
            older = tuple(e for e in variant.changelog if e.version != draft.version)
            exported = draft.with_changes(changelog=(entry, *older))
            self.register(exported, group=group, actor=author)
            if new is not None:
                record = ev.write_record(new, self.store.evidence_dir, self.root)
                self.store.append(actor=author, action="evidence", prompt=exported.name, version=exported.version,
                                  evidence=(record.id,), reason=f"exported by override: {override}" if override else "")
        return exported

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    def _repr_html_(self) -> str:
        return self.status()._repr_html_()
