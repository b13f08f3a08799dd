"""Keep a worker process alive: restart it when it dies on its own, stop it when asked to.

Celery's worker can exit on an "unrecoverable" broker error (a Redis restart at the wrong moment), which
would leave a host without a worker until something restarts it. zart's state lives in Postgres, so a
fresh worker simply carries on; this loop provides that restart without requiring systemd or Kubernetes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from types import FrameType

RESTART_DELAY_SECONDS = 1.0
# what a supervised child exits with when it could not start at all (a workflow module that cannot be imported):
# a new one would fail the same way, so the supervisor stops with exit 1 instead of restarting it forever
COULD_NOT_START = 78  # EX_CONFIG
SUPERVISED_ENV = "ZART_WORKER_SUPERVISED"
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)


def supervise(argv: list[str], say: Callable[[str], None]) -> int:
    """Run `argv` until it exits cleanly or a forwarded signal asked it to stop; returns its exit code."""
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    stop_signal = signal.SIGTERM

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping, stop_signal
        stopping, stop_signal = True, signal.Signals(signum)
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    while True:
        child = subprocess.Popen(argv, env={**os.environ, SUPERVISED_ENV: "1"})
        if stopping:  # asked to stop while the new worker was starting: the signal reached only the old one
            child.send_signal(stop_signal)
        code = child.wait()
        if stopping or code == 0:
            return code
        if code == COULD_NOT_START:
            say("worker could not start; not starting another")
            return 1
        say(f"worker exited with code {code}; starting a new one in {RESTART_DELAY_SECONDS:g}s")
        time.sleep(RESTART_DELAY_SECONDS)
        if stopping:
            return code
