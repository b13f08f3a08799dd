"""Vocabulary and limits shared by the store, the service, the CLI and the HTTP API (no heavy imports)."""

from __future__ import annotations

import re

EXECUTION_STATUSES = ("pending", "running", "waiting", "completed", "failed", "cancelled")
TERMINAL_STATUSES = ("completed", "failed", "cancelled")
ACTIVE_STATUSES = ("pending", "running", "waiting")

MAX_LIST_LIMIT = 500
NAME_MAX = 200
MAX_ID_LENGTH = 200  # execution ids, given or derived (a child's)
MAX_ACTIVE_PAUSE_RULES = 1000  # every step of an execution a rule may hold checks the rules that match it
DEFAULT_PAUSE_PAGE = 100

# a Celery queue name zart sends to: what every broker accepts
QUEUE_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:@-]{0,199}$")
QUEUE_RULE = "1 to 200 characters: letters, digits and . _ : @ - (not first)"
# The built-in workflow a schedule with a Celery target fires (zart.schedules.celery_target): only a schedule
# may start it, since it dispatches whatever Celery task its input names.
SCHEDULES_ONLY_TASKS = ("zart.schedules.celery-task",)
