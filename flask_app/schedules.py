"""/schedules: durable schedules fired by the workers. Parse, call `ScheduleService`, render."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from flask_app.api import GUARDED, INVALID, ZartBlueprint
from flask_app.auth import current_actor
from flask_app.extension import current_service
from flask_app.guards import protected
from flask_app.schedule_schemas import (
    SCHEDULE_ID_PARAMETER,
    BackfillRequest,
    Firing,
    Schedule,
    ScheduleCreate,
    ScheduleDeleted,
    ScheduleListQuery,
    SchedulePage,
    ScheduleUpdate,
)
from zart import views
from zart.schedule_service import ScheduleService
from zart.schedules.spec import ScheduleSpec, seconds_of, target_options

blp = protected(
    ZartBlueprint("schedules", __name__, description="Durable schedules: leader-free, exactly once per tick.")
)

NOT_FOUND = "`schedule_not_found`: no schedule has this ID."
IN_CODE = "`schedule_declared_in_code`: change it in the code that declares it."
REFUSED = (
    "`invalid_data`: the body is invalid (a bad cron expression or timezone, an interval below one second, an "
    "end before the start, data against the task's schema); `task_not_registered`: no worker registered the task."
)


def _schedules() -> ScheduleService:
    return ScheduleService(current_service())


def _interval(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("every") is not None:
        body["every"] = seconds_of(body["every"])
    return body


@blp.route("/schedules")
class Schedules(MethodView):
    @blp.requires("admin")
    @blp.arguments(ScheduleCreate)
    @blp.response(201, Schedule, description="The schedule was created; its first tick is in `next_fire_at`.")
    @blp.errors({**GUARDED, 409: "`schedule_already_exists`: the ID is taken.", 422: REFUSED})
    def post(self, body: dict[str, Any]) -> Any:
        """Create a schedule"""
        body = _interval(body)
        schedule_id, paused = body.pop("schedule_id"), body.pop("paused")
        spec = ScheduleSpec(id=schedule_id, **target_options(body))
        created = _schedules().create(spec, paused=paused, source="api", triggered_by=current_actor())
        return views.schedule_view(created), 201

    @blp.requires("read")
    @blp.arguments(ScheduleListQuery, location="query")
    @blp.response(200, SchedulePage)
    @blp.errors({**GUARDED, 422: INVALID})
    def get(self, query: dict[str, Any]) -> Any:
        """List schedules with their next fire time and last outcome"""
        page, total = _schedules().list(
            task=query.get("task"), include_disabled=query["all"], limit=query["limit"], offset=query["offset"]
        )
        return views.schedule_page_view(page, total, query["limit"], query["offset"])


@blp.route("/schedules/<schedule_id>", parameters=[SCHEDULE_ID_PARAMETER])
class ScheduleItem(MethodView):
    @blp.requires("read")
    @blp.response(200, Schedule)
    @blp.errors({**GUARDED, 404: NOT_FOUND})
    def get(self, schedule_id: str) -> Any:
        """Get a schedule with its next fire times"""
        return views.schedule_view(_schedules().get(schedule_id))

    @blp.requires("admin")
    @blp.arguments(ScheduleUpdate)
    @blp.response(200, Schedule)
    @blp.errors({**GUARDED, 404: NOT_FOUND, 409: IN_CODE, 422: REFUSED})
    def patch(self, body: dict[str, Any], schedule_id: str) -> Any:
        """Change some fields of a schedule (a new timing starts from the next tick after now)"""
        return views.schedule_view(_schedules().update(schedule_id, _interval(body), triggered_by=current_actor()))

    @blp.requires("admin")
    @blp.response(200, ScheduleDeleted)
    @blp.errors({**GUARDED, 404: NOT_FOUND, 409: IN_CODE})
    def delete(self, schedule_id: str) -> Any:
        """Delete a schedule (its executions stay)"""
        return _schedules().delete(schedule_id, triggered_by=current_actor())


@blp.route("/schedules/<schedule_id>/pause", methods=["POST"], parameters=[SCHEDULE_ID_PARAMETER])
@blp.requires("admin")
@blp.response(200, Schedule)
@blp.errors({**GUARDED, 404: NOT_FOUND})
def pause(schedule_id: str) -> Any:
    """Pause a schedule"""
    return views.schedule_view(_schedules().pause(schedule_id, triggered_by=current_actor()))


@blp.route("/schedules/<schedule_id>/resume", methods=["POST"], parameters=[SCHEDULE_ID_PARAMETER])
@blp.requires("admin")
@blp.response(200, Schedule)
@blp.errors({**GUARDED, 404: NOT_FOUND})
def resume(schedule_id: str) -> Any:
    """Resume a schedule from its next tick (ticks in the pause are not caught up)"""
    return views.schedule_view(_schedules().resume(schedule_id, triggered_by=current_actor()))


@blp.route("/schedules/<schedule_id>/trigger", methods=["POST"], parameters=[SCHEDULE_ID_PARAMETER])
@blp.requires("admin")
@blp.response(200, Firing)
@blp.errors({**GUARDED, 404: NOT_FOUND})
def trigger(schedule_id: str) -> Any:
    """Fire a schedule once now, under its overlap policy"""
    return views.firing_view(schedule_id, _schedules().trigger(schedule_id, triggered_by=current_actor()))


@blp.route("/schedules/<schedule_id>/backfill", methods=["POST"], parameters=[SCHEDULE_ID_PARAMETER])
@blp.requires("admin")
@blp.arguments(BackfillRequest)
@blp.response(200, Firing)
@blp.errors({**GUARDED, 404: NOT_FOUND, 422: INVALID})
def backfill(body: dict[str, Any], schedule_id: str) -> Any:
    """Fire the ticks of a past window; ticks already fired are not fired again"""
    outcome = _schedules().backfill(
        schedule_id, body["start"], body["end"], body.get("overlap"), triggered_by=current_actor()
    )
    return views.firing_view(schedule_id, outcome)
