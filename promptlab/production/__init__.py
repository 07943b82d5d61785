"""The production side: event log, A/B tests, the production client, monitoring, alerts, budgets, staging.

=============== ========================================================================================
module          what it gives
=============== ========================================================================================
``eventlog``    `EventLog` (SQLite WAL, append-only, batched), `ParquetLog` (DuckDB), `Event`, `hash_unit`
``query``       the aggregation SQL shared by both engines (`aggregate`, `EventFilter`)
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

from __future__ import annotations

from .abtest import PromptABTest, assign_arm, assignment_bucket
from .alertrules import AlertRules, RuleSpec, default_alert_rules, load_alert_rules
from .alerts import Alert, AlertManager, AlertReport, CallableSink, LoggingSink, WebhookSink, check_rules
from .budget import Reservation, TokenBudget
from .client import Answer, ClientPolicy, ProductionClient
from .eventlog import EVENT_COLUMNS, Event, EventLog, ParquetLog, hash_unit
from .experiment import ABTestReport, Design, Guardrails, analyze_experiment
from .monitor import MetricsReport, PromptMetrics, prompt_metrics
from .query import EventFilter, aggregate
from .simulate import ArmBehaviour, Degradation, TrafficSpec, simulate_traffic, write_traffic
from .staging import Canary, Shadow, ShadowReport

__all__ = [
    "ABTestReport",
    "Alert",
    "AlertManager",
    "AlertReport",
    "AlertRules",
    "Answer",
    "ArmBehaviour",
    "CallableSink",
    "Canary",
    "ClientPolicy",
    "Degradation",
    "Design",
    "EVENT_COLUMNS",
    "Event",
    "EventFilter",
    "EventLog",
    "Guardrails",
    "LoggingSink",
    "MetricsReport",
    "ParquetLog",
    "ProductionClient",
    "PromptABTest",
    "PromptMetrics",
    "Reservation",
    "RuleSpec",
    "Shadow",
    "ShadowReport",
    "TokenBudget",
    "TrafficSpec",
    "WebhookSink",
    "aggregate",
    "analyze_experiment",
    "assign_arm",
    "assignment_bucket",
    "check_rules",
    "default_alert_rules",
    "hash_unit",
    "load_alert_rules",
    "prompt_metrics",
    "simulate_traffic",
    "write_traffic",
]
