"""The offset the engine's clock runs ahead of wall time: zero in production, moved by zart.testing so that
sleeps, back-offs and event timeouts pass instantly in a test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

offset = timedelta(0)


def utcnow() -> datetime:
    """The engine's clock: wall time, moved ahead only by zart.testing's controllable clock."""
    return datetime.now(UTC) + offset


def advance(delta: timedelta) -> None:
    global offset
    if delta > timedelta(0):
        offset += delta


def reset() -> None:
    global offset
    offset = timedelta(0)
