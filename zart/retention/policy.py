"""The retention policy: how long each final status is kept, parsed from `ZART_RETENTION`.

`completed=30d,failed=90d,cancelled=90d` (the default), `14d` (every final status), or `off`. Durations take
s, m, h, d or w. A status left out of a list is kept forever. Pure parsing, no I/O.
"""

from __future__ import annotations

import re

from zart.errors import ConfigurationError, InvalidData
from zart.limits import TERMINAL_STATUSES

DEFAULT_RETENTION = "completed=30d,failed=90d,cancelled=90d"
OFF = ("off", "none", "never", "0")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
MAX_SECONDS = 100 * 365 * 86400

Policy = dict[str, float]


def parse_duration(text: str) -> float:
    """`30d` → seconds. Raises InvalidData for anything else (zero and negatives too)."""
    match = _DURATION.fullmatch(text or "")
    if match is None:
        raise InvalidData(f"'{text}' is not a duration like 90s, 15m, 12h, 30d or 2w")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= MAX_SECONDS:
        raise InvalidData(f"'{text}' must be more than nothing and at most 100 years")
    return seconds


def parse_policy(text: str | None) -> Policy:
    """Seconds to keep each final status; empty means retention is off."""
    raw = (DEFAULT_RETENTION if text is None or not text.strip() else text).strip()
    if raw.lower() in OFF:
        return {}
    try:
        if "=" not in raw:
            seconds = parse_duration(raw)
            return dict.fromkeys(TERMINAL_STATUSES, seconds)
        policy: Policy = {}
        for part in raw.split(","):
            status, _, duration = (piece.strip() for piece in part.partition("="))
            if status not in TERMINAL_STATUSES:
                raise InvalidData(f"'{status}' is not a final status ({', '.join(TERMINAL_STATUSES)})")
            if status in policy:
                raise InvalidData(f"'{status}' is given twice")
            policy[status] = parse_duration(duration)
        return policy
    except InvalidData as exc:
        raise ConfigurationError(f"ZART_RETENTION: {exc.message} (e.g. {DEFAULT_RETENTION}, or off)") from None


def describe(policy: Policy) -> str:
    """The policy in the form it is written (for logs and the README's examples)."""
    if not policy:
        return "off"
    return ",".join(f"{status}={_short(seconds)}" for status, seconds in policy.items())


def _short(seconds: float) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"
