"""Helpers for the schedule tests: the schedule service, and the executions a schedule fired, read from the store."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.harness import Environment, stop_together
from zart.schedule_service import ScheduleService
from zart.service import ZartService
from zart.store import db


@pytest.fixture()
def schedules(service: ZartService) -> ScheduleService:
    return ScheduleService(service)


def fired(env: Environment, schedule_id: str) -> list[dict[str, Any]]:
    """Every execution the schedule fired, by tick, with how late each was created."""
    with db.autocommit(env.database_url) as conn:
        result = conn.execute(
            text(
                """
                SELECT id, status, scheduled_for, created_at, started_at, completed_at,
                       EXTRACT(EPOCH FROM created_at - scheduled_for) AS lateness
                FROM executions WHERE schedule_id = :id ORDER BY scheduled_for, id
                """
            ),
            {"id": schedule_id},
        )
        return [dict(row._mapping) for row in result]


def stop_all(workers: list[Any]) -> None:
    stop_together(workers)
