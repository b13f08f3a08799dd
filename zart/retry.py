"""Retry policies for steps and whole executions; pure arithmetic, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry after the first attempt, and how long to wait before each retry."""

    max_retries: int = 0
    base_delay: float = 0.0
    factor: float = 1.0
    max_delay: float | None = None
    jitter: bool = False

    @classmethod
    def none(cls) -> RetryPolicy:
        return cls()

    @classmethod
    def fixed(cls, max_retries: int, delay: float) -> RetryPolicy:
        return cls(max_retries=_non_negative_int(max_retries), base_delay=_non_negative(delay))

    @classmethod
    def exponential(
        cls, max_retries: int, base_delay: float, max_delay: float | None = None, jitter: bool = True
    ) -> RetryPolicy:
        return cls(
            max_retries=_non_negative_int(max_retries),
            base_delay=_non_negative(base_delay),
            factor=2.0,
            max_delay=None if max_delay is None else _non_negative(max_delay),
            jitter=jitter,
        )

    def allows_retry(self, attempts_made: int) -> bool:
        """True when another attempt may follow `attempts_made` failed attempts."""
        return attempts_made <= self.max_retries

    def delay_before_retry(self, attempts_made: int) -> float:
        """Seconds to wait before attempt number `attempts_made + 1`."""
        delay = self.base_delay * (self.factor ** max(attempts_made - 1, 0))
        if self.max_delay is not None:
            delay = min(delay, self.max_delay)
        if self.jitter and delay > 0:
            delay = random.uniform(delay / 2, delay)
        return delay

    def to_json(self) -> dict[str, object]:
        return {
            "max_retries": self.max_retries,
            "base_delay": self.base_delay,
            "factor": self.factor,
            "max_delay": self.max_delay,
            "jitter": self.jitter,
        }


def _non_negative(value: float) -> float:
    if value < 0:
        raise ValueError("retry delays must not be negative")
    return float(value)


def _non_negative_int(value: int) -> int:
    if value < 0:
        raise ValueError("max_retries must not be negative")
    return int(value)
