"""`ServerPool`: OpenAI-compatible servers as one model — spreading by outstanding load, ejection and return of a
failing server, ``served_by`` — against several fake servers (real SDK, real sockets)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from promptlab.errors import ArgumentError, ProviderError
from promptlab.providers import Message, Request, ServerPool
from promptlab.providers._base import normalise_endpoint
from promptlab.providers._ratelimit import reset_limiters
from promptlab.testing import FakeLLMServer


@pytest.fixture(autouse=True)
def _fresh_limiters():
    reset_limiters()
    yield
    reset_limiters()


@pytest.fixture
def servers():
    started = [FakeLLMServer(latency_s=0.02, slots=4).start() for _ in range(3)]
    yield started
    for server in started:
        server.stop()


def request(i: int = 0) -> Request:
    return Request(model="llama", system="", messages=(Message("user", f"case {i}"),), max_tokens=8)


def run_calls(pool: ServerPool, n: int, concurrency: int) -> list:
    async def go():
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i):
            async with semaphore:
                try:
                    return await pool.complete(request(i))
                except ProviderError as error:
                    return error

        try:
            return await asyncio.gather(*(one(i) for i in range(n)))
        finally:
            await pool.aclose()

    return asyncio.run(go())


def test_calls_spread_over_the_servers_and_each_row_names_its_server(servers):
    pool = ServerPool([s.openai_base_url for s in servers], model="llama")
    completions = run_calls(pool, 60, concurrency=12)
    assert all(c.text == f"echo: case {i}" for i, c in enumerate(completions))
    served = Counter(c.served_by for c in completions)
    assert set(served) == {normalise_endpoint(s.openai_base_url) for s in servers}
    assert all(15 <= n <= 25 for n in served.values()), served  # least outstanding: an even spread
    for server in servers:  # served_by is the server that really answered
        mine = normalise_endpoint(server.openai_base_url)
        assert server.request_count == served[mine]
        answered = {body["messages"][-1]["content"] for body in server.bodies()}
        assert answered == {f"case {i}" for i, c in enumerate(completions) if c.served_by == mine}


def test_a_slow_server_gets_fewer_calls(servers):
    servers[0].latency_s = 0.5  # 25 times slower than the others
    pool = ServerPool([s.openai_base_url for s in servers], model="llama")
    completions = run_calls(pool, 60, concurrency=6)
    served = Counter(c.served_by for c in completions)
    slow, *fast = (normalise_endpoint(s.openai_base_url) for s in servers)
    assert served[slow] < min(served[f] for f in fast) / 2, served


def test_a_dead_server_is_ejected_and_its_calls_move_to_the_others(servers):
    dead_port = servers[0].port
    servers[0].stop()
    pool = ServerPool([s.openai_base_url for s in servers], model="llama", eject_s=30)
    completions = run_calls(pool, 30, concurrency=6)
    assert all(not isinstance(c, ProviderError) for c in completions)
    dead = f"http://127.0.0.1:{dead_port}/v1"
    assert dead not in {c.served_by for c in completions}
    stats = {s["endpoint"]: s for s in pool.stats()}
    assert stats[dead]["state"] == "ejected" and 1 <= stats[dead]["failures"] <= 6
    assert stats[dead]["back_in_s"] > 20


def test_an_ejected_server_comes_back_on_probation_then_serves_again(servers):
    restart_port = servers[0].port
    servers[0].stop()
    pool = ServerPool([s.openai_base_url for s in servers], model="llama", eject_s=0.3)
    run_calls(pool, 6, concurrency=3)
    dead = normalise_endpoint(f"http://127.0.0.1:{restart_port}/v1")
    assert {s["endpoint"]: s["state"] for s in pool.stats()}[dead] == "ejected"
    revived = FakeLLMServer(port=restart_port).start()
    try:
        time.sleep(0.35)
        assert {s["endpoint"]: s["state"] for s in pool.stats()}[dead] == "probation"
        completions = run_calls(pool, 30, concurrency=6)
        assert dead in {c.served_by for c in completions}
        assert {s["endpoint"]: s["state"] for s in pool.stats()}[dead] == "healthy"
        assert revived.request_count >= 1
    finally:
        revived.stop()


def test_server_errors_move_the_call_but_a_bad_request_does_not(servers):
    servers[0].fault_rates = {"server_error": 1.0}
    pool = ServerPool([s.openai_base_url for s in servers], model="llama")
    completions = run_calls(pool, 12, concurrency=1)
    assert all(not isinstance(c, ProviderError) for c in completions)
    assert servers[0].request_count == 1  # tried once, then out for eject_s
    servers[1].fault_rates = {"bad_request": 1.0}
    servers[2].fault_rates = {"bad_request": 1.0}
    (error,) = run_calls(pool, 1, concurrency=1)
    assert isinstance(error, ProviderError) and error.error_type == "bad_request"
    assert servers[1].request_count + servers[2].request_count == 12 + 1  # no second server asked


def test_when_every_server_fails_the_last_error_is_raised(servers):
    for server in servers:
        server.fault_rates = {"server_error": 1.0}
    pool = ServerPool([s.openai_base_url for s in servers], model="llama")
    (error,) = run_calls(pool, 1, concurrency=1)
    assert isinstance(error, ProviderError) and error.error_type == "server"
    assert sum(s.request_count for s in servers) == 3  # each server tried once
    (again,) = run_calls(pool, 1, concurrency=1)  # all out: the one due back first is still tried
    assert isinstance(again, ProviderError) and sum(s.request_count for s in servers) == 6


def test_a_rate_limited_server_passes_the_call_on_without_being_ejected(servers):
    servers[0].inject_faults("rate_limit")
    pool = ServerPool([s.openai_base_url for s in servers], model="llama")
    completions = run_calls(pool, 1, concurrency=1)
    assert not isinstance(completions[0], ProviderError)
    assert all(s["state"] == "healthy" for s in pool.stats())


def test_the_pool_runs_as_a_model_and_its_rows_name_the_server(servers):
    import promptlab as pl

    suite = pl.Suite("s")
    for i in range(9):
        suite.add_case(f"case {i}", f"echo: case {i}", id=f"c{i}")
    prompt = pl.Prompt(name="p", version="1", model="pool:llama", template="{{ input }}", max_tokens=8)
    pool = ServerPool([s.openai_base_url for s in servers], model="llama")
    results = pl.run(suite, prompt, pool, progress=False, cache=False)
    assert results.df["error_type"].isna().all()
    assert sum(s.request_count for s in servers) == 9
    assert all(s.request_count >= 1 for s in servers)
    if "served_by" in results.df.columns:  # the row column comes with the runner's side of issue 20
        assert set(results.df["served_by"]) <= set(pool.endpoints)


def timed_calls(pool: ServerPool, n: int, concurrency: int) -> float:
    """Seconds for ``n`` calls, after one warm-up call per server (each SDK client is made on its first call)."""
    async def go():
        async def some(count):
            semaphore = asyncio.Semaphore(concurrency)

            async def one(i):
                async with semaphore:
                    return await pool.complete(request(i))

            await asyncio.gather(*(one(i) for i in range(count)))

        await some(len(pool.endpoints))
        started = time.monotonic()
        await some(n)
        seconds = time.monotonic() - started
        await pool.aclose()
        return seconds

    return asyncio.run(go())


def test_the_pool_is_as_fast_as_its_servers_together():
    with FakeLLMServer(latency_s=0.2, slots=2) as one:  # 10 calls per second at most
        alone = timed_calls(ServerPool([one.openai_base_url], model="llama"), 20, concurrency=12)
    trio = [FakeLLMServer(latency_s=0.2, slots=2).start() for _ in range(3)]
    try:
        together = timed_calls(ServerPool([s.openai_base_url for s in trio], model="llama"), 60, concurrency=12)
    finally:
        for server in trio:
            server.stop()
    speedup = (60 / together) / (20 / alone)
    assert speedup >= 2.4, (alone, together)  # 3× in principle


def test_bad_pools_are_refused():
    with pytest.raises(ArgumentError, match="list of base URLs"):
        ServerPool([])
    with pytest.raises(ArgumentError, match="twice"):
        ServerPool(["http://127.0.0.1:1/v1", "http://127.0.0.1:1/v1/"])
    with pytest.raises(ArgumentError, match="eject_s"):
        ServerPool(["http://127.0.0.1:1/v1"], eject_s=0)


def test_the_cache_identity_names_every_server_but_never_the_key():
    pool = ServerPool(["http://127.0.0.1:2/v1", "http://127.0.0.1:1/v1"], api_key="sk-secret-abcdef")
    identity = pool.cache_identity()
    assert identity["endpoints"] == ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]
    assert "sk-secret" not in repr(identity) and "sk-secret" not in repr(pool)
