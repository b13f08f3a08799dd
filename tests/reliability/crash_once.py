"""Imported by one test's worker: its first start fails inside Celery the way a broker error can.

Celery reports such a failure as "Unrecoverable error" and shuts the worker down; the flag file makes only
the first start fail, so the worker started after it comes up normally.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import bootsteps, signals

CRASH_FLAG = "ZART_TEST_CRASH_ONCE_FLAG"


class CrashOnce(bootsteps.StartStopStep):
    def start(self, worker: Any) -> None:
        flag = Path(os.environ[CRASH_FLAG])
        if flag.exists():
            flag.unlink()
            raise ConnectionError("simulated unrecoverable broker error")


@signals.worker_init.connect(weak=False)
def add_crashing_step(sender: Any = None, **_: Any) -> None:
    if os.environ.get(CRASH_FLAG):
        sender.app.steps["worker"].add(CrashOnce)
