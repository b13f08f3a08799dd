"""The claimed run as the mechanics beside the context see it.

Pausing, versioning, database steps and remote steps each serve one kind of durable call. They work on the
run's position, checkpoints, lease fence and connection, which `Context` holds; this Protocol names exactly
that, so those modules sit below the context instead of importing it back.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from zart.engine.lease import LeaseKeeper


class ClaimedRun(Protocol):
    """What a durable call's mechanics read and write of the run that the context drives."""

    execution_id: str
    run_index: int
    attempt: int
    to_publish: list[str]
    _url: str
    _conn: Connection
    _token: str
    _lease: float
    _keeper: LeaseKeeper
    _position: int
    _checkpoints: dict[str, dict[str, Any]]
    _names_by_position: dict[int, str]
    _patches: dict[str, bool]
    _pause_rules: list[dict[str, Any]] | None

    def _enter(self, name: str, kind: str) -> tuple[int, dict[str, Any] | None]: ...

    def _checkpoint(
        self,
        name: str,
        position: int,
        kind: str,
        output: Any,
        attempts: int,
        failures: int,
        started_at: datetime,
        record_attempt: bool = False,
    ) -> Any: ...

    def _write(self, write: Callable[..., Any], **params: Any) -> Any: ...

    def _reload(self, name: str) -> dict[str, Any]: ...

    def _note_pausing(self, version: str | None) -> None: ...

    def _suspend(self, wake_at: datetime | None) -> None: ...

    def _park_on_steps(
        self, kind: str, names: list[str], wake_at: datetime | None, *, relaxed: bool = False
    ) -> None: ...

    def _store_errors(self) -> AbstractContextManager[None]: ...
