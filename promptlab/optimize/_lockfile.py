"""Model drift and the lockfile: floating aliases in prompts and results, the model that actually answered,
and ``promptlab.lock.yaml`` of resolved model ids.

Every results row records the model asked (``model``) and the id the provider said answered
(``model_served``). `served_model_drift` returns the rows where one asked model was answered by several ids,
or by an id other than the lockfile's — a model that changed behind its name. `floating_aliases` finds
floating ids in prompts, prompt files, results or plain ids (`promptlab.providers.pin_status` says which).

The lockfile (``promptlab.lock.yaml``, YAML) records, per asked model, the id that answered, whether the
asked id is pinned, when it was first and last seen and how many calls it answered. `write_lockfile`
creates or extends it (and refuses to overwrite a different served id unless told to), `check_lockfile`
compares new results with it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field

from .._yaml import load_model
from ..authoring._prompt import Prompt, load_prompt
from ..errors import ArgumentError, LockfileError, ModelDriftError
from ..providers._pinning import is_pinned, pin_status

DEFAULT_LOCKFILE = "promptlab.lock.yaml"
"""The lockfile's conventional name, at the project root."""
LOCKFILE_VERSION = 1
ALIAS_COLUMNS = ["model", "source", "pinned", "reason", "suggestion"]
"""Columns of `floating_aliases`."""
DRIFT_COLUMNS = ["model", "model_served", "calls", "runs", "first_seen", "last_seen", "locked", "reason"]
"""Columns of `served_model_drift`."""


def _sources(source: Any) -> list[tuple[str, str]]:
    """(model id, where it was found) pairs from one source."""
    if isinstance(source, Prompt):
        return [(source.model, f"prompt {source.ref}")]
    frame = getattr(source, "df", source)
    if isinstance(frame, pd.DataFrame):
        found = []
        for column in ("model_pinned", "model"):
            if column in frame:
                found += [(str(m), f"results column {column!r}") for m in pd.unique(frame[column].dropna())]
        return found
    if isinstance(source, Path) or (isinstance(source, str) and (source.endswith((".yaml", ".yml"))
                                                                  or Path(source).is_dir())):
        return _from_path(Path(source))
    if isinstance(source, str):
        return [(source, "model id")]
    raise ArgumentError(f"cannot look for model ids in {type(source).__name__!r} {source!r}; pass a model id, a "
                    "Prompt, Results, a results DataFrame, or a prompt file or directory path.")


def _from_path(path: Path) -> list[tuple[str, str]]:
    files = sorted(path.rglob("*.yaml")) + sorted(path.rglob("*.yml")) if path.is_dir() else [path]
    return [(load_prompt(f).model, str(f)) for f in files]


def floating_aliases(*sources: Any, include_pinned: bool = False) -> pd.DataFrame:
    """Model ids that float (may change behind their name), wherever they were found.

    Args:
        *sources: model ids, `Prompt` objects, `Results` (or their frames: the ``model_pinned`` and
            ``model`` columns), prompt files or directories of them (a ``Path``, a ``.yaml`` path string or
            the path of an existing directory).
        include_pinned: also list the pinned ids (with ``pinned`` True).

    Returns:
        One row per (model, source): ``model`` (canonical id), ``source``, ``pinned``, ``reason`` and a
        dated ``suggestion`` from the price table (None when it has none).
    """
    rows, seen = [], set()
    for source in sources:
        for model, where in _sources(source):
            status = pin_status(model)
            if (status.model, where) in seen or (status.pinned and not include_pinned):
                continue
            seen.add((status.model, where))
            rows.append({"model": status.model, "source": where, "pinned": status.pinned,
                         "reason": status.reason, "suggestion": status.suggestion})
    return pd.DataFrame(rows, columns=ALIAS_COLUMNS)


# ---- who answered ------------------------------------------------------------------------------------------
def _run_times(results: Any) -> dict[str, str]:
    meta = getattr(results, "meta", None) or {}
    runs = meta.get("runs") or [meta]
    return {str(m["run_id"]): str(m.get("finished_at") or m.get("started_at") or "")
            for m in runs if m.get("run_id")}


def served_models(results: Any) -> pd.DataFrame:
    """Per asked model and served id: calls answered, runs, and the first and last run time seen.

    Columns: ``model``, ``model_served``, ``calls``, ``runs`` (run ids), ``first_seen``, ``last_seen``
    (ISO timestamps from the results' metadata; None for a bare DataFrame).
    """
    frame = _results_frame(results)
    answered = frame[frame["model_served"].notna()]
    times = _run_times(results)
    rows = []
    for (asked, served), group in answered.groupby(["model", "model_served"], sort=True):
        run_ids = sorted(str(r) for r in pd.unique(group["run_id"].dropna())) if "run_id" in group else []
        stamps = sorted(t for t in (times.get(r) for r in run_ids) if t)
        rows.append({"model": str(asked), "model_served": str(served), "calls": len(group), "runs": run_ids,
                     "first_seen": stamps[0] if stamps else None, "last_seen": stamps[-1] if stamps else None})
    return pd.DataFrame(rows, columns=["model", "model_served", "calls", "runs", "first_seen", "last_seen"])


def _results_frame(results: Any) -> pd.DataFrame:
    frame = getattr(results, "df", results)
    if not isinstance(frame, pd.DataFrame) or not {"model", "model_served"} <= set(frame.columns):
        raise ArgumentError(f"expected promptlab Results or a results DataFrame with 'model' and 'model_served' "
                        f"columns; got {type(results).__name__!r}. Pass what pl.run(...) returned.")
    return frame


def served_model_drift(results: Any, lockfile: str | Path | Lockfile | None = None) -> pd.DataFrame:
    """Where a model changed behind its name: asked models answered by several ids, or by an id other than
    the lockfile's.

    Args:
        results: `Results` (or a results DataFrame; then no timestamps).
        lockfile: a lockfile path or `Lockfile` to compare with; None checks the results alone.

    Returns:
        The offending (model, model_served) rows (`DRIFT_COLUMNS`); empty when nothing drifted. ``reason``
        says why, ``locked`` the lockfile's id.
    """
    seen = served_models(results)
    lock = load_lockfile(lockfile) if isinstance(lockfile, (str, Path)) else lockfile
    counts = seen.groupby("model")["model_served"].transform("nunique")
    locked = seen["model"].map(lambda m: _locked_id(lock, m))
    several = counts > 1
    differs = locked.notna() & (locked != seen["model_served"])
    reason = [_drift_reason(s, d, n, lk) for s, d, n, lk in zip(several, differs, counts, locked, strict=True)]
    out = seen.assign(locked=locked, reason=reason)[several | differs]
    return out[DRIFT_COLUMNS].reset_index(drop=True)


def _locked_id(lock: Lockfile | None, model: str) -> str | None:
    entry = lock.models.get(model) if lock is not None else None
    return entry.served if entry is not None else None


def _drift_reason(several: bool, differs: bool, count: int, locked: str | None) -> str:
    parts = [f"one model name answered by {count} model ids"] if several else []
    if differs:
        parts.append(f"differs from the lockfile (locked: {locked!r})")
    return "; ".join(parts)


# ---- the lockfile ------------------------------------------------------------------------------------------
class LockEntry(BaseModel):
    """What one asked model resolved to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    served: str
    pinned: bool
    first_seen: str
    last_seen: str
    calls: int = Field(ge=0)


class Lockfile(BaseModel):
    """The lockfile: ``version`` and one `LockEntry` per asked model id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = LOCKFILE_VERSION
    models: dict[str, LockEntry] = Field(default_factory=dict)

    def to_yaml(self) -> str:
        """The lockfile as YAML text with an explanatory header."""
        header = ("# promptlab lockfile: the model id that actually answered for each model asked.\n"
                  "# Written by promptlab.optimize.write_lockfile; check new results with check_lockfile.\n")
        return header + yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, width=110)


def load_lockfile(path: str | Path = DEFAULT_LOCKFILE) -> Lockfile:
    """Read a lockfile.

    Raises:
        LockfileError: the file is missing, not YAML, or not in the lockfile format.
    """
    path = Path(path)
    lock = load_model(path, Lockfile, LockfileError, "lockfile",
                      fix="Create or write it again with write_lockfile(results, path).")
    if lock.version != LOCKFILE_VERSION:
        raise LockfileError(f"{path}: lockfile version {lock.version!r} is not supported (expected "
                            f"{LOCKFILE_VERSION!r}). Write it again with this promptlab.")
    return lock


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def resolve_models(results: Any) -> dict[str, LockEntry]:
    """The lock entry of every asked model in ``results``.

    Raises:
        ModelDriftError: an asked model was answered by several ids (its ``drift`` lists them).
    """
    seen = served_models(results)
    drift = served_model_drift(results)
    if len(drift):
        raise ModelDriftError(f"cannot lock: {sorted(set(drift['model']))!r} were answered by several model ids "
                              f"({drift[['model', 'model_served', 'calls']].to_dict('records')!r}). Pass the "
                              "results of one run, or pin the model to a dated id.", drift)
    now = _now()
    return {r.model: LockEntry(served=r.model_served, pinned=is_pinned(r.model), first_seen=r.first_seen or now,
                               last_seen=r.last_seen or now, calls=int(r.calls)) for r in seen.itertuples()}


def _merge(old: LockEntry | None, new: LockEntry, model: str, accept_changes: bool) -> LockEntry:
    if old is None or (old.served != new.served and accept_changes):
        return new
    if old.served != new.served:
        raise ModelDriftError(f"model {model!r} is locked to {old.served!r} but was answered by {new.served!r}. "
                              "Check the change (test_model_compatibility), then accept it with "
                              "write_lockfile(..., accept_changes=True).")
    return old.model_copy(update={"first_seen": min(old.first_seen, new.first_seen),
                                  "last_seen": max(old.last_seen, new.last_seen),
                                  "calls": old.calls + new.calls})


def write_lockfile(results: Any, path: str | Path = DEFAULT_LOCKFILE, *,
                   accept_changes: bool = False) -> Lockfile:
    """Create or extend the lockfile with the models that answered in ``results``.

    Entries already in the file keep their first-seen time and add the new calls; models not in the results
    stay as they are.

    Args:
        results: `Results` of one or more runs.
        path: the lockfile (created if missing).
        accept_changes: replace entries whose served id changed (otherwise that is an error).

    Raises:
        ModelDriftError: an asked model answered by several ids in ``results``, or by an id other than the
            locked one (without ``accept_changes``).
    """
    path = Path(path)
    old = load_lockfile(path) if path.exists() else Lockfile()
    merged = dict(old.models)
    for model, entry in resolve_models(results).items():
        merged[model] = _merge(old.models.get(model), entry, model, accept_changes)
    lock = Lockfile(models=dict(sorted(merged.items())))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(lock.to_yaml(), encoding="utf-8")
    return lock


LOCK_STATUSES = ("ok", "drift", "several", "not locked")
"""Per-model statuses of `check_lockfile`: same id as locked, a different id, several ids, no entry."""


def check_lockfile(results: Any, path: str | Path | Lockfile = DEFAULT_LOCKFILE) -> LockCheck:
    """Compare the models that answered in ``results`` with the lockfile.

    Returns:
        A `LockCheck`: one row per asked model with ``locked``, ``served`` (the ids seen), ``calls`` and
        ``status`` (`LOCK_STATUSES`); ``.ok`` is False when any model drifted or answered with several ids.
    """
    lock = path if isinstance(path, Lockfile) else load_lockfile(path)
    seen = served_models(results)
    rows = []
    for model, group in seen.groupby("model", sort=True):
        served = sorted(group["model_served"])
        entry = lock.models.get(model)
        status = ("several" if len(served) > 1 else "not locked" if entry is None
                  else "ok" if served == [entry.served] else "drift")
        rows.append({"model": model, "locked": entry.served if entry else None, "served": ", ".join(served),
                     "calls": int(group["calls"].sum()), "pinned": is_pinned(model), "status": status})
    columns = ["model", "locked", "served", "calls", "pinned", "status"]
    return LockCheck(pd.DataFrame(rows, columns=columns), served_model_drift(results, lock))


class LockCheck:
    """The outcome of `check_lockfile`.

    Attributes:
        df: one row per asked model: ``model``, ``locked``, ``served``, ``calls``, ``pinned``, ``status``.
        drift: the offending rows of `served_model_drift` (empty when ``ok``).
    """

    def __init__(self, df: pd.DataFrame, drift: pd.DataFrame):
        self.df = df
        self.drift = drift

    @property
    def ok(self) -> bool:
        """True when no model drifted or answered with several ids (unlocked models are reported, not failed)."""
        return not self.df["status"].isin(["drift", "several"]).any()

    def raise_for_drift(self) -> None:
        """Raise `ModelDriftError` (with the offending rows) unless ``ok`` — for CI gates."""
        if not self.ok:
            bad = self.df[self.df["status"].isin(["drift", "several"])]
            raise ModelDriftError(f"served models changed behind their names: {bad.to_dict('records')!r}. "
                                  "Run test_model_compatibility on the new model, then "
                                  "write_lockfile(..., accept_changes=True).", self.drift)

    def __repr__(self) -> str:
        counts = self.df["status"].value_counts().to_dict()
        parts = ", ".join(f"{k}: {v}" for k, v in counts.items())
        return f"<LockCheck {'ok' if self.ok else 'DRIFT'} ({parts or 'no models'})>"

    def _repr_html_(self) -> str:
        from .._display import lock_check_html

        return lock_check_html(self)

