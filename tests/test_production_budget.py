"""Token budget: persisted, refuses clearly, resets by period, exact under threads and processes."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest

from promptlab.errors import TokenBudgetExceeded
from promptlab.production._budget import TokenBudget, period_key


class Clock:
    def __init__(self, when: dt.datetime):
        self.when = when

    def __call__(self) -> dt.datetime:
        return self.when


def test_reserve_settle_and_refuse(tmp_path):
    budget = TokenBudget(tmp_path / "b.db", limit_tokens=1000, name="support", period="total")
    held = budget.reserve(600)
    assert budget.used == 600
    budget.settle(held, 250)  # the call used less than its worst case
    assert (budget.used, budget.remaining) == (250, 750)
    with pytest.raises(TokenBudgetExceeded) as info:
        budget.reserve(800)
    err = info.value
    assert (err.budget, err.used, err.requested, err.limit, err.period) == ("support", 250, 800, 1000, "total")
    assert "'support'" in str(err) and "800" in str(err) and "250 of 1000" in str(err)
    assert budget.used == 250  # a refusal holds nothing
    budget.settle(budget.reserve(100), None)  # unknown actual: the reservation counts as used
    assert budget.used == 350
    assert budget.can_spend(650) and not budget.can_spend(651)
    assert budget.charge(650) == 1000
    with pytest.raises(TokenBudgetExceeded):
        budget.charge(1)


def test_refusal_survives_pickling():
    err = pickle.loads(pickle.dumps(TokenBudgetExceeded("b", 5, 10, 12, "2025-01")))
    assert (err.used, err.requested, err.limit) == (5, 10, 12) and "refuses 10 tokens" in str(err)


def test_usage_survives_a_restart(tmp_path):
    TokenBudget(tmp_path / "b.db", limit_tokens=100, period="total").charge(70)
    again = TokenBudget(tmp_path / "b.db", limit_tokens=100, period="total")
    assert again.used == 70
    with pytest.raises(TokenBudgetExceeded):
        again.reserve(31)
    other = TokenBudget(tmp_path / "b.db", limit_tokens=100, period="total", name="other")
    assert other.used == 0  # budgets in one file are independent


def test_daily_and_monthly_periods_reset(tmp_path):
    clock = Clock(dt.datetime(2025, 1, 31, 23, 59, tzinfo=dt.UTC))
    daily = TokenBudget(tmp_path / "b.db", limit_tokens=100, name="d", period="daily", clock=clock)
    monthly = TokenBudget(tmp_path / "b.db", limit_tokens=100, name="m", period="monthly", clock=clock)
    held = daily.reserve(90)
    monthly.charge(90)
    clock.when = dt.datetime(2025, 2, 1, 0, 1, tzinfo=dt.UTC)
    assert daily.used == 0 and monthly.used == 0
    daily.settle(held, 40)  # settles in the period it was taken from
    assert daily.history()[["period", "used"]].values.tolist() == [["2025-01-31", 40]]
    clock.when = dt.datetime(2025, 2, 20, tzinfo=dt.UTC)
    monthly.charge(100)
    assert monthly.history()["used"].tolist() == [90, 100]
    assert period_key("daily", dt.datetime(2025, 3, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))) == "2025-02-28"


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="period='weekly'"):
        TokenBudget(tmp_path / "b.db", limit_tokens=10, period="weekly")
    budget = TokenBudget(tmp_path / "b.db", limit_tokens=10)
    with pytest.raises(ValueError, match="tokens=-1"):
        budget.reserve(-1)
    with pytest.raises(ValueError, match="tokens=1.5"):
        budget.reserve(1.5)


def test_threads_never_overspend(tmp_path):
    budget = TokenBudget(tmp_path / "b.db", limit_tokens=3000, period="total")
    granted, lock = [], threading.Lock()

    def work() -> None:
        for _ in range(50):
            try:
                budget.reserve(10)
            except TokenBudgetExceeded:
                continue
            with lock:
                granted.append(10)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 3000 and budget.used == 3000  # 400 asked, exactly 300 granted


def _charge_many(path: str, times: int) -> int:
    budget = TokenBudget(path, limit_tokens=2500, period="total")
    granted = 0
    for _ in range(times):
        try:
            budget.charge(10)
            granted += 1
        except TokenBudgetExceeded:
            pass
    return granted


def test_processes_never_overspend(tmp_path):
    path = str(tmp_path / "b.db")
    TokenBudget(path, limit_tokens=2500, period="total")  # create the table before the race
    # fork keeps the test quick (spawn re-imports pandas and scipy in every worker); each worker opens its own
    # connection, so no SQLite handle crosses the fork in use
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context(method)) as pool:
        granted = sum(pool.map(_charge_many, [path] * 4, [100] * 4))
    assert granted == 250 and TokenBudget(path, limit_tokens=2500, period="total").used == 2500


def test_repr_and_html(tmp_path):
    budget = TokenBudget(tmp_path / "b.db", limit_tokens=1000, name="support", period="total")
    budget.charge(250)
    assert repr(budget) == "TokenBudget('support', total, used=250 of 1,000 in total)"
    assert "250 of 1,000" in budget._repr_html_()
