"""Staging: shadow answers are logged and never served; canaries are sticky and roll back by themselves."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

import pytest
from scipy import stats as st

from promptlab import Prompt
from promptlab.errors import ExperimentError, ProviderError
from promptlab.production import Canary, ClientPolicy, EventLog, ProductionClient, Shadow
from promptlab.providers._fake import FakeProvider

LIVE = Prompt(name="sentiment", version="1.0.0", model="fake:live", template="{{ input }}")
CANDIDATE = Prompt(name="sentiment", version="1.1.0", model="fake:candidate", template="Say: {{ input }}")
POLICY = ClientPolicy(retries=0, backoff_s=0.0, timeout_s=5.0)


class Registry:
    def get(self, ref: str) -> Prompt:
        return LIVE


def by_model(live, candidate):
    """A FakeProvider script answering by the request's model (``live``/``candidate``: text or callable)."""

    def script(request):
        chosen = live if request.model == "live" else candidate
        return chosen(request) if callable(chosen) else chosen

    return script


def make_client(tmp_path, script, **options) -> ProductionClient:
    log = EventLog(tmp_path / "events.db")
    return ProductionClient(Registry(), "sentiment", FakeProvider(script), log=log, policy=POLICY, **options)


# ---- shadow ----------------------------------------------------------------------------------------------
def test_shadow_is_logged_with_the_same_request_and_never_served(tmp_path):
    client = make_client(tmp_path, by_model("live answer", "shadow answer"))
    shadow = Shadow(client, CANDIDATE)
    answer = shadow.complete("hello", unit_id="u1")
    assert answer.text == "live answer" and answer.version == "1.0.0"
    assert shadow.drain() == 0
    events = client.log.frame().set_index("arm")
    assert events.loc["live", "version"] == "1.0.0" and events.loc["shadow", "version"] == "1.1.0"
    assert events.loc["live", "request_id"] == events.loc["shadow", "request_id"] == answer.request_id
    assert (events["experiment"] == "shadow:sentiment").all() and events["unit_hash"].nunique() == 1
    shadow.close()


def test_a_slow_shadow_does_not_delay_the_served_answer(tmp_path):
    client = ProductionClient(Registry(), "sentiment", FakeProvider("live"), log=EventLog(tmp_path / "e.db"),
                              policy=POLICY)
    shadow = Shadow(client, CANDIDATE, provider=FakeProvider("slow", latency_s=0.5))
    started = time.perf_counter()
    answers = [shadow.complete(str(i)) for i in range(3)]
    served_in = time.perf_counter() - started
    assert served_in < 0.4 and [a.text for a in answers] == ["live"] * 3
    assert shadow.drain() == 0
    assert client.log.frame()["arm"].value_counts().to_dict() == {"live": 3, "shadow": 3}
    shadow.close()


def test_shadow_failures_never_reach_the_served_answer(tmp_path, caplog):
    broken = CANDIDATE.with_changes(template="{{ input }} {{ missing_variable }}")  # cannot render
    client = make_client(tmp_path, by_model("ok", lambda r: ProviderError("down", error_type="server")))
    with caplog.at_level(logging.WARNING):
        render_fails = Shadow(client, broken)
        assert render_fails.complete("a").text == "ok"
        render_fails.drain()
        provider_fails = Shadow(client, CANDIDATE, experiment="shadow:b")
        assert provider_fails.complete("a").text == "ok"
        provider_fails.drain()
    assert render_fails.failures == 1 and "MissingVariablesError" in caplog.text
    shadow_events = client.log.frame().query("arm == 'shadow'").set_index("experiment")
    assert shadow_events.loc["shadow:sentiment", "error_type"] == "exception"
    assert shadow_events.loc["shadow:b", "outcome"] == "escalated"  # the candidate's model failed
    render_fails.close()
    provider_fails.close()


def test_shadow_sampling_and_async_face(tmp_path):
    client = make_client(tmp_path, by_model("a", "b"))
    none = Shadow(client, CANDIDATE, sample_rate=0.0)
    half = Shadow(client, CANDIDATE, sample_rate=0.5, seed=3, experiment="shadow:half")

    async def serve():
        return await asyncio.gather(*(half.acomplete(str(i)) for i in range(40)))

    none.complete("x")
    assert [a.text for a in asyncio.run(serve())] == ["a"] * 40
    half.drain()
    assert none.shadowed == 0 and 10 < half.shadowed < 30
    assert "sample_rate=0.5" in repr(half) and "\n" not in repr(half)
    with pytest.raises(ExperimentError, match="sample_rate=2"):
        Shadow(client, CANDIDATE, sample_rate=2)
    half.close()


def test_shadow_compare_pairs_requests(tmp_path):
    bad_inputs = {"Say: 1", "Say: 2", "Say: 3"}
    client = make_client(tmp_path, by_model("ok", lambda r: "bad" if r.messages[-1].content in bad_inputs else "ok"),
                         validator=lambda text: text == "ok")
    shadow = Shadow(client, CANDIDATE)
    for i in range(12):
        shadow.complete(str(i))
    shadow.drain()
    report = shadow.compare()
    p = report.paired
    assert (p.a, p.b, p.c, p.d, p.n) == (9, 3, 0, 0, 12)  # live always ok; the shadow fails 3 of 12
    assert p.p_exact == pytest.approx(st.binomtest(0, 3, 0.5).pvalue)  # reference: scipy exact McNemar
    assert p.effect == pytest.approx(-3 / 12)
    assert set(report.metrics.df["arm"]) == {"live", "shadow"}
    assert "shadow−live=-0.250" in repr(report) and "McNemar" not in repr(report)
    assert "Shadow" in report._repr_html_()
    shadow.close()


# ---- canary ----------------------------------------------------------------------------------------------
def test_canary_share_is_sticky_per_unit(tmp_path):
    client = make_client(tmp_path, by_model("stable", "canary"))
    canary = Canary(client, CANDIDATE, percent=20, check_every=None)
    arms = {u: canary.assign(f"user-{u}") for u in range(2000)}
    assert all(canary.assign(f"user-{u}") == arm for u, arm in list(arms.items())[:100])
    share = Counter(arms.values())["canary"] / 2000
    assert abs(share - 0.2) < 0.045  # binomial sd 0.009: 5 sd
    answer = canary.complete("x", unit_id="user-1")
    assert answer.version == {"stable": "1.0.0", "canary": "1.1.0"}[arms[1]]


def test_canary_rolls_back_when_the_candidate_fails(tmp_path, caplog):
    reports = []
    failing = by_model("ok", lambda r: ProviderError("boom", error_type="server"))
    client = make_client(tmp_path, failing)
    canary = Canary(client, CANDIDATE, percent=30, check_every=100, on_rollback=reports.append)
    with caplog.at_level(logging.WARNING):
        for i in range(100):
            canary.complete(str(i), unit_id=i)
    assert canary.rolled_back and canary.percent == 0 and len(reports) == 1
    assert reports[0].status == "stop canary" and "rolled back" in caplog.text
    assert {canary.assign(i) for i in range(200)} == {"stable"}
    for i in range(100, 120):
        assert canary.complete(str(i), unit_id=i).version == "1.0.0"
    canary.check()
    assert len(reports) == 1  # the callback runs once
    assert "rolled back" in repr(canary) and "rolled back" in canary._repr_html_()


def test_a_healthy_canary_keeps_running_and_a_broken_callback_is_contained(tmp_path, caplog):
    client = make_client(tmp_path, by_model("ok", "ok"))
    canary = Canary(client, CANDIDATE, percent=50, check_every=50)
    for i in range(100):
        canary.complete(str(i), unit_id=i)
    assert not canary.rolled_back and canary.last_report.status == "keep running"

    def broken(report):
        raise RuntimeError("registry down")

    failing = make_client(tmp_path / "2", by_model("ok", lambda r: ProviderError("x", error_type="server")))
    canary2 = Canary(failing, CANDIDATE, percent=50, check_every=None, on_rollback=broken)
    for i in range(60):
        canary2.complete(str(i), unit_id=i)
    with caplog.at_level(logging.ERROR):
        canary2.check()
    assert canary2.rolled_back and "on_rollback callback failed: RuntimeError" in caplog.text


def test_canary_arguments(tmp_path):
    client = make_client(tmp_path, "ok")
    with pytest.raises(ExperimentError, match="percent=0"):
        Canary(client, CANDIDATE, percent=0)
    no_log = ProductionClient(Registry(), "sentiment", FakeProvider("ok"))
    with pytest.raises(ExperimentError, match="EventLog"):
        Canary(no_log, CANDIDATE)
    with pytest.raises(ExperimentError, match="EventLog"):
        Shadow(no_log, CANDIDATE)
