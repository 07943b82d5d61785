"""The run store: every run recorded with its provenance, to be listed, loaded and compared again.

Where: ``$PROMPTLAB_RUNS_DIR``, else ``<project root>/.promptlab/runs/`` (the project root of the response cache,
`promptlab.evaluation._cache.project_root`). Per run, three files named by its ``run_id``:

* ``<run_id>.json`` — the index entry: provenance (suite file, its sha256, case ids and how they were sampled,
  prompt names, versions and hashes, models asked and served, params, git commit and dirty flag, promptlab
  version, start and end, cost, cache hits and misses) and the status;
* ``<run_id>.parquet`` — the rows, as `Results.save` writes them, once the run has ended;
* ``<run_id>.partial.jsonl`` — a journal while the run lasts: one line per finished call (unscored), handed to
  the OS at least every `JOURNAL_FLUSH_S` (50 ms) of calls and at the end, so rows survive a crash (a write per
  call would block the event loop for the syscall on every call of a busy run).

One file per run and no shared index: two processes recording at once never write the same file, so both land
without a lock. Files are written through a temporary name and renamed, so a reader never sees half a file.

Status: ``running`` (its process is alive), ``complete``, ``interrupted`` (Ctrl-C; the rows so far are kept,
unscored) and ``incomplete`` (an error stopped it, or its process died without ending it: the journal's rows).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .._files import atomic_write
from .._version import __version__
from ..errors import ArgumentError, UnknownNameError
from ._cache import project_folder, project_root

if TYPE_CHECKING:
    import pandas as pd

    from ._results import Results

STATUSES = ("running", "complete", "interrupted", "incomplete")
KINDS = ("run", "comparison", "judge")
LIST_COLUMNS = ["run_id", "started_at", "status", "kind", "suite", "suite_sha256", "cases", "sample", "variants",
                "prompts", "models", "rows", "errors", "passed", "cost_usd", "cache_hits", "cache_misses",
                "git_commit", "git_dirty", "promptlab_version", "finished_at", "host", "pid"]


JOURNAL_FLUSH_S = 0.05
"""The longest a finished call's journal line waits in the process before it is handed to the OS (while calls
keep finishing; the last lines are handed over when the run ends or stops)."""


def runs_dir() -> Path:
    """The run store's folder: ``$PROMPTLAB_RUNS_DIR``, else ``<project root>/.promptlab/runs``."""
    return project_folder("runs")


# ---- recording ------------------------------------------------------------------------------------------
class RunRecorder:
    """Records one run as it goes: the entry at the start, a journal line per call, the rows at the end.

    Every method swallows file errors with a warning: a run that cannot be recorded still returns its results.
    """

    def __init__(self, run_id: str, entry: dict[str, Any], folder: Path):
        self.run_id, self.entry, self.folder = run_id, entry, folder
        self._journal: IO[str] | None = None
        self._flushed_at = 0.0  # time.monotonic() of the journal's last flush
        self._git = _GitProbe(project_root())  # runs while the calls are made: no added wait at the end

    def begin(self) -> RunRecorder:
        """Write the entry (status ``running``) and open the journal."""
        self._safely(self._begin)
        return self

    def _begin(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_json(self.folder / f"{self.run_id}.json", self.entry, durable=False)  # a marker: rewritten at the end
        self._journal = open(self._path(".partial.jsonl"), "a", encoding="utf-8", buffering=1 << 20)  # noqa: SIM115 - closed at the end

    def record(self, outcome: Any) -> None:
        """One journal line for a finished call (called per call: kept to a dumps and a buffered write)."""
        if self._journal is not None:
            try:
                self._journal.write(_journal_json(_journal_row(outcome)) + "\n")
                if (now := time.monotonic()) - self._flushed_at >= JOURNAL_FLUSH_S:
                    self._journal.flush()  # in the OS's hands: survives the process dying
                    self._flushed_at = now
            except (OSError, TypeError, ValueError) as exc:
                self._journal = None
                warnings.warn(f"promptlab could not journal run {self.run_id}: {exc}", stacklevel=2)

    def finish(self, results: Results, state: Any) -> None:
        """The run ended with every row: write the rows, mark it complete, drop the journal; the provenance
        joins ``results.meta``."""
        results.meta.update(self._ending(state, "complete", None))
        self._safely(lambda: self._end(results))

    def stop(self, state: Any, error: BaseException) -> None:
        """The run stopped early: mark it interrupted (Ctrl-C) or incomplete (an error), keeping the journal's
        rows as its rows."""
        interrupted = isinstance(error, KeyboardInterrupt) or type(error).__name__ == "CancelledError"
        status = "interrupted" if interrupted else "incomplete"
        reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        ending = self._ending(state, status, reason)
        self._safely(lambda: self._end(None, ending))

    def _ending(self, state: Any, status: str, reason: str | None) -> dict[str, Any]:
        cost = None if state.cost_unknown else float(state.spent)
        self.entry.update({
            "status": status, "stopped": reason or state.stopped_reason,
            "finished_at": dt.datetime.now(dt.UTC).isoformat(), "git": self._git.result(),
            "cost_usd": cost, "cache": {"hits": state.hits, "misses": state.misses, "enabled": state.cache is not None},
        })
        return {"status": status, "git": self.entry["git"], "host": self.entry["host"], "pid": self.entry["pid"]}

    def _end(self, results: Results | None, ending: dict | None = None) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        journal = self._path(".partial.jsonl")
        if results is None:
            results = _from_journal(journal, self.run_id, {**self.entry, **(ending or {})})
        self.entry.update(_tally(results))
        _save_rows(results, self._path(".parquet"))
        _write_json(self._path(".json"), self.entry)
        journal.unlink(missing_ok=True)

    def _path(self, suffix: str) -> Path:
        return self.folder / f"{self.run_id}{suffix}"

    def _safely(self, step: Any) -> None:
        try:
            step()
        except (OSError, ValueError, TypeError) as exc:  # a full disk or a read-only project must not lose the run
            warnings.warn(f"promptlab could not record run {self.run_id} in {self.folder}: {exc}. The results "
                          "are returned as usual; set PROMPTLAB_RUNS_DIR to a writable folder, or run with "
                          "record=False.", stacklevel=3)


def start_recording(run_id: str, prepared: Any, started: dt.datetime) -> RunRecorder | None:
    """The recorder of a run about to start (its entry already written), or None when ``record=False``."""
    if not getattr(prepared.opts, "record", True):
        return None
    entry = {
        "run_id": run_id, "status": "running", "started_at": started.isoformat(), "finished_at": None,
        "promptlab_version": __version__, "host": socket.gethostname(), "pid": os.getpid(),
        "entry_point": _entry_point(), "suite": prepared.provenance,
        "prompts": {name: {"name": p.name, "version": p.version, "hash": p.content_hash, "model_pinned": p.model}
                    for name, p in prepared.named.items()},
        "models_asked": sorted({job.model_id for job in prepared.jobs}),
        "params": _jsonable(dict(prepared.opts.params)) if prepared.opts.params else None,
        "repeats": prepared.opts.repeats, "seed": prepared.opts.seed, "calls": len(prepared.jobs),
    }
    return RunRecorder(run_id, entry, runs_dir()).begin()


def suite_provenance(suite: Any, case_ids: bool = True) -> dict[str, Any]:
    """The suite as a run records it: name, file (relative to the project root when inside it), the file's sha256
    (a suite built in code: of its cases), cases in the file, the case ids run (unless ``case_ids=False``) and how
    they were cut from the file (sample, filter)."""
    source = getattr(suite, "source", None) or {}
    # the file's bytes when read from one; a suite built in code is known by its cases (their YAML layout)
    digest, of = (source["sha256"], "file") if source.get("sha256") else (_cases_sha256(suite), "cases")
    return {"name": suite.name, "path": _relative(source.get("path")), "sha256": digest, "sha256_of": of,
            "cases_in_file": source.get("cases"), "cases": len(suite),
            **({"case_ids": [case.id for case in suite]} if case_ids else {}),
            "subset": list(getattr(suite, "subset", []) or []),
            "labels": list(suite.labels) if suite.labels else None}


def record_artifact(kind: str, table: pd.DataFrame, *, sources: list[str], details: dict[str, Any]) -> str | None:
    """Record a comparison or a judge pass: an entry naming the runs it read (``sources``) and its table.

    Returns the record's id, or None when the store cannot be written (a warning says why; the caller's
    result is never lost to the store).
    """
    if kind not in KINDS[1:]:
        raise ArgumentError(f"kind={kind!r}: records besides runs are {list(KINDS[1:])}.")
    now = dt.datetime.now(dt.UTC).isoformat()
    record_id = uuid.uuid4().hex[:12]
    entry = {"run_id": record_id, "kind": kind, "status": "complete", "started_at": now, "finished_at": now,
             "sources": list(sources), "details": details, "rows": len(table), "promptlab_version": __version__,
             "git": _GitProbe(project_root()).result(), "host": socket.gethostname(), "pid": os.getpid(),
             "entry_point": _entry_point(), "suite": {}}
    folder = runs_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        rows = folder / f"{record_id}.parquet"
        tmp = rows.with_name(f".{rows.name}.{os.getpid()}.tmp")
        table.astype({c: "string" for c in table.columns if table[c].dtype == object}).to_parquet(tmp, index=False)
        os.replace(tmp, rows)
        _write_json(folder / f"{record_id}.json", entry)
    except OSError as exc:
        warnings.warn(f"the {kind} was not recorded in the run store ({folder}): {exc}", stacklevel=3)
        return None
    return record_id


# ---- reading --------------------------------------------------------------------------------------------
def runs(status: str | None = None, suite: str | None = None, limit: int | None = None,
         kind: str | None = None) -> pd.DataFrame:
    """The recorded runs as a DataFrame, newest first (columns `LIST_COLUMNS`).

    Args:
        status: keep runs with this status (``complete``, ``interrupted``, ``incomplete``, ``running``).
        suite: keep runs of this suite (its name, or its file's path as recorded).
        limit: at most this many (the newest).
        kind: keep one kind of record: ``run`` (an evaluation), ``comparison`` (`pl.compare`) or ``judge``
            (a judge pass, `rejudge`).

    A run left ``running`` by a process that no longer exists shows as ``incomplete``.
    """
    import pandas as pd

    if status is not None and status not in STATUSES:
        raise ArgumentError(f"status={status!r} is not a run status; use one of {list(STATUSES)}.")
    if kind is not None and kind not in KINDS:
        raise ArgumentError(f"kind={kind!r} is not a kind of record; use one of {list(KINDS)}.")
    entries = [e for e in _entries() if (status is None or e["status"] == status)
               and (kind is None or e.get("kind", "run") == kind)
               and (suite is None or suite in ((e.get("suite") or {}).get("name"), (e.get("suite") or {}).get("path")))]
    frame = pd.DataFrame([_list_row(e) for e in entries], columns=LIST_COLUMNS)
    frame = frame.sort_values("started_at", ascending=False, kind="stable").reset_index(drop=True)
    return frame.head(limit) if limit is not None else frame


def run_entry(run_id: str) -> dict[str, Any]:
    """The full provenance entry of one run (an id or a unique prefix of one)."""
    return _read_entry(_resolve(run_id))


def load_run(run_id: str) -> Results | pd.DataFrame:
    """The `Results` of a recorded run, by its id or a unique prefix of it (``pl.runs()`` lists them); for a
    recorded comparison or judge pass, its table (a DataFrame; ``.attrs["promptlab"]`` holds the entry).

    A run that did not complete gives the rows it had (a crashed run's come from its journal, unscored); its
    ``meta["status"]`` says so.
    """
    from ._results import Results

    path = _resolve(run_id)
    entry = _read_entry(path)
    rows = path.with_suffix(".parquet")
    if entry.get("kind", "run") != "run":  # a comparison's or a judge pass's table
        import pandas as pd

        table = pd.read_parquet(rows)
        table.attrs["promptlab"] = entry
        return table
    if rows.exists():
        results = Results.load(rows)
    else:
        results = _from_journal(path.with_name(f"{path.stem}.partial.jsonl"), path.stem, entry)
    suite = {key: value for key, value in (entry.get("suite") or {}).items() if key != "case_ids"}  # in the rows
    results.meta.update({"status": entry["status"], "suite": suite or results.meta.get("suite"),
                         "git": entry.get("git")})
    return results


def gc_runs(keep: int | None = None, older_than_days: float | None = None, status: str | None = None,
            dry_run: bool = False) -> list[str]:
    """Delete stored runs; the ids deleted (or, with ``dry_run``, that would be), oldest first.

    A run is deleted when it matches every condition given: not among the newest ``keep`` runs, started more than
    ``older_than_days`` ago, and with this ``status``. A run still ``running`` is never deleted.

    Raises:
        ArgumentError: no condition given (gc never empties the store by default), or a bad value.
    """
    if keep is None and older_than_days is None and status is None:
        raise ArgumentError("gc needs a condition: keep=N / --keep N (the newest N stay), older_than_days=D / "
                            "--older-than-days D, or status= / --status (e.g. incomplete); it never deletes every "
                            "run by default.")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 0):
        raise ArgumentError(f"keep={keep!r} must be a whole number >= 0 (the newest runs kept).")
    if older_than_days is not None and not (isinstance(older_than_days, int | float) and older_than_days >= 0):
        raise ArgumentError(f"older_than_days={older_than_days!r} must be a number of days >= 0.")
    listed = runs(status=status)
    doomed = listed[listed["status"] != "running"]
    if keep is not None:
        doomed = doomed[~doomed["run_id"].isin(listed["run_id"].head(keep))]
    if older_than_days is not None:
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)
        started = doomed["started_at"].map(dt.datetime.fromisoformat)
        doomed = doomed[started < cutoff]
    ids = list(doomed["run_id"])[::-1]
    if not dry_run:
        folder = runs_dir()
        for run_id in ids:
            for suffix in (".parquet", ".partial.jsonl", ".json"):  # the entry last: a half-deleted run still lists
                (folder / f"{run_id}{suffix}").unlink(missing_ok=True)
    return ids


def _entries() -> list[dict[str, Any]]:
    folder = runs_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob("*.json"):
        try:
            found.append(_read_entry(path))
        except (OSError, ValueError):  # a stray or damaged file is skipped, not fatal to the listing
            continue
    return found


def _read_entry(path: Path) -> dict[str, Any]:
    entry = json.loads(path.read_text(encoding="utf-8"))
    if entry.get("status") == "running" and not _alive(entry.get("host"), entry.get("pid")):
        entry["status"] = "incomplete"
        entry["stopped"] = entry.get("stopped") or "the process recording it ended without finishing the run"
    return entry


def _resolve(run_id: str) -> Path:
    if not isinstance(run_id, str) or not run_id.strip():
        raise ArgumentError(f"a run id is text such as 'a1b2c3d4e5f6' (pl.runs() lists them); got {run_id!r}.")
    folder = runs_dir()
    matches = sorted(folder.glob(f"{run_id.strip()}*.json")) if folder.is_dir() else []
    exact = [p for p in matches if p.stem == run_id.strip()]
    if exact:
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ArgumentError(f"run id prefix {run_id!r} matches {len(matches)} runs: "
                            f"{[p.stem for p in matches[:10]]}. Give more characters.")
    known = [e["run_id"] for e in sorted(_entries(), key=lambda e: e["started_at"], reverse=True)[:10]]
    raise UnknownNameError(f"no run {run_id!r} in {folder}. Newest runs: {known or 'none recorded yet'}. "
                           "List them with pl.runs() or `promptlab runs list`.")


def _list_row(entry: dict[str, Any]) -> dict[str, Any]:
    suite, git, cache = entry.get("suite") or {}, entry.get("git") or {}, entry.get("cache") or {}
    prompts = entry.get("prompts") or {}
    return {
        "run_id": entry["run_id"], "started_at": entry.get("started_at"), "status": entry.get("status"),
        "kind": entry.get("kind", "run"),
        "suite": suite.get("path") or suite.get("name"), "suite_sha256": suite.get("sha256"),
        "cases": suite.get("cases"), "sample": _subset_text(suite.get("subset")), "variants": ", ".join(prompts),
        "prompts": ", ".join(f"{p['name']}@{p['version']}" for p in prompts.values()),
        "models": ", ".join(entry.get("models_asked") or []), "rows": entry.get("rows"),
        "errors": entry.get("errors"), "passed": _passed_text(entry.get("passed")), "cost_usd": entry.get("cost_usd"),
        "cache_hits": cache.get("hits"), "cache_misses": cache.get("misses"), "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"), "promptlab_version": entry.get("promptlab_version"),
        "finished_at": entry.get("finished_at"), "host": entry.get("host"), "pid": entry.get("pid"),
    }


def _passed_text(groups: list[dict] | None) -> str | None:
    """``A: 6/12; B: 12/12`` (passed verdicts of calls; the model joins the name when the run used several);
    None when no call has a verdict (a graded run, or a run stopped before scoring)."""
    if not groups or not any(g["scored"] for g in groups):
        return None
    several = len({g["model"] for g in groups}) > 1
    return "; ".join(f"{g['variant']}{' @ ' + str(g['model']) if several else ''}: {g['passed']}/{g['calls']}"
                     for g in groups)


def _subset_text(subset: list[dict] | None) -> str | None:
    """``sample 10 of 40 (seed 0)`` / ``filter category=edge_case``: how the cases were cut, or None (all)."""
    parts = []
    for cut in subset or []:
        if "sample" in cut:
            s = cut["sample"]
            parts.append(f"sample {min(s['n'], s['of'])} of {s['of']} (seed {s['seed']})")
        elif "filter" in cut:
            parts.append("filter " + " ".join(f"{k}={v}" for k, v in cut["filter"].items()))
    return "; ".join(parts) or None


# ---- pieces ---------------------------------------------------------------------------------------------
class _GitProbe:
    """``git rev-parse HEAD`` and ``git status --porcelain``, asked on a thread while the calls are made (starting
    a process costs milliseconds the event loop should not wait for) and read at the end of the run."""

    def __init__(self, root: Path):
        self._found: dict[str, Any] = {"commit": None, "dirty": None}
        self._thread = threading.Thread(target=self._ask, args=(root,), name="promptlab-git-probe", daemon=True)
        self._thread.start()

    def _ask(self, root: Path) -> None:
        outs = []
        for cmd in (["git", "rev-parse", "HEAD"], ["git", "status", "--porcelain", "-uno"]):
            try:
                done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=10)
            except (OSError, subprocess.SubprocessError):  # no git on this machine, or it hung
                return
            if done.returncode != 0:  # not a git checkout
                return
            outs.append(done.stdout)
        self._found = {"commit": outs[0].strip() or None, "dirty": bool(outs[1].strip())}

    def result(self) -> dict[str, Any]:
        """``{"commit": sha or None, "dirty": bool or None}`` (None: not a git checkout, or no git)."""
        self._thread.join(timeout=15)
        return dict(self._found)


def _alive(host: str | None, pid: int | None) -> bool:
    """Whether the process that started a run still runs (another host's: assumed alive, it cannot be asked)."""
    if host != socket.gethostname():
        return True
    if not isinstance(pid, int):
        return False
    if os.name == "nt":  # signal 0 is CTRL_C_EVENT there: ask psutil when present, else assume it still runs
        try:
            import psutil
        except ImportError:
            return True
        return bool(psutil.pid_exists(pid))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _entry_point() -> str:
    """What started the process: ``notebook`` for a Jupyter kernel, else the script or command's name."""
    argv0 = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return "notebook" if "ipykernel" in sys.modules and "ipykernel" in " ".join(sys.argv) else argv0


def _cases_sha256(suite: Any) -> str | None:
    try:
        text = json.dumps(suite.to_dict(), sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError, AttributeError):  # a case holding something with no text form
        return None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _relative(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).relative_to(project_root()).as_posix()
    except ValueError:
        return path


def _journal_json(row: dict[str, Any]) -> str:
    """One journal line's JSON (`json.dumps` with `_plain` for Decimals and the like; the encoder is built once, not
    per call)."""
    return _JOURNAL_ENCODER.encode(row)


def _journal_row(outcome: Any) -> dict[str, Any]:
    """A call's row as the journal keeps it: what the call gave, before scoring (no pandas needed)."""
    job, done = outcome.job, outcome.completion
    return {
        "case_id": job.case.id, "category": job.case.category, "difficulty": job.case.difficulty,
        "variant": job.variant, "prompt_name": job.prompt.name, "prompt_version": job.prompt.version,
        "prompt_hash": job.prompt.content_hash, "model_pinned": job.prompt.model, "model": job.model_id,
        "model_served": done.model if done else None, "answered_by": outcome.answered_by,
        "served_by": getattr(done, "served_by", None), "repeat": job.repeat,
        "params": job.params, "input": job.case.input, "output": done.text if done else None,
        "expected": job.case.expected, "input_tokens": done.input_tokens if done else None,
        "output_tokens": done.output_tokens if done else None, "cost_usd": outcome.cost_usd,
        "latency_s": done.latency_s if done else None, "finish_reason": done.finish_reason if done else None,
        "cached": outcome.cached, "attempts": outcome.attempts, "error_type": outcome.error_type,
        "error": outcome.error,
    }


def _from_journal(journal: Path, run_id: str, meta: dict[str, Any]) -> Results:
    from ._results import Results, build_frame

    rows = []
    if journal.exists():
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:  # the last line of a killed process may be cut short
                continue
    return Results(build_frame(rows, run_id), dict(meta))


def _tally(results: Results) -> dict[str, Any]:
    """Counts the list shows: rows, failed calls, and per variant × model the calls and the passed verdicts
    (counts only: intervals would load scipy on every run; `Results.accuracy` gives them)."""
    df = results.df
    return {"rows": len(df), "errors": int(df["error_type"].notna().sum()),
            "passed": _group_counts(df["variant"].tolist(), df["model"].tolist(), df["passed"].tolist())}


def _group_counts(variants: list, models: list, verdicts: list) -> list[dict[str, Any]]:
    """``[{variant, model, calls, passed, scored}]`` in the order the groups first appear (a verdict is True,
    False or NA). Counted in Python: on a run's few groups that is a tenth of a pandas groupby."""
    counts: dict[tuple, list[int]] = {}
    for variant, model, verdict in zip(variants, models, verdicts, strict=True):
        group = counts.setdefault((variant, model), [0, 0, 0])
        group[0] += 1
        group[1] += verdict is True
        group[2] += verdict is True or verdict is False
    return [{"variant": variant, "model": model, "calls": calls, "passed": passed, "scored": scored}
            for (variant, model), (calls, passed, scored) in counts.items()]


def _save_rows(results: Results, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        results.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(path: Path, data: dict[str, Any], durable: bool = True) -> None:
    """Write an entry whole or not at all (a temporary file renamed); ``durable`` also syncs it to disk."""
    text = json.dumps(data, ensure_ascii=False, default=_plain)
    if durable:
        atomic_write(path, text)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_plain))


def _plain(value: Any) -> Any:
    """JSON for what rows hold beyond JSON: Decimal costs, NaN and NA (None), other objects as text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ == "NAType":
        return None
    return str(value)


_JOURNAL_ENCODER = json.JSONEncoder(default=_plain, ensure_ascii=False)
