"""Template helpers: times in UTC (local time added on hover by the page script), durations, JSON, statuses.

Every status is shown as a word with a symbol, never by colour alone.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

STATUS_SYMBOLS = {
    "pending": "…",
    "running": "▶",
    "waiting": "‖",
    "completed": "✓",
    "failed": "✗",
    "cancelled": "⊘",
    "interrupted": "↯",
}


def utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is UTC:
        return moment
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


_NO_TIME = Markup('<span class="none">—</span>')


def when(moment: datetime | None) -> Markup:
    """`<time>` in UTC; the page script adds the reader's local time to its title (this runs per cell: keep it
    cheap)."""
    moment = utc(moment)
    if moment is None:
        return _NO_TIME
    shown = f"{moment:%Y-%m-%d %H:%M:%S}"
    iso = f"{shown[:10]}T{shown[11:]}.{moment.microsecond // 1000:03d}Z"
    return Markup(f'<time datetime="{iso}">{shown}\u00a0UTC</time>')


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def duration(start: datetime | None, end: datetime | None) -> str:
    start, end = utc(start), utc(end)
    if start is None or end is None:
        return "—"
    return seconds_text(max((end - start).total_seconds(), 0.0))


def pretty_json(value: Any) -> str:
    """Short values on one line (the C encoder); longer ones indented for reading."""
    compact = json.dumps(value, ensure_ascii=False, default=str)
    if len(compact) <= 60:
        return compact
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def status_badge(status: str | None) -> Markup:
    name = status or "unknown"
    symbol = STATUS_SYMBOLS.get(name, "•")
    return Markup(
        f'<span class="status s-{escape(name)}"><span aria-hidden="true">{symbol}</span> {escape(name)}</span>'
    )


FILTERS = {
    "when": when,
    "duration_text": seconds_text,
    "pretty_json": pretty_json,
    "status": status_badge,
}
GLOBALS = {"duration": duration}
