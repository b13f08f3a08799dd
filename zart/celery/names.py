"""The name of the Celery task a doorbell invokes, in one place for the publisher and the standby script that
recognises a queued doorbell by it."""

from __future__ import annotations

RUN_TASK = "zart.run_execution"
