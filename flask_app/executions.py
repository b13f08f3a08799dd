"""/executions: schedule, list, status, long-poll and cancel. Parse, call the service, render."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView

from flask_app.api import GUARDED, INVALID, NOT_FOUND, UNAVAILABLE, ZartBlueprint, respond
from flask_app.auth import Forbidden, current_actor, may
from flask_app.extension import current_service, current_zart
from flask_app.guards import protected
from flask_app.schemas import (
    EXECUTION_ID_PARAMETER,
    Cancelled,
    ExecutionPage,
    ExecutionStatus,
    Finished,
    ListQuery,
    Scheduled,
    ScheduleRequest,
    StillRunning,
    WaitQuery,
)
from zart import views
from zart.limits import CALLER_NAMED_TASKS

blp = protected(ZartBlueprint("executions", __name__, description="Schedule, inspect, wait for and cancel executions."))


@blp.route("/executions")
class Executions(MethodView):
    @blp.requires("write")
    @blp.arguments(ScheduleRequest)
    @blp.response(201, Scheduled, description="The execution was created and handed to the workers.")
    @blp.alt_response(
        200,
        schema=Scheduled,
        success=True,
        description="This idempotency key already names an execution, or this dedup key an active one.",
    )
    @blp.errors(
        {
            **GUARDED,
            409: "`execution_already_exists`: the idempotency key belongs to an execution of another task.",
            422: "`task_not_registered`: no worker registered the task; `invalid_data`: the body, or `data` "
            "against the task's schema, is invalid.",
        }
    )
    def post(self, body: dict[str, Any]) -> Any:
        """Schedule an execution

        A canvas (`zart.canvas`), whose input names the Celery tasks it sends, needs an `admin` token, as a
        schedule with a Celery target does."""
        if body["task"] in CALLER_NAMED_TASKS and not may("admin"):
            raise Forbidden(f"'{body['task']}' sends the Celery tasks its data names: it needs an 'admin' token.")
        scheduled = current_service().schedule(
            body["task"],
            body["data"],
            idempotency_key=body["idempotency_key"],
            triggered_by=current_actor(),
            priority=body["priority"],
            dedup_key=body["dedup_key"],
            debounce=body["debounce"],
        )
        view = views.scheduled_view(scheduled.execution)
        return (view, 201) if scheduled.created else respond(Scheduled, view, 200)

    @blp.requires("read")
    @blp.arguments(ListQuery, location="query")
    @blp.response(200, ExecutionPage)
    @blp.errors({**GUARDED, 422: INVALID})
    def get(self, query: dict[str, Any]) -> Any:
        """List executions, newest first unless `order=asc`; page by `offset` or by `cursor`"""
        page = current_service().list_page(**query)
        return views.list_view(page.executions, page.total, query["limit"], query["offset"], page.next_cursor)


@blp.route("/executions/<execution_id>", parameters=[EXECUTION_ID_PARAMETER])
@blp.requires("read")
@blp.response(200, ExecutionStatus)
@blp.errors({**GUARDED, 404: NOT_FOUND, 422: INVALID})
def status(execution_id: str) -> Any:
    """Get the status of an execution"""
    return views.status_view(current_service().status(execution_id))


@blp.route("/executions/<execution_id>/wait", parameters=[EXECUTION_ID_PARAMETER])
@blp.requires("read")
@blp.arguments(WaitQuery, location="query")
@blp.response(200, Finished, description="The execution finished (completed, failed or cancelled).")
@blp.alt_response(202, schema=StillRunning, success=True, description="The timeout came first.")
@blp.errors(
    {
        **GUARDED,
        404: NOT_FOUND,
        422: INVALID,
        503: UNAVAILABLE + " `service_unavailable` also when too many requests are already waiting.",
    }
)
def wait(query: dict[str, Any], execution_id: str) -> Any:
    """Wait for an execution to finish (long-poll)"""
    with current_zart().wait_slots.slot():
        # waitress offers this when it reads ahead on the connection: a client that hung up frees its thread
        gone = request.environ.get("waitress.client_disconnected")
        finished, row = current_service().wait(execution_id, query["timeout"], gone=gone)
    if finished:
        return views.finished_view(row)
    return respond(StillRunning, views.still_running_view(row), 202)


@blp.route("/executions/<execution_id>/cancel", methods=["POST"], parameters=[EXECUTION_ID_PARAMETER])
@blp.requires("write")
@blp.response(200, Cancelled)
@blp.errors(
    {
        **GUARDED,
        404: NOT_FOUND,
        409: "`execution_already_finished`: it already completed, failed or was cancelled.",
        422: INVALID,
    }
)
def cancel(execution_id: str) -> Any:
    """Cancel a pending, running or waiting execution"""
    current_service().cancel(execution_id, triggered_by=current_actor())
    return views.cancelled_view(execution_id)
