"""Alert rules as YAML: the file format, its validation, and the defaults from the starting document.

A rules file (``configs/alerts.yaml``)::

    window_minutes: 60          # each check reads the last hour ...
    baseline_minutes: 1440      # ... and, for regression rules, the day before it
    min_samples: 200            # fewer calls than this: "insufficient data", never an alert
    confidence: 0.95            # one-sided: fire only when the bound is past the threshold
    cooldown_minutes: 60        # one notification per rule and prompt version per cooldown
    rules:
      - {name: success_rate, metric: success_rate, min: 0.95}
      - {name: format_failures, metric: format_failure_rate, max: 0.05}
      - {name: p95_latency, metric: p95_latency_ms, max: 5000}
      - {name: quality, metric: quality_score, min: 3.5, min_samples: 30}
      - {name: success_regression, metric: success_rate, regression: 0.02}

Every rule has exactly one of ``min``, ``max`` (a fixed threshold) or ``regression`` (the change against the
baseline window that is tolerated, in the metric's own unit, in the direction that hurts). A rule may override
``window_minutes`` and ``min_samples``, name a ``severity``, and limit itself to some ``prompts``.

This is the one schema and the one reader of alert rules: alerting (`promptlab.production._alerts`) and the
production checklist (`promptlab.registry._checklist`, which reads ``configs/monitoring.yaml``) both read rules with
`load_alert_rules`, so a rule one accepts the other accepts too. Files are read strictly
(`promptlab._yaml`: size cap, bounded aliases, repeated keys refused), and every problem is listed at once with
its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._yaml import load_yaml, read_text, require_mapping, validate
from ..errors import AlertConfigError

METRICS = ("success_rate", "format_failure_rate", "timeout_rate", "error_rate", "p50_latency_ms",
           "p95_latency_ms", "quality_score", "cost_per_call_usd")
"""Metrics a rule can watch."""
ALIASES = {"latency_p95_ms": "p95_latency_ms", "latency_p50_ms": "p50_latency_ms", "quality": "quality_score",
           "format_failures": "format_failure_rate"}
HIGHER_IS_BETTER = frozenset({"success_rate", "quality_score"})

DEFAULT_RULES_YAML = """\
# Alert rules for production prompts (read with promptlab.production.load_alert_rules).
# The thresholds are the starting document's: success rate >= 0.95, format failures <= 5%,
# p95 latency <= 5,000 ms, quality >= 3.5, plus regressions against the day before.
# A rule fires only when the one-sided bound at `confidence` is past its threshold, on at least
# `min_samples` calls — so three bad calls do not page anyone.
window_minutes: 60
baseline_minutes: 1440
min_samples: 200
confidence: 0.95
cooldown_minutes: 60
rules:
  - name: success_rate
    metric: success_rate
    min: 0.95
    severity: critical
  - name: format_failures
    metric: format_failure_rate
    max: 0.05
  - name: p95_latency
    metric: p95_latency_ms
    max: 5000
  - name: quality
    metric: quality_score
    min: 3.5
    min_samples: 30
  - name: success_rate_regression
    metric: success_rate
    regression: 0.02
  - name: format_failure_regression
    metric: format_failure_rate
    regression: 0.02
  - name: p95_latency_regression
    metric: p95_latency_ms
    regression: 1000
"""


class RuleSpec(BaseModel):
    """One alert rule (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    metric: str
    min: float | None = None
    max: float | None = None
    regression: float | None = Field(default=None, ge=0)
    window_minutes: float | None = Field(default=None, gt=0)
    min_samples: int | None = Field(default=None, ge=1)
    severity: Literal["info", "warning", "critical"] = "warning"
    prompts: tuple[str, ...] = ()

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        value = ALIASES.get(value, value)
        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; use one of {list(METRICS)!r}")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> RuleSpec:
        if sum(v is not None for v in (self.min, self.max, self.regression)) != 1:
            raise ValueError(f"rule {self.name!r} needs exactly one of `min:`, `max:` or `regression:`")
        return self

    @property
    def kind(self) -> str:
        """``min``, ``max`` or ``regression``."""
        return "min" if self.min is not None else "max" if self.max is not None else "regression"

    @property
    def threshold(self) -> float:
        """The rule's number: the bound, or the tolerated regression."""
        return float(self.min if self.min is not None else self.max if self.max is not None else self.regression)

    def applies_to(self, prompt: str | None) -> bool:
        """Whether the rule watches ``prompt`` (no ``prompts:`` list: every prompt)."""
        return not self.prompts or prompt in self.prompts

    def describe(self) -> str:
        """``success_rate ≥ 0.95``, ``p95_latency_ms ≤ 5000`` or ``success_rate: no drop > 0.02``."""
        if self.kind == "min":
            return f"{self.metric} ≥ {self.threshold:g}"
        if self.kind == "max":
            return f"{self.metric} ≤ {self.threshold:g}"
        worse = "drop" if self.metric in HIGHER_IS_BETTER else "rise"
        return f"{self.metric}: no {worse} > {self.threshold:g} against the baseline"


class AlertRules(BaseModel):
    """A rules file: defaults for every rule, and the rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_minutes: float = Field(default=60, gt=0)
    baseline_minutes: float = Field(default=1440, gt=0)
    min_samples: int = Field(default=200, ge=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    cooldown_minutes: float = Field(default=60, ge=0)
    rules: tuple[RuleSpec, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> AlertRules:
        names = [r.name for r in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique; repeated: {duplicates!r}")
        return self

    def rules_for(self, prompt: str) -> tuple[RuleSpec, ...]:
        """The rules that watch ``prompt``."""
        return tuple(rule for rule in self.rules if rule.applies_to(prompt))

    def window_s(self, rule: RuleSpec) -> float:
        """The rule's window in seconds."""
        return 60.0 * (rule.window_minutes or self.window_minutes)

    def samples(self, rule: RuleSpec) -> int:
        """The rule's minimum sample."""
        return rule.min_samples or self.min_samples


def parse_alert_rules(text: str, source: str = "<text>") -> AlertRules:
    """Validate rules from YAML text (``source`` names it in error messages); every problem listed at once, with
    its line."""
    document = load_yaml(text, source, AlertConfigError)
    data = document.data
    nested = isinstance(data, dict) and isinstance(data.get("alerts"), dict)  # `alerts:` above the rules
    if data is not None and not nested:
        require_mapping(data, source, "alert rules file", AlertConfigError, "Start the file with `rules:`.")
    return validate(document, AlertRules, source, AlertConfigError, "alert rules file",
                    prefix=("alerts",) if nested else (), allow_empty=True)


def load_alert_rules(path: str | Path | None = None) -> AlertRules:
    """Read alert rules from ``configs/alerts.yaml`` or ``configs/monitoring.yaml`` (None: the defaults).

    Args:
        path: a rules file; a folder is searched for ``alerts.yaml`` then ``monitoring.yaml``.
    """
    if path is None:
        return default_alert_rules()
    path = Path(path)
    if path.is_dir():
        found = [p for p in (path / "alerts.yaml", path / "monitoring.yaml") if p.exists()]
        if not found:
            raise AlertConfigError(f"no alerts.yaml or monitoring.yaml in {str(path)!r}; write one (see "
                                   "promptlab.production._alertrules.DEFAULT_RULES_YAML).")
        path = found[0]
    return parse_alert_rules(read_text(path, AlertConfigError, "the alert rules file"), str(path))


def default_alert_rules() -> AlertRules:
    """The starting document's thresholds plus regression rules (`DEFAULT_RULES_YAML`)."""
    return parse_alert_rules(DEFAULT_RULES_YAML, "default rules")
