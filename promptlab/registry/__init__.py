"""Review, staging and production: immutable versions, aliases, gated promotion, evidence, the checklist."""

from .._face import declare

declare(__name__, globals(), {
    "Registry": "._registry", "RegistryStatus": "._status", "current_actor": "promptlab._files",
    "Evidence": "._evidence", "ComparisonRow": "._evidence", "Checklist": "._checklist", "GateResult": "._lifecycle",
    "HistoryEvent": "._lifecycle", "Thresholds": "._lifecycle",
})
