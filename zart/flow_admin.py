"""Operator controls for limits: list, show, change at runtime, pause and resume a queue, delete.

A change is one short transaction (audited like every admin action); whatever it frees is dispatched right
after the commit, so a raised limit or a resumed queue takes effect at once, not at the next sweep.
"""

from __future__ import annotations

from typing import Any

from zart.admin import audited
from zart.errors import InvalidData, ZartError
from zart.flow.definitions import LimitSpec, check_count, parse_rate, rate_text
from zart.flow.handoff import dispatch_held
from zart.service import ZartService, check_name
from zart.store import admin, db, flow
from zart.views import iso

RELEASE_BATCH = 10_000
CHANGEABLE = ("concurrency", "rate", "burst", "concurrency_key", "key_concurrency", "on_key_busy")


class LimitNotFound(ZartError):
    code = "limit_not_found"
    http_status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"No limit found with name {name}")


def limit_view(row: dict[str, Any]) -> dict[str, Any]:
    """A limit as the CLI and the API show it: the rate as written ("100/m"), counts as numbers."""
    tokens = row.get("tokens")
    return {
        "name": row["name"],
        "concurrency": row["concurrency"],
        "running": row["running"],
        "rate": rate_text(row["rate"], row["period_seconds"]),
        "burst": row["burst"],
        "tokens": None if tokens is None else round(float(tokens), 3),
        "concurrency_key": row["key_path"],
        "key_concurrency": row["key_concurrency"],
        "on_key_busy": row["key_strategy"],
        "paused": row["paused"],
        "held": int(row["held"]),
        "source": row["source"],
        "updated_by": row["updated_by"],
        "updated_at": iso(row["updated_at"]),
    }


class FlowAdmin:
    def __init__(self, service: ZartService) -> None:
        self.service = service
        self._url = service.settings.database_url

    def list(self) -> list[dict[str, Any]]:
        with db.autocommit(self._url) as conn:
            return [limit_view(row) for row in flow.list_limits(conn)]

    def get(self, name: str) -> dict[str, Any]:
        check_name("limit name", name)
        with db.autocommit(self._url) as conn:
            row = flow.get_limit(conn, name)
        if row is None:
            raise LimitNotFound(name)
        return limit_view(row)

    def update(
        self, name: str, changes: dict[str, Any], triggered_by: str, on_behalf_of: str | None = None
    ) -> dict[str, Any]:
        """Create or change a limit; fields not in `changes` keep their value (None removes that limit)."""
        check_name("limit name", name)
        unknown = sorted(set(changes) - set(CHANGEABLE))
        if unknown:
            raise InvalidData(f"unknown limit field(s): {', '.join(unknown)}; expected {', '.join(CHANGEABLE)}")
        if not changes:
            raise InvalidData(f"name at least one of {', '.join(CHANGEABLE)} to change")
        with db.transaction(self._url) as conn:
            current = flow.get_limit(conn, name) if flow.lock_limit(conn, name) else None
            spec = merged_spec(name, current, changes)
            flow.set_limit(conn, spec.columns(), triggered_by)
            admin.record_action(conn, action="limit-set", triggered_by=triggered_by, details={"limit": name, **changes})
        self._dispatch(name)
        return self.get(name)

    def pause(self, name: str, triggered_by: str, on_behalf_of: str | None = None) -> dict[str, Any]:
        """Stop admitting executions of this queue across the fleet (running ones finish)."""
        return self._set_paused(name, True, triggered_by, on_behalf_of)

    def resume(self, name: str, triggered_by: str, on_behalf_of: str | None = None) -> dict[str, Any]:
        view = self._set_paused(name, False, triggered_by, on_behalf_of)
        self._dispatch(name)
        return view

    def _set_paused(self, name: str, paused: bool, triggered_by: str, on_behalf_of: str | None) -> dict[str, Any]:
        check_name("limit name", name)
        with db.transaction(self._url) as conn:
            if not flow.set_paused(conn, name, paused, triggered_by):
                raise LimitNotFound(name)
            action = "limit-pause" if paused else "limit-resume"
            admin.record_action(
                conn, action=action, triggered_by=triggered_by, details=audited({"limit": name}, on_behalf_of)
            )
        return self.get(name)

    def delete(self, name: str, triggered_by: str) -> dict[str, Any]:
        """Remove a limit: what it held is released. A limit declared in code comes back at the next worker
        start; to keep a queue open, raise its limit instead."""
        check_name("limit name", name)
        with db.transaction(self._url) as conn:
            released = flow.delete_limit(conn, name, RELEASE_BATCH)
            if released is None:
                raise LimitNotFound(name)
            admin.record_action(conn, action="limit-delete", triggered_by=triggered_by, details={"limit": name})
        for execution_id in released:
            self.service.publish(execution_id)
        return {"name": name, "deleted": True, "released": len(released)}

    def _dispatch(self, name: str) -> None:
        with db.autocommit(self._url) as conn:
            dispatch_held(
                conn,
                [name],
                lambda execution_id, delay: self.service.publish(execution_id, delay),
                self.service.settings.short_wait_hint,
            )


def merged_spec(name: str, current: dict[str, Any] | None, changes: dict[str, Any]) -> LimitSpec:
    """The limit after applying `changes` to its stored columns (validated as a whole)."""
    base = current or {}
    rate_value = changes.get("rate", rate_text(base.get("rate"), base.get("period_seconds")))
    burst = changes.get("burst", base.get("burst") if "rate" not in changes else None)
    if burst is not None:
        check_count("burst", burst)
    if rate_value is None and changes.get("burst") is not None:
        raise InvalidData("a burst needs a rate")
    concurrency = changes.get("concurrency", base.get("concurrency"))
    key_path = changes.get("concurrency_key", base.get("key_path"))
    key_concurrency = changes.get("key_concurrency", base.get("key_concurrency"))
    if key_path is not None and key_concurrency is None:
        key_concurrency = 1
    if key_path is None and "concurrency_key" in changes:
        key_concurrency = None
    return LimitSpec(
        name=name,
        concurrency=concurrency,
        rate=None if rate_value is None else parse_rate(rate_value, burst),
        key_path=key_path,
        key_concurrency=key_concurrency,
        key_strategy=changes.get("on_key_busy", base.get("key_strategy") or "wait"),
    )
