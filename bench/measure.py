"""Small measuring tools: percentiles, time-bounded sampling, concurrent submission, polling."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a p99 of 100 samples is the 99th smallest, a real sample."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    """p50/p99 of a set of samples (same unit as the samples)."""

    n: int
    p50: float
    p99: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(len(values), percentile(values, 50), percentile(values, 99))


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else math.nan


def sample(measure: Callable[[], float | None], count: int, seconds: float) -> list[float]:
    """Call `measure` up to `count` times or until `seconds` pass; keeps the values that are not None."""
    deadline = time.monotonic() + seconds
    values: list[float] = []
    for _ in range(count):
        value = measure()
        if value is not None:
            values.append(value)
        if time.monotonic() > deadline:
            break
    return values


def submit_all(submit: Callable[[T], Any], items: Sequence[T], threads: int) -> list[Any]:
    """Submit `items` from `threads` client threads, as concurrent callers (web requests) would."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bench-client") as pool:
        return list(pool.map(submit, items))


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02, what: str = "it") -> float:
    """Poll `condition` until true; returns the monotonic time it became true. Fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f}s")
        time.sleep(interval)
    return time.monotonic()


def timed(fn: Callable[[], Any]) -> float:
    """Milliseconds one call of `fn` takes."""
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000
