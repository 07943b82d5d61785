"""Alerts: YAML rules, windows with a minimum sample and a one-sided test, cooldown, and the three sinks."""

from __future__ import annotations

import json
import logging
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from promptlab.errors import AlertConfigError
from promptlab.production import (
    AlertManager,
    EventLog,
    LoggingSink,
    WebhookSink,
    check_rules,
    default_alert_rules,
    load_alert_rules,
)
from promptlab.production._alertrules import parse_alert_rules
from promptlab.production._schema import to_ms

T0 = to_ms("2025-01-06T00:00:00")
HOUR = 3_600_000
NOW = T0 + 25 * HOUR  # checks read [24h, 25h); regression baselines [0h, 24h)


def calls(n: int, *, hour: int = 24, ok: int | None = None, format_failures: int = 0, latency=0.5,
          quality=None, version: str = "1.0", arm: str | None = None) -> pd.DataFrame:
    ok = n if ok is None else ok
    return pd.DataFrame({
        "ts_ms": T0 + hour * HOUR + np.arange(n) * (HOUR // max(n, 1)), "prompt": "p", "version": version,
        "arm": arm, "success": [1] * ok + [0] * (n - ok),
        "format_ok": [0] * format_failures + [1] * (n - format_failures), "latency_s": latency,
        "quality": quality})


def log_with(tmp_path, *frames) -> EventLog:
    log = EventLog(tmp_path / "e.db")
    log.append_frame(pd.concat(frames, ignore_index=True))
    return log


def rules(body: str, **top) -> object:
    head = "".join(f"{k}: {v}\n" for k, v in {"min_samples": 100, "confidence": 0.95, **top}.items())
    return parse_alert_rules(head + "rules:\n" + body)


# ---- rule files ------------------------------------------------------------------------------------------
def test_the_checklists_monitoring_yaml_loads(root):
    loaded = load_alert_rules(root / "configs" / "monitoring.yaml")
    by_name = {r.name: r for r in loaded.rules}
    assert (by_name["success_rate"].kind, by_name["success_rate"].threshold) == ("min", 0.95)
    assert by_name["latency_p95"].metric == "p95_latency_ms" and by_name["latency_p95"].threshold == 5000
    assert loaded.window_s(by_name["quality"]) == 86_400
    assert load_alert_rules(root / "configs").rules == loaded.rules  # a folder: alerts.yaml, else monitoring.yaml


def test_a_folder_prefers_alerts_yaml(tmp_path):
    (tmp_path / "monitoring.yaml").write_text("rules: [{name: a, metric: success_rate, min: 0.9}]")
    (tmp_path / "alerts.yaml").write_text("rules: [{name: b, metric: error_rate, max: 0.1}]")
    assert [r.name for r in load_alert_rules(tmp_path).rules] == ["b"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(AlertConfigError, match="no alerts.yaml or monitoring.yaml"):
        load_alert_rules(tmp_path / "empty")
    with pytest.raises(AlertConfigError, match="missing.yaml' does not exist"):
        load_alert_rules(tmp_path / "missing.yaml")


def test_defaults_are_the_articles_thresholds_plus_regressions():
    defaults = default_alert_rules()
    described = [r.describe() for r in defaults.rules]
    assert described[:4] == ["success_rate ≥ 0.95", "format_failure_rate ≤ 0.05", "p95_latency_ms ≤ 5000",
                             "quality_score ≥ 3.5"]
    assert [r.kind for r in defaults.rules[4:]] == ["regression"] * 3
    assert (defaults.min_samples, defaults.confidence, defaults.cooldown_minutes) == (200, 0.95, 60)


@pytest.mark.parametrize("text, message", [
    ("rules: [{name: a, metric: success_rate, min: 0.9, page: yes}]", "rules.0.page"),
    ("rules: [{name: a, metric: happiness, min: 0.9}]", "unknown metric 'happiness'"),
    ("rules: [{name: a, metric: success_rate, min: 0.9, max: 1}]", "exactly one of"),
    ("rules: [{name: a, metric: success_rate, min: 0.9}, {name: a, metric: error_rate, max: 0.1}]", "unique"),
    ("confidence: 1.5\nrules: []", "confidence"),
    ("rules: [", "not valid YAML"),
    ("- just a list", "a mapping"),
])
def test_bad_rule_files_say_where_and_what(text, message):
    with pytest.raises(AlertConfigError, match=message) as info:
        parse_alert_rules(text, "configs/alerts.yaml")
    assert str(info.value).startswith("configs/alerts.yaml")


def test_nested_alerts_key_and_metric_aliases():
    parsed = parse_alert_rules("alerts:\n  rules: [{name: a, metric: latency_p95_ms, max: 100}]")
    assert parsed.rules[0].metric == "p95_latency_ms"


# ---- checks ----------------------------------------------------------------------------------------------
def test_three_bad_calls_do_not_page_anyone(tmp_path):
    log = log_with(tmp_path, calls(3, ok=0, format_failures=3, latency=30.0))
    checks = check_rules(log, default_alert_rules(), now=NOW)
    assert set(checks["state"]) == {"insufficient data"}
    report = AlertManager(sinks=[lambda a: pytest.fail("paged on 3 calls")]).evaluate(log, now=NOW)
    assert report.alerts == ()


def test_rate_rule_fires_on_the_one_sided_wilson_bound(tmp_path):
    spec = rules("  - {name: success, metric: success_rate, min: 0.95}\n")
    low = check_rules(log_with(tmp_path / "a", calls(300, ok=270)), spec, now=NOW).iloc[0]
    # reference: scipy binomtest(270, 300).proportion_ci(0.90, "wilson").high — the one-sided 95% upper bound
    assert low.bound == pytest.approx(st.binomtest(270, 300).proportion_ci(0.90, method="wilson").high)
    assert (low.state, low.value, low.n) == ("firing", 0.9, 300)
    near = check_rules(log_with(tmp_path / "b", calls(300, ok=282)), spec, now=NOW).iloc[0]
    assert near.value == pytest.approx(0.94) and near.state == "ok"  # below 0.95, but not shown to be


def test_p95_rule_uses_the_order_statistic_bound(tmp_path):
    spec = rules("  - {name: p95, metric: p95_latency_ms, max: 5000}\n")
    latency = np.r_[np.full(260, 1.0), np.full(40, 8.0)]  # 13% of calls take 8 s
    row = check_rules(log_with(tmp_path / "a", calls(300, latency=latency)), spec, now=NOW).iloc[0]
    ci = st.quantile_test(latency, q=8.0, p=0.95).confidence_interval(0.90)  # reference: scipy
    # from sketches: the value within 1% (alpha), the bound the lower edge of the bucket holding scipy's bound
    assert (row.value, row.state) == (pytest.approx(8000.0, rel=0.01), "firing")
    assert 1000 * ci.low * 0.99 / 1.01 <= row.bound <= 1000 * ci.low
    # 20 slow calls in 300 (6.7%) put the sample p95 at 8 s, but that many happen by chance when only 5% are
    # slow (binomial p ≈ 0.12): the one-sided bound stays at 1 s and nobody is paged
    latency = np.r_[np.full(280, 1.0), np.full(20, 8.0)]
    row = check_rules(log_with(tmp_path / "b", calls(300, latency=latency)), spec, now=NOW).iloc[0]
    assert (row.value, row.state) == (pytest.approx(8000.0, rel=0.01), "ok")
    assert 1000 * 0.99 / 1.01 <= row.bound <= 1000.0


def test_quality_rule_uses_the_clt_bound(tmp_path):
    quality = np.tile([2.0, 3.0, 4.0, 3.0], 10)
    spec = rules("  - {name: quality, metric: quality_score, min: 3.5, min_samples: 30}\n")
    row = check_rules(log_with(tmp_path, calls(40, quality=quality)), spec, now=NOW).iloc[0]
    bound = 3.0 + st.norm.ppf(0.95) * quality.std(ddof=1) / math.sqrt(40)  # by hand
    assert (row.value, row.n, row.state) == (3.0, 40, "firing") and row.bound == pytest.approx(bound)


def test_rate_regression_is_welch_against_the_shifted_baseline(tmp_path):
    spec = rules("  - {name: fmt, metric: format_failure_rate, regression: 0.02}\n")
    log = log_with(tmp_path, calls(2000, hour=10, format_failures=20), calls(400, format_failures=40))
    row = check_rules(log, spec, now=NOW).iloc[0]
    base, cur = 0.01, 0.10
    ref = st.ttest_ind_from_stats(cur, math.sqrt(cur * (1 - cur)), 400, base + 0.02, math.sqrt(base * (1 - base)),
                                  2000, equal_var=False, alternative="greater")  # reference: scipy Welch
    assert (row.value, row.baseline, row.state) == (0.10, 0.01, "firing")
    assert row.p_value == pytest.approx(ref.pvalue)
    small = log_with(tmp_path / "b", calls(2000, hour=10, format_failures=20), calls(400, format_failures=10))
    assert check_rules(small, spec, now=NOW).iloc[0].state == "ok"  # +1.5 points is within the tolerance


def test_p95_regression_is_an_exact_binomial_tail_test(tmp_path):
    spec = rules("  - {name: slow, metric: p95_latency_ms, regression: 500}\n")
    base = calls(1000, hour=5, latency=np.linspace(0.1, 1.0, 1000))
    current = calls(200, latency=np.r_[np.linspace(0.1, 1.0, 170), np.full(30, 3.0)])
    row = check_rules(log_with(tmp_path, base, current), spec, now=NOW).iloc[0]
    base_p95 = float(np.quantile(np.linspace(0.1, 1.0, 1000), 0.95, method="inverted_cdf"))
    ref = st.binomtest(30, 200, 0.05, alternative="greater").pvalue  # 30 calls slower than base p95 + 0.5 s
    assert row.baseline == pytest.approx(1000 * base_p95, rel=0.01) and row.value == pytest.approx(3000.0, rel=0.01)
    assert row.p_value == pytest.approx(ref) and row.state == "firing"


def test_regression_needs_a_baseline_and_zero_spread_is_exact(tmp_path):
    spec = rules("  - {name: fmt, metric: format_failure_rate, regression: 0.02}\n")
    assert check_rules(log_with(tmp_path / "a", calls(400)), spec, now=NOW).iloc[0].state == "insufficient data"
    clean = log_with(tmp_path / "b", calls(400, hour=3), calls(400))  # 0 failures in both windows
    row = check_rules(clean, spec, now=NOW).iloc[0]
    assert (row.state, row.p_value) == ("ok", 1.0)


def test_rules_can_be_limited_to_prompts_and_shadow_calls_are_ignored(tmp_path):
    spec = rules("  - {name: s, metric: success_rate, min: 0.95, prompts: [other]}\n"
                 "  - {name: t, metric: success_rate, min: 0.95}\n")
    log = log_with(tmp_path, calls(300), calls(300, ok=0, version="2.0", arm="shadow"))
    checks = check_rules(log, spec, now=NOW)
    assert checks[["rule", "version", "state"]].values.tolist() == [["t", "1.0", "ok"]]


# ---- manager, cooldown, sinks ----------------------------------------------------------------------------
def failing_log(tmp_path) -> EventLog:
    return log_with(tmp_path, calls(300, ok=200, hour=24), calls(300, ok=200, hour=25))


def test_cooldown_dedupes_and_expires(tmp_path):
    received = []
    manager = AlertManager(rules("  - {name: s, metric: success_rate, min: 0.95}\n", cooldown_minutes=90),
                           sinks=[received.append])
    log = failing_log(tmp_path)
    first = manager.evaluate(log, now=NOW)
    again = manager.evaluate(log, now=NOW)  # the same window read twice
    later = manager.evaluate(log, now=NOW + HOUR)  # 60 min later: still inside the 90-min cooldown
    assert (len(first.alerts), again.suppressed, later.suppressed) == (1, 1, 1)
    after = manager.evaluate(log, now=NOW + 2 * HOUR)  # past the cooldown (no calls there: nothing to fire)
    assert after.checks.empty
    manager.reset()
    assert len(manager.evaluate(log, now=NOW).alerts) == 1
    assert len(received) == 2 and received[0].rule == "s" and "p@1.0" in received[0].message


def test_replay_walks_the_history(tmp_path):
    manager = AlertManager(rules("  - {name: s, metric: success_rate, min: 0.95}\n", cooldown_minutes=0))
    report = manager.replay(failing_log(tmp_path), start=T0 + 23 * HOUR, end=T0 + 26 * HOUR)
    assert report.checks["window_end"].tolist() == [pd.Timestamp(T0 + h * HOUR, unit="ms", tz="UTC") for h in (25, 26)]
    assert len(report.alerts) == 2 and "\n" not in repr(report)
    assert "Alerts" in report._repr_html_()


def test_logging_sink(tmp_path, caplog):
    manager = AlertManager(rules("  - {name: s, metric: success_rate, min: 0.95, severity: critical}\n"),
                           sinks=[LoggingSink()])
    with caplog.at_level(logging.WARNING, logger="promptlab.alerts"):
        manager.evaluate(failing_log(tmp_path), now=NOW)
    assert caplog.records[0].levelno == logging.CRITICAL and "success_rate ≥ 0.95 violated" in caplog.text


class _Receiver(BaseHTTPRequestHandler):
    bodies: list = []
    status = 200

    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers["Content-Length"])
        type(self).bodies.append((self.path, self.headers.get("Authorization"), json.loads(self.rfile.read(length))))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    class Handler(_Receiver):
        bodies, status = [], 200

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server, Handler
    server.shutdown()
    server.server_close()


def test_webhook_posts_json_to_a_loopback_server(tmp_path, receiver):
    server, handler = receiver
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0KEN-123"
    sink = WebhookSink(url, headers={"Authorization": "Bearer s3cret"})
    manager = AlertManager(rules("  - {name: s, metric: success_rate, min: 0.95}\n"), sinks=[sink])
    report = manager.evaluate(failing_log(tmp_path), now=NOW)
    assert report.sink_errors == ()
    path, auth, body = handler.bodies[0]
    assert path == "/hooks/T0KEN-123" and auth == "Bearer s3cret"
    assert (body["rule"], body["prompt"], body["version"], body["value"]) == ("s", "p", "1.0", pytest.approx(2 / 3))
    assert body["baseline"] is None and body["window_end"].startswith("2025-01-07T01:00")
    assert "T0KEN" not in repr(sink) and "s3cret" not in repr(sink)


def test_a_failing_sink_does_not_stop_the_others(tmp_path, receiver, caplog):
    server, handler = receiver
    handler.status = 500
    received = []
    sinks = [WebhookSink(f"http://127.0.0.1:{server.server_address[1]}/hooks/T0KEN"), received.append]
    manager = AlertManager(rules("  - {name: s, metric: success_rate, min: 0.95}\n"), sinks=sinks)
    with caplog.at_level(logging.WARNING):
        report = manager.evaluate(failing_log(tmp_path), now=NOW)
    assert len(received) == 1 and "HTTP 500" in report.sink_errors[0]
    assert "T0KEN" not in report.sink_errors[0] and "T0KEN" not in caplog.text


def test_unreachable_webhook_and_bad_url(tmp_path):
    with pytest.raises(ValueError, match="http") as info:
        WebhookSink("ftp://host/T0KEN")
    assert "T0KEN" not in str(info.value)
    dead = WebhookSink("http://127.0.0.1:9/hooks/T0KEN", timeout_s=0.5)  # port 9 (discard) is closed
    manager = AlertManager(rules("  - {name: s, metric: success_rate, min: 0.95}\n"), sinks=[dead])
    report = manager.evaluate(failing_log(tmp_path), now=NOW)
    assert "failed" in report.sink_errors[0] and "T0KEN" not in report.sink_errors[0]
    assert report.alerts[0].to_dict()["bound"] is not None
