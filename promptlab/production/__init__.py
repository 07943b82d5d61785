"""The production side: event log, A/B tests, the production client, monitoring, alerts, budgets, staging."""
