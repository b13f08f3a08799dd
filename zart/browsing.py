"""Reading the system as an operator browses it: executions a page at a time in both directions, recent
activity, and the workers seen.

Pages come from `ZartService.list_page` (the API's list, by keyset cursor); this adds the way back up: a
"newer" page is read upwards from the first row shown and turned round, so it costs what an older page does.
What the dashboard shows here an API route could serve alike; each read is one short autocommit query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from zart import paging
from zart.errors import InvalidData
from zart.limits import TERMINAL_STATUSES
from zart.service import ZartService
from zart.store import activity, db

ACTIVITY_MINUTES = 60
WORKERS_SHOWN = 50


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    task: str | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None
    id_prefix: str | None = None


@dataclass(frozen=True)
class Browsed:
    executions: list[dict[str, Any]]  # newest first
    older: str | None  # the cursor of the next page down, if any
    newer: str | None  # the cursor of the page above, unless this is the newest
    total: int | None  # how many match, when the maintained counts can say


def _cursor(row: dict[str, Any], order: str) -> str:
    return paging.encode(paging.Cursor(row["created_at"], row["execution_id"], order))


class BrowseService:
    def __init__(self, service: ZartService) -> None:
        self.service = service
        self._url = service.settings.database_url

    def page(self, filters: Filters, *, older: str | None = None, newer: str | None = None, limit: int = 50) -> Browsed:
        """The page after cursor `older` (going down), or before cursor `newer` (going up), or the newest."""
        if older is not None and newer is not None:
            raise InvalidData("page either older or newer than a cursor, not both")
        narrowing = {
            "status": filters.status,
            "task": filters.task,
            "created_from": filters.created_from,
            "created_before": filters.created_before,
            "id_prefix": filters.id_prefix,
            "limit": limit,
        }
        if newer is not None:
            upwards = self.service.list_page(order="asc", cursor=newer, **narrowing)
            rows = upwards.executions[::-1]
            return Browsed(rows, _cursor(rows[-1], "desc") if rows else None, upwards.next_cursor, upwards.total)
        page = self.service.list_page(order="desc", cursor=older, **narrowing)
        rows = page.executions
        return Browsed(rows, page.next_cursor, _cursor(rows[0], "asc") if older and rows else None, page.total)

    def finished_per_minute(self, minutes: int = ACTIVITY_MINUTES) -> list[dict[str, int]]:
        """For each of the last `minutes` minutes (oldest first), how many top-level executions finished, by
        status (children are counted in their parents)."""
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
