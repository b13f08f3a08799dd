"""/events: deliver an event to an execution parked on `ctx.wait_for_event(name)`."""

from __future__ import annotations

from typing import Any

from flask import request

from flask_app.api import GUARDED, NOT_FOUND, ZartBlueprint
from flask_app.auth import current_actor
from flask_app.body import NO_BODY, read_json
from flask_app.extension import current_service
from flask_app.guards import protected
from flask_app.schemas import EVENT_NAME_PARAMETER, EXECUTION_ID_PARAMETER, Delivered
from zart import views
from zart.errors import InvalidData

blp = protected(ZartBlueprint("events", __name__, description="Deliver events to waiting executions."))

ANY_JSON_BODY = {
    "description": "Any JSON document; it becomes the event payload (send `null` for an event without data). "
    "Strings may not contain U+0000, which PostgreSQL cannot store.",
    "required": True,
    "content": {"application/json": {"schema": {}}},
}


@blp.route(
    "/events/<execution_id>/<path:event_name>",  # a name may hold `/`; an execution id never does
    methods=["POST"],
    parameters=[EXECUTION_ID_PARAMETER, EVENT_NAME_PARAMETER],
)
@blp.requires("write")
@blp.doc(requestBody=ANY_JSON_BODY)
@blp.response(200, Delivered)
@blp.errors(
    {
        **GUARDED,
        404: NOT_FOUND,
        409: "`not_waiting_for_event`: the execution is not waiting for this event.",
        422: "`invalid_data`: the body is missing or not JSON, or the event name is malformed.",
    }
)
def deliver(execution_id: str, event_name: str) -> Any:
    """Deliver an event"""
    payload = read_json(request)
    if payload is NO_BODY:  # the body is the payload and must be JSON: an event without data sends `null`
        raise InvalidData("the request body must be the event payload as JSON (send null for an event without data)")
    current_service().send_event(execution_id, event_name, payload, triggered_by=current_actor())
    return views.delivered_view(execution_id, event_name)
