"""Vocabulary and limits shared by the store, the service, the CLI and the HTTP API (no heavy imports)."""

from __future__ import annotations

EXECUTION_STATUSES = ("pending", "running", "waiting", "completed", "failed", "cancelled")
TERMINAL_STATUSES = ("completed", "failed", "cancelled")
ACTIVE_STATUSES = ("pending", "running", "waiting")

MAX_LIST_LIMIT = 500
NAME_MAX = 200
MAX_ID_LENGTH = 200  # execution ids, given or derived (a child's)
MAX_ACTIVE_PAUSE_RULES = 1000  # every step of an execution a rule may hold checks the rules that match it
DEFAULT_PAUSE_PAGE = 100
