"""The limits API under the admin prefix: list, show, set, pause, resume and delete flow-control limits.

Thin views over `FlowAdmin`, the same calls `zart limits …` makes. A change takes effect at the next claim on
every worker; what it frees starts right away.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from marshmallow import fields, validate

from flask_app.admin_schemas import TRIGGERED_BY, Strict
from flask_app.api import GUARDED, INVALID, ZartBlueprint
from flask_app.auth import current_actor
from flask_app.extension import current_service
from flask_app.guards import protected
from flask_app.schemas import PRINTABLE, WholeNumber, path_parameter, timestamp
from zart.flow.definitions import KEY_STRATEGIES, MAX_LIMIT
from zart.flow_admin import FlowAdmin

blp = protected(ZartBlueprint("limits", __name__, description="Flow control: concurrency, rates, queue pause."))

LIMIT_NAME_PARAMETER = path_parameter("name", PRINTABLE, "A limit's name: a task name, or a queue's.")
COMMON = {**GUARDED, 422: INVALID + " Also a malformed rate (`100/fortnight`) or a limit below 1."}
NOT_FOUND = "`limit_not_found`: no limit has this name."
COUNT = validate.Range(1, MAX_LIMIT)


class LimitChange(Strict):
    """Fields left out keep their value; `null` removes that limit."""

    concurrency = WholeNumber(allow_none=True, validate=COUNT, metadata={"description": "At most N running."})
    rate = fields.String(
        allow_none=True,
        validate=validate.Length(max=40),
        metadata={"description": "At most COUNT starts per PERIOD: `100/m`, `10/s`, `5/10s`.", "example": "100/m"},
    )
    burst = WholeNumber(allow_none=True, validate=COUNT, metadata={"description": "Bucket size (default: COUNT)."})
    concurrency_key = fields.String(
        allow_none=True,
        validate=validate.Length(max=600),
        metadata={"description": "Input field or dotted path whose value is limited separately."},
    )
    key_concurrency = WholeNumber(allow_none=True, validate=COUNT, metadata={"description": "Per key (default 1)."})
    on_key_busy = fields.String(validate=validate.OneOf(KEY_STRATEGIES))
    triggered_by = TRIGGERED_BY


class Actor(Strict):
    triggered_by = TRIGGERED_BY


class Limit(ma.Schema):
    name = fields.String(required=True)
    concurrency = fields.Integer(allow_none=True)
    running = fields.Integer(required=True, metadata={"description": "Slots held now."})
    rate = fields.String(allow_none=True, metadata={"example": "100/m"})
    burst = fields.Integer(allow_none=True)
    tokens = fields.Float(allow_none=True, metadata={"description": "Tokens in the bucket now."})
    concurrency_key = fields.String(allow_none=True)
    key_concurrency = fields.Integer(allow_none=True)
    on_key_busy = fields.String(required=True)
    paused = fields.Boolean(required=True)
    held = fields.Integer(required=True, metadata={"description": "Pending executions this limit holds back."})
    source = fields.String(required=True, metadata={"description": "`code` (declared) or `runtime` (set)."})
    updated_by = fields.String(allow_none=True)
    updated_at = timestamp("When it was last declared or changed.")


class Limits(ma.Schema):
    limits = fields.List(fields.Nested(Limit), required=True)


class LimitDeleted(ma.Schema):
    name = fields.String(required=True)
    deleted = fields.Boolean(required=True)
    released = fields.Integer(required=True, metadata={"description": "Held executions let go."})


def _flow() -> FlowAdmin:
    return FlowAdmin(current_service())


def _who(body: dict[str, Any]) -> dict[str, Any]:
    """The audit fields: the authenticated token's name, and whom the caller says it acts for."""
    return {"triggered_by": current_actor(), "on_behalf_of": body.pop("triggered_by", None)}


@blp.route("/limits")
@blp.requires("read")
@blp.response(200, Limits)
@blp.errors(GUARDED)
def list_limits() -> Any:
    """List limits with their running slots, tokens and held executions"""
    return {"limits": _flow().list()}


@blp.route("/limits/<path:name>", parameters=[LIMIT_NAME_PARAMETER])  # a task name may hold `/`
class LimitResource(MethodView):
    @blp.requires("read")
    @blp.response(200, Limit)
    @blp.errors({**COMMON, 404: NOT_FOUND})
    def get(self, name: str) -> Any:
        """Show a limit"""
        return _flow().get(name)

    @blp.requires("admin")
    @blp.arguments(LimitChange)
    @blp.response(200, Limit)
    @blp.errors(COMMON)
    def put(self, body: dict[str, Any], name: str) -> Any:
        """Create or change a limit at runtime (fields left out keep their value)"""
        who = _who(body)
        return _flow().update(name, body, **who)

    @blp.requires("admin")
    @blp.response(200, LimitDeleted)
    @blp.errors({**COMMON, 404: NOT_FOUND})
    def delete(self, name: str) -> Any:
        """Delete a limit; what it held starts"""
        return _flow().delete(name, current_actor())


@blp.route("/limits/<path:name>/pause", methods=["POST"], parameters=[LIMIT_NAME_PARAMETER])
@blp.requires("admin")
@blp.arguments(Actor)
@blp.response(200, Limit)
@blp.errors({**COMMON, 404: NOT_FOUND})
def pause(body: dict[str, Any], name: str) -> Any:
    """Pause a queue on every worker: nothing new starts, running executions finish"""
    return _flow().pause(name, **_who(body))


@blp.route("/limits/<path:name>/resume", methods=["POST"], parameters=[LIMIT_NAME_PARAMETER])
@blp.requires("admin")
@blp.arguments(Actor)
@blp.response(200, Limit)
@blp.errors({**COMMON, 404: NOT_FOUND})
def resume(body: dict[str, Any], name: str) -> Any:
    """Resume a paused queue: what it held starts at once"""
    return _flow().resume(name, **_who(body))
