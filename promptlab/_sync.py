"""Synchronous faces over async code, also inside Jupyter (whose loop is already running): `run_sync`.

The one owner of sync-over-async, below every room that needs it (the batch runner, the judge, the
production client, shadow and canary), so none of them imports another for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def on_interrupt(report: Callable[[], BaseException]) -> None:
    """Tell an enclosing `run_sync` what to raise if Ctrl-C stops the work now running (no-op outside one)."""
    if (watcher := _WATCHER.get()) is not None:
        watcher.interrupted = report


def run_sync(coroutine: Any) -> Any:
    """Run a coroutine to completion from synchronous code, also when an event loop is already running
    (Jupyter): then it runs on a worker thread with its own loop.

    Ctrl-C (or a kernel interrupt) stops the coroutine; when the work it started registered `on_interrupt`
    (a batch run does: `RunInterrupted` tells how many calls were done and cached), that exception is raised.
    Other errors are raised as they are, without the frames of asyncio and the worker thread in their traceback.
    """
    watcher = _Watcher()
    token = _WATCHER.set(watcher)
    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(_boxed(coroutine)).value
        return _run_on_a_thread(coroutine)
    except KeyboardInterrupt as exc:
        if watcher.interrupted is None or type(exc) is not KeyboardInterrupt:
            raise
        raise watcher.interrupted() from None
    except Exception as exc:
        # the first entry is this frame, which raising here puts back
        raise exc.with_traceback(_without_plumbing(exc.__traceback__.tb_next))  # noqa: B904 - the same exception
    finally:
        _WATCHER.reset(token)


@dataclass
class _Watcher:
    """Lets `run_sync` ask the work its coroutine started what an interrupt stopped (see `on_interrupt`)."""

    interrupted: Callable[[], BaseException] | None = None


_WATCHER: contextvars.ContextVar[_Watcher | None] = contextvars.ContextVar("promptlab_run_watcher", default=None)


def _run_on_a_thread(coroutine: Any) -> Any:
    """Run on a worker thread with its own loop (the caller's loop is busy running the caller). An
    interrupt while waiting cancels the run there — otherwise it would go on calling models unseen — and
    waits for it to close its connections before the interrupt goes on."""
    started = threading.Event()
    handles: dict[str, Any] = {}

    async def main() -> _Box:
        handles["loop"], handles["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        return await _boxed(coroutine)

    context = contextvars.copy_context()  # carries the watcher into the worker's run
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(context.run, asyncio.run, main())
        try:
            return future.result().value
        except KeyboardInterrupt:
            if started.wait(timeout=5) and not future.done():
                try:
                    handles["loop"].call_soon_threadsafe(handles["task"].cancel)
                except RuntimeError:  # the loop closed in between: the run had finished anyway
                    pass
            concurrent.futures.wait([future])
            raise


# Frames of these modules are plumbing between the caller and the error: dropped from re-raised tracebacks.
_PLUMBING = tuple(str(Path(module.__file__).parent) + os.sep if module.__file__.endswith("__init__.py")
                  else module.__file__ for module in (asyncio, concurrent.futures, threading))


def _without_plumbing(tb: types.TracebackType | None) -> types.TracebackType | None:
    """``tb`` without the frames of asyncio, concurrent.futures and threading (rebuilt, not mutated)."""
    kept = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_PLUMBING):
            kept.append(tb)
        tb = tb.tb_next
    trimmed = None
    for entry in reversed(kept):
        trimmed = types.TracebackType(trimmed, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return trimmed


class _Box:
    """Holds a coroutine's result with a cheap repr. On Python 3.11 `asyncio.run` formats the repr of its
    main task (and so of the task's result) while restoring the SIGINT handler; a `Results` repr computes
    summaries (and imports scipy), which cost a second of CPU per run."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


async def _boxed(coroutine: Any) -> _Box:
    return _Box(await coroutine)


