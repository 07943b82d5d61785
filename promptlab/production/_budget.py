"""`TokenBudget`: a token cap per period that survives restarts and holds under concurrent callers.

The starting document's ``TokenBudget`` kept a counter in memory: a restart reset it, and two workers each saw
their own. This one keeps the count in SQLite. Every check-and-add runs in one ``BEGIN IMMEDIATE``
transaction, which takes the database's write lock before reading, so threads and processes sharing the file
can never both squeeze under the limit. Periods are UTC calendar days (``daily``), months (``monthly``) or
the whole life of the budget (``total``); a new period starts from zero on its own — nothing has to run at
midnight.

A call reserves its worst case before it is made (input tokens estimated, output at ``max_tokens``) and
settles the actual count after::

    budget = TokenBudget("budget.db", limit_tokens=2_000_000, period="daily")
    held = budget.reserve(1_200)            # raises TokenBudgetExceeded past the limit
    ...                                     # make the call
    budget.settle(held, actual_tokens=850)  # gives back the 350 tokens not used

Past the limit, `reserve` raises `promptlab.errors.TokenBudgetExceeded`, whose message names the budget, the
tokens used, those requested and the limit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import operator
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import ArgumentError, TokenBudgetExceeded

PERIODS = ("daily", "monthly", "total")


@dataclass(frozen=True)
class Reservation:
    """Tokens held for one call, in the period they were taken from (pass it back to `TokenBudget.settle`)."""

    tokens: int
    period: str


def period_key(period: str, when: dt.datetime) -> str:
    """The key of the period containing ``when`` (UTC): ``2025-01-06``, ``2025-01`` or ``total``."""
    when = when.astimezone(dt.UTC) if when.tzinfo else when
    if period == "daily":
        return when.strftime("%Y-%m-%d")
    if period == "monthly":
        return when.strftime("%Y-%m")
    return "total"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TokenBudget:
    """A persisted token budget per period, safe for threads and processes sharing the file.

    Args:
        path: the SQLite file (created if missing; several budgets may share one file by name).
        limit_tokens: tokens allowed per period.
        name: the budget's name (one file can hold many).
        period: ``"daily"`` (UTC days), ``"monthly"`` (UTC months) or ``"total"`` (never resets).
        clock: a function returning the current time (tests pass a fake clock).
    """

    def __init__(self, path: str | Path, *, limit_tokens: int, name: str = "default", period: str = "daily",
                 clock: Callable[[], dt.datetime] = _utcnow):
        if period not in PERIODS:
            raise ArgumentError(f"period={period!r} is not one of {PERIODS!r}.")
        if not isinstance(limit_tokens, int) or limit_tokens < 0:
            raise ArgumentError(f"limit_tokens={limit_tokens!r} must be a whole number >= 0.")
        self.path, self.limit_tokens, self.name, self.period = Path(path), limit_tokens, name, period
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent in the file
            conn.execute("CREATE TABLE IF NOT EXISTS token_budget (name TEXT NOT NULL, period TEXT NOT NULL, "
                         "used INTEGER NOT NULL, PRIMARY KEY (name, period))")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection per operation: nothing stays open, so the budget is safe across fork() (SQLite
        connections must never cross a fork) and between threads, at ~0.1 ms per operation."""
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def current_period(self) -> str:
        """The key of the current period."""
        return period_key(self.period, self._clock())

    def _add(self, period: str, tokens: int, *, check: bool) -> int:
        """Atomically add ``tokens`` to a period's count (refusing past the limit when ``check``)."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT used FROM token_budget WHERE name = ? AND period = ?",
                                   (self.name, period)).fetchone()
                used = row[0] if row else 0
                if check and used + tokens > self.limit_tokens:
                    raise TokenBudgetExceeded(self.name, used, tokens, self.limit_tokens, period)
                conn.execute("INSERT INTO token_budget (name, period, used) VALUES (?, ?, ?) "
                             "ON CONFLICT(name, period) DO UPDATE SET used = used + excluded.used",
                             (self.name, period, tokens))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return used + tokens

    def reserve(self, tokens: int) -> Reservation:
        """Hold ``tokens`` in the current period, or raise `TokenBudgetExceeded` if that passes the limit."""
        tokens = _check_tokens(tokens)
        period = self.current_period()
        self._add(period, tokens, check=True)
        return Reservation(tokens, period)

    def settle(self, reservation: Reservation, actual_tokens: int | None) -> None:
        """Replace a reservation by the tokens actually used (None keeps the whole reservation as used)."""
        if actual_tokens is None:
            return
        delta = _check_tokens(actual_tokens) - reservation.tokens
        if delta:
            self._add(reservation.period, delta, check=False)

    def charge(self, tokens: int) -> int:
        """Record tokens already known (no reservation first), refusing past the limit; returns the new total."""
        return self._add(self.current_period(), _check_tokens(tokens), check=True)

    def can_spend(self, tokens: int) -> bool:
        """Whether ``tokens`` more would fit now (a hint only: use `reserve` to actually hold them)."""
        return self.used + _check_tokens(tokens) <= self.limit_tokens

    @property
    def used(self) -> int:
        """Tokens used (and held) in the current period."""
        with self._connect() as conn:
            row = conn.execute("SELECT used FROM token_budget WHERE name = ? AND period = ?",
                               (self.name, self.current_period())).fetchone()
        return int(row[0]) if row else 0

    @property
    def remaining(self) -> int:
        """Tokens left in the current period."""
        return max(0, self.limit_tokens - self.used)

    def history(self) -> pd.DataFrame:
        """Tokens used per period, oldest first (columns ``period``, ``used``, ``limit_tokens``)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT period, used FROM token_budget WHERE name = ? ORDER BY period",
                                (self.name,)).fetchall()
        return pd.DataFrame(rows, columns=["period", "used"]).assign(limit_tokens=self.limit_tokens)

    def __repr__(self) -> str:
        return (f"TokenBudget({self.name!r}, {self.period}, used={self.used:,} of {self.limit_tokens:,} "
                f"in {self.current_period()})")

    def _repr_html_(self) -> str:
        from .._display import budget_html

        return budget_html(self)


def _check_tokens(tokens: int) -> int:
    try:
        value = operator.index(tokens)
    except TypeError:
        value = -1
    if isinstance(tokens, bool) or value < 0:
        raise ArgumentError(f"tokens={tokens!r} must be a whole number >= 0.")
    return value
