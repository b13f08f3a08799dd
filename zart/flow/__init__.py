"""Flow control: limits on executions (global and per-key concurrency, rates, pause), priority, dedup/debounce.

This package holds the pure definitions (parsing and validation); the decisions are made in Postgres at claim
time (zart.store.flow) and the operator controls live in zart.flow_admin.
"""

from zart.flow.definitions import KEY_STRATEGIES, LimitSpec, Rate, parse_key_path, parse_rate

__all__ = ["KEY_STRATEGIES", "LimitSpec", "Rate", "parse_key_path", "parse_rate"]
