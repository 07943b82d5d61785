"""The production side: event log, A/B tests, the production client, monitoring, alerts, budgets, staging.

=============== ========================================================================================
module          what it gives
=============== ========================================================================================
``eventlog``    `EventLog` (SQLite WAL, append-only, batched), `ParquetLog` (DuckDB), `Event`, `hash_unit`
``pglog``       `PostgresLog`, what ``EventLog("postgresql://…")`` gives: one log shared by many processes and hosts
``query``       the aggregation SQL, written once, rendered per engine and warehouse (`aggregate`, `EventFilter`,
                `warehouse_sql`)
``sketch``      `LatencySketch`: latency percentiles from bucket counts the engine computes (DDSketch)
``analyze``     `analyze`: the A/B report of an aggregate table computed in your own warehouse
``abtest``      `PromptABTest`: sticky hashing, outcomes to the log, `analyze()`
``experiment``  `analyze_experiment`: always-valid decision, SRM, guardrails, status (`ABTestReport`)
``client``      `ProductionClient`: cached registry resolution, retries, fallbacks, escalation, budget, logging
``monitor``     `prompt_metrics` → `MetricsReport` (the article's `PromptMetrics` per version and window)
``alerts``      `AlertManager` with rules from YAML (`load_alert_rules`), sinks (callable, logging, webhook)
``budget``      `TokenBudget`: persisted, safe under threads and processes, daily/monthly periods
``staging``     `Shadow` (never served) and `Canary` (sticky share, automatic rollback)
``simulate``    `simulate_traffic`: seeded realistic traffic with an injectable `Degradation`
=============== ========================================================================================
"""

from .._face import declare

declare(__name__, globals(), {
    "PromptABTest": "._abtest",
    "assign_arm": "._abtest",
    "assignment_bucket": "._abtest",
    "AlertRules": "._alertrules",
    "RuleSpec": "._alertrules",
    "default_alert_rules": "._alertrules",
    "load_alert_rules": "._alertrules",
    "Alert": "._alerts",
    "AlertManager": "._alerts",
    "AlertReport": "._alerts",
    "CallableSink": "._alerts",
    "LoggingSink": "._alerts",
    "WebhookSink": "._alerts",
    "check_rules": "._alerts",
    "Reservation": "._budget",
    "TokenBudget": "._budget",
    "Answer": "._client",
    "ClientPolicy": "._client",
    "ProductionClient": "._client",
    "EVENT_COLUMNS": "._schema",
    "Event": "._eventlog",
    "EventLog": "._eventlog",
    "ParquetLog": "._eventlog",
    "PostgresLog": "._pglog",
    "hash_unit": "._schema",
    "ABTestReport": "._experiment",
    "Design": "._experiment",
    "Guardrails": "._experiment",
    "analyze_experiment": "._experiment",
    "MetricsReport": "._monitor",
    "PromptMetrics": "._monitor",
    "prompt_metrics": "._monitor",
    "EventFilter": "._query",
    "aggregate": "._query",
    "warehouse_sql": "._query",
    "LatencySketch": "._sketch",
    "analyze": "._analyze",
    "ArmBehaviour": "._simulate",
    "Degradation": "._simulate",
    "TrafficSpec": "._simulate",
    "simulate_traffic": "._simulate",
    "write_traffic": "._simulate",
    "Canary": "._staging",
    "Shadow": "._staging",
    "ShadowReport": "._staging",
})
