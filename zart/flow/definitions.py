"""What a limit is, and the parsing of what people write for one ("100/m", "customer.id"), refused early.

Every check raises InvalidData, so a bad declaration fails at import, a bad CLI option exits 1 and a bad
request body answers 422, all with the same sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from zart.errors import InvalidData

KEY_STRATEGIES = ("wait", "cancel_newest", "cancel_in_progress")
MAX_LIMIT = 1_000_000
MAX_PRIORITY = 1_000_000
MAX_KEY_DEPTH = 8

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}
_RATE = re.compile(r"^\s*(?P<count>\d+)\s*/\s*(?P<every>\d+(\.\d+)?)?\s*(?P<unit>[a-z]+)\s*$")
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Rate:
    """At most `count` starts per `period_seconds`, in bursts of up to `burst` (a token bucket)."""

    count: int
    period_seconds: float
    burst: int

    def text(self) -> str:
        return f"{self.count}/{_period_text(self.period_seconds)}"


def parse_rate(value: str, burst: int | None = None) -> Rate:
    """`"100/m"`, `"10/s"`, `"5/10s"`, `"1000/hour"`; the burst defaults to the count."""
    match = _RATE.match(value) if isinstance(value, str) else None
    unit = _unit_seconds(match["unit"]) if match else None
    if match is None or unit is None:
        raise InvalidData(
            f"rate {value!r} is not understood: write COUNT/PERIOD with a period in s, m, h or d (e.g. '100/m')"
        )
    count = int(match["count"])
    period = unit * float(match["every"] or 1)
    check_count("rate", count, minimum=1)
    if period <= 0:
        raise InvalidData(f"rate {value!r} needs a period longer than zero")
    if burst is not None:
        check_count("burst", burst, minimum=1)
    return Rate(count, period, count if burst is None else burst)


def _unit_seconds(unit: str) -> float | None:
    """A unit's length; plurals of the long names ("minutes", "secs") too, never "ms"."""
    if unit in _UNITS:
        return _UNITS[unit]
    if len(unit) > 3 and unit.endswith("s"):
        return _UNITS.get(unit[:-1])
    return None


def check_count(what: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_LIMIT:
        raise InvalidData(f"{what} must be a whole number from {minimum} to {MAX_LIMIT} (got {value!r})")
    return value


def check_priority(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_PRIORITY:
        raise InvalidData(f"priority must be a whole number from -{MAX_PRIORITY} to {MAX_PRIORITY} (got {value!r})")
    return value


def parse_key_path(value: str) -> str:
    """A field of the input, or a dotted path into nested objects: `customer_id`, `customer.id`."""
    parts = value.split(".") if isinstance(value, str) else []
    if not parts or len(parts) > MAX_KEY_DEPTH or not all(_KEY_SEGMENT.match(p) for p in parts):
        raise InvalidData(
            f"concurrency key {value!r} must be a field name or a dotted path (letters, digits, _ and -, "
            f"up to {MAX_KEY_DEPTH} levels), e.g. 'customer_id' or 'customer.id'"
        )
    return value


def check_strategy(value: Any) -> str:
    if value not in KEY_STRATEGIES:
        raise InvalidData(f"on_key_busy must be one of {', '.join(KEY_STRATEGIES)} (got {value!r})")
    return str(value)


@dataclass(frozen=True)
class LimitSpec:
    """A limit as declared in code or set by an operator. None means "no such limit"."""

    name: str
    concurrency: int | None = None
    rate: Rate | None = None
    key_path: str | None = None
    key_concurrency: int | None = None
    key_strategy: str = "wait"

    def __post_init__(self) -> None:
        if self.concurrency is not None:
            check_count("concurrency", self.concurrency, minimum=1)
        if self.key_path is not None:
            parse_key_path(self.key_path)
        if self.key_concurrency is not None:
            check_count("key concurrency", self.key_concurrency, minimum=1)
        check_strategy(self.key_strategy)
        if self.key_concurrency is not None and self.key_path is None:
            raise InvalidData("a per-key concurrency needs a concurrency key (the input field to group by)")

    def with_key(self, key_path: str | None, key_concurrency: int | None, strategy: str) -> LimitSpec:
        return replace(self, key_path=key_path, key_concurrency=key_concurrency, key_strategy=strategy)

    def columns(self) -> dict[str, Any]:
        """The flow_limits columns this spec sets."""
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "rate": None if self.rate is None else self.rate.count,
            "period_seconds": None if self.rate is None else self.rate.period_seconds,
            "burst": None if self.rate is None else self.rate.burst,
            "key_path": self.key_path,
            "key_concurrency": self.key_concurrency,
            "key_strategy": self.key_strategy,
        }


def _period_text(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds % size == 0:
            count = int(seconds // size)
            return unit if count == 1 else f"{count}{unit}"
    return "s" if seconds == 1 else f"{seconds:g}s"


def rate_text(count: int | None, period_seconds: float | None) -> str | None:
    """The stored rate written back the way people write it ("100/m")."""
    if count is None or period_seconds is None:
        return None
    return f"{count}/{_period_text(period_seconds)}"


def missing_key(created: dict[str, Any]) -> str | None:
    """What is wrong with a new execution (as the insert returned it) whose limit is keyed on its input but whose
    input has no key; None when nothing is."""
    if created["key_path"] is not None and created["flow_key"] is None:
        return f"data has no '{created['key_path']}', the concurrency key of limit '{created['flow_limit']}'"
    return None
