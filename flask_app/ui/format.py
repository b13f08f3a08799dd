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


def _time_html(moment: datetime | None) -> str:
    moment = utc(moment)
    if moment is None:
        return str(_NO_TIME)
    day = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"  # (strftime costs several times more)
    clock = f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    return f'<time datetime="{day}T{clock}.{moment.microsecond // 1000:03d}Z">{day} {clock}\u00a0UTC</time>'


def when(moment: datetime | None) -> Markup:
    """`<time>` in UTC; the page script adds the reader's local time to its title (this runs per cell: keep it
    cheap)."""
    return Markup(_time_html(moment))


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


def _status_html(status: str | None) -> str:
    name = escape(status or "unknown")
    symbol = STATUS_SYMBOLS.get(str(name), "•")
    return f'<span class="status s-{name}"><span aria-hidden="true">{symbol}</span> {name}</span>'


def status_badge(status: str | None) -> Markup:
    return Markup(_status_html(status))


_ATTEMPTS_HEAD = (
    '<table class="attempts"><thead><tr><th scope="col">Attempt</th><th scope="col">Started</th>'
    '<th scope="col">Ended</th><th scope="col">Outcome</th><th scope="col">Error</th></tr></thead><tbody>'
)


def attempts_table(attempts: list[dict[str, Any]] | None) -> Markup:
    """A step's attempt history as one table. Built here rather than in the template: a long execution has
    hundreds of attempts, and one string per row costs a fraction of a template expression per cell."""
    if not attempts:
        return Markup("")
    rows = []
    for a in attempts:
        error = a.get("error")
        reason = f"{escape(error.get('type'))}: {escape(error.get('message'))}" if error else ""
        rows.append(
            f"<tr><td>{escape(a['attempt'])}</td><td>{_time_html(a['started_at'])}</td>"
            f"<td>{_time_html(a['ended_at'])}</td><td>{_status_html(a['outcome'])}</td><td>{reason}</td></tr>"
        )
    return Markup(_ATTEMPTS_HEAD + "".join(rows) + "</tbody></table>")


FILTERS = {
    "when": when,
    "duration_text": seconds_text,
    "pretty_json": pretty_json,
    "status": status_badge,
    "attempts": attempts_table,
}
GLOBALS = {"duration": duration}
