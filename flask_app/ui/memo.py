"""A value recomputed at most every few seconds per process: for figures that cost a scan (the stranded
count reads every active execution) and that every open overview would otherwise ask for every 5 s."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any


class Memo:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._values: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            found = self._values.get(key)
        if found is not None and found[0] > now:
            return found[1]
        value = compute()
        with self._lock:
            self._values[key] = (now + self.seconds, value)
        return value
