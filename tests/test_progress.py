"""The progress bar: done/total, errors and cost so far on every update; ``progress=False`` prints nothing.

Outside a notebook ``tqdm.auto`` is the terminal bar, which writes to stderr; every redraw starts with ``\\r``.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

import promptlab as pl
from promptlab.errors import ProviderError
from promptlab.providers import _prices as prices_module

MODEL = "fake:priced-model"
PROMPT = pl.Prompt(name="p", version="1", model=MODEL, template="{{ input }}")
CALL_USD = 0.003  # 2 input words + 1 output word, at 1000 USD per 1M tokens


@pytest.fixture(autouse=True)
def _price(monkeypatch):
    monkeypatch.setitem(prices_module._overrides, MODEL, prices_module.ModelPrice(Decimal(1000), Decimal(1000)))


def suite(n: int = 4) -> pl.Suite:
    s = pl.Suite("s", labels=["positive", "negative"])
    for i in range(n):
        s.add_case(f"text {i}", "positive", id=f"c{i}")
    return s


def provider() -> pl.FakeProvider:
    """Fails case 0 for good; answers the others. Each call takes longer than tqdm's 0.1 s redraw interval,
    so every update is drawn."""
    failure = ProviderError("bad request", error_type="bad_request", retryable=False)
    return pl.FakeProvider({"text 0": failure}, default="positive", latency_s=0.15, model_name="priced-model")


def bar_states(stderr: str) -> dict[int, str]:
    """The last drawn bar line for each done count."""
    states = {}
    for line in re.split(r"[\r\n]+", stderr):
        if match := re.search(r"\| (\d+)/4 \[", line):
            states[int(match.group(1))] = line
    return states


def test_the_bar_shows_done_total_errors_and_cost_so_far(capfd):
    results = pl.run(suite(), PROMPT, provider(), concurrency=1, cache=False, progress=True,
                     max_error_rate=1.0)
    out, err = capfd.readouterr()
    assert out == ""
    states = bar_states(err)
    assert sorted(states) == [0, 1, 2, 3, 4] and all(line.startswith("promptlab:") for line in states.values())
    for done in (1, 2, 3, 4):  # case 0 fails first; each later call adds its cost
        assert "errors=1" in states[done]
        assert f"cost_usd={(done - 1) * CALL_USD:.4f}" in states[done]
    assert results.df["cost_usd"].sum() == pytest.approx(3 * CALL_USD)


def test_cached_calls_count_as_done_but_cost_nothing_this_run(capfd, tmp_path):
    cache = pl.ResponseCache(tmp_path / "c.sqlite")
    pl.run(suite(), PROMPT, pl.FakeProvider("positive", model_name="priced-model"), cache=cache, progress=False)
    pl.run(suite(), PROMPT, pl.FakeProvider("positive", model_name="priced-model"), cache=cache, progress=True)
    final = bar_states(capfd.readouterr().err)[4]
    assert "errors=0" in final and "cost_usd=0.0000" in final


def test_progress_false_prints_nothing(capfd):
    pl.run(suite(), PROMPT, provider(), concurrency=1, cache=False, progress=False, max_error_rate=1.0)
    assert capfd.readouterr() == ("", "")


def test_unknown_cost_is_not_shown_as_zero(capsys):
    import promptlab as pl

    suite = pl.Suite("s")
    suite.add_case("x", "ok")
    prompt = pl.Prompt(name="p", version="1", model="claude-3-5-sonnet-20241022")
    pl.run(suite, prompt, pl.FakeProvider("ok", model_name="unpriced"), progress=True, cache=False)
    assert "cost_usd=0.0000+?" in capsys.readouterr().err
