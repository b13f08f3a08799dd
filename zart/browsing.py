"""Reading the system as an operator browses it: executions a page at a time, recent activity, workers.

What the dashboard shows and what an API route could serve alike; each read is one short autocommit
query through the store. Paging is by keyset (a cursor naming the last row seen), so the thousandth page
of a million executions costs what the first does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from zart.errors import InvalidData
from zart.limits import EXECUTION_STATUSES, MAX_LIST_LIMIT, TERMINAL_STATUSES
from zart.service import ZartService, check_name
from zart.store import activity, browse, counts, db

ACTIVITY_MINUTES = 60
WORKERS_SHOWN = 50


@dataclass(frozen=True)
class Cursor:
    """Where a page starts or ends: the creation time and id of a row (ids never contain `|`)."""

    created_at: datetime
    execution_id: str

    def encode(self) -> str:
        return f"{self.created_at.isoformat()}|{self.execution_id}"

    @staticmethod
    def decode(text: str) -> Cursor:
        moment, separator, execution_id = text.partition("|")
        try:
            created_at = datetime.fromisoformat(moment)
        except ValueError:
            created_at = None
        if not separator or not execution_id or created_at is None or created_at.tzinfo is None:
            raise InvalidData("the page cursor is malformed; start again from the first page")
        return Cursor(created_at, execution_id)

    @staticmethod
    def of(row: dict[str, Any]) -> Cursor:
        return Cursor(row["created_at"], row["execution_id"])


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    task: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    id_prefix: str | None = None

    def check(self) -> None:
        if self.status is not None and self.status not in EXECUTION_STATUSES:
            raise InvalidData(f"status must be one of {', '.join(EXECUTION_STATUSES)}")
        if self.task is not None:
            check_name("task name", self.task)
        if self.id_prefix is not None:
            check_name("id prefix", self.id_prefix)
        for moment in (self.created_from, self.created_to):
            if moment is not None and moment.tzinfo is None:
                raise InvalidData("times must include a timezone")
        if self.created_from and self.created_to and self.created_from >= self.created_to:
            raise InvalidData("the start of the time range must come before its end")

    @property
    def counted(self) -> bool:
        """Whether the maintained counts can give the total (they know task and status only)."""
        return self.created_from is None and self.created_to is None and not self.id_prefix


@dataclass(frozen=True)
class Page:
    executions: list[dict[str, Any]]
    older: Cursor | None  # the next page down, if any
    newer: Cursor | None  # the page above, if this is not the newest
    total: int | None  # how many match, when the maintained counts can say


class BrowseService:
    def __init__(self, service: ZartService) -> None:
        self.service = service
        self._url = service.settings.database_url

    def page(
        self,
        filters: Filters,
        *,
        older_than: Cursor | None = None,
        newer_than: Cursor | None = None,
        limit: int = 50,
    ) -> Page:
        """One page of executions, newest first, before `older_than` or after `newer_than` (not both)."""
        filters.check()
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidData(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        if older_than is not None and newer_than is not None:
            raise InvalidData("page either older or newer than a cursor, not both")
        with db.autocommit(self._url) as conn:
            found = browse.page(
                conn,
                status=filters.status,
                task=filters.task,
                created_from=filters.created_from,
                created_to=filters.created_to,
                id_prefix=filters.id_prefix,
                older_than=None if older_than is None else (older_than.created_at, older_than.execution_id),
                newer_than=None if newer_than is None else (newer_than.created_at, newer_than.execution_id),
                limit=limit + 1,
            )
            total = counts.matching(conn, task=filters.task, status=filters.status) if filters.counted else None
        more = len(found) > limit
        if newer_than is not None:
            shown = found[1:] if more else found
            newer = Cursor.of(shown[0]) if more and shown else None
            older = Cursor.of(shown[-1]) if shown else None
        else:
            shown = found[:limit]
            older = Cursor.of(shown[-1]) if more else None
            newer = Cursor.of(shown[0]) if older_than is not None and shown else None
        return Page(shown, older, newer, total)

    def finished_per_minute(self, minutes: int = ACTIVITY_MINUTES) -> list[dict[str, int]]:
        """For each of the last `minutes` minutes (oldest first), how many executions finished, by status."""
        with db.autocommit(self._url) as conn:
            found = activity.finished_per_minute(conn, minutes)
        buckets = [dict.fromkeys(TERMINAL_STATUSES, 0) for _ in range(minutes)]
        for row in found:
            index = minutes - 1 - int(row["minutes_ago"])
            if 0 <= index < minutes and row["status"] in TERMINAL_STATUSES:
                buckets[index][row["status"]] += int(row["n"])
        return buckets

    def workers_seen(self) -> list[dict[str, Any]]:
        """Worker processes known from the task catalog, and those holding running executions now."""
        with db.autocommit(self._url) as conn:
            return activity.workers_seen(conn, WORKERS_SHOWN)
