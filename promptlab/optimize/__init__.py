"""Making prompts cheaper and keeping them working when models change.

* `compression` — named rules that shorten a prompt; `compress` gives the new version and the tokens saved.
* `noninferiority` — the paired test that a cheaper variant lost no more than a stated margin of accuracy.
* `routing` — the cheapest model per task whose accuracy lower bound meets the bar; the Pareto frontier;
  a routing table file the production client reads.
* `pinning` — floating model aliases, served-model drift, the model lockfile.
* `compatibility` — a prompt on several models: accuracy, categories, failures, paired against the current.
"""

from __future__ import annotations

from .compatibility import CompatibilityMatrix, model_compatibility, test_model_compatibility
from .compression import (
    DEFAULT_RULES,
    RULES,
    Compression,
    Rule,
    compress,
    prompt_rule,
    text_rule,
)
from .noninferiority import NonInferiority, noninferiority
from .pinning import (
    DEFAULT_LOCKFILE,
    LockCheck,
    Lockfile,
    check_lockfile,
    floating_aliases,
    is_pinned,
    load_lockfile,
    pin_status,
    served_model_drift,
    write_lockfile,
)
from .routing import (
    RoutingDecision,
    RoutingTable,
    choose_model,
    load_routing_table,
    plot_frontier,
    routing_table,
)

__all__ = [
    "DEFAULT_LOCKFILE",
    "DEFAULT_RULES",
    "RULES",
    "CompatibilityMatrix",
    "Compression",
    "LockCheck",
    "Lockfile",
    "NonInferiority",
    "RoutingDecision",
    "RoutingTable",
    "Rule",
    "check_lockfile",
    "choose_model",
    "compress",
    "floating_aliases",
    "is_pinned",
    "load_lockfile",
    "load_routing_table",
    "model_compatibility",
    "noninferiority",
    "pin_status",
    "plot_frontier",
    "prompt_rule",
    "routing_table",
    "served_model_drift",
    "test_model_compatibility",
    "text_rule",
    "write_lockfile",
]
