"""Always at the root: liveness (touches nothing), readiness (database and broker) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from flask import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from flask_app.api import UNAUTHORIZED, ZartBlueprint
from flask_app.extension import current_service, current_zart
from flask_app.guards import protected, public
from flask_app.schemas import Health, Readiness
from zart.errors import ZartError

blp = public(ZartBlueprint("probes", __name__, description="Liveness and readiness; never need a token."))
metrics_blp = protected(ZartBlueprint("metrics", __name__, description="Prometheus metrics."))

NO_SECURITY: list[dict[str, list[str]]] = []


class NotReady(ZartError):
    code = "service_unavailable"
    http_status = 503


@blp.route("/healthz")
@blp.doc(security=NO_SECURITY)
@blp.response(200, Health)
def healthz() -> Any:
    """Liveness: the process answers"""
    return {"status": "ok"}


@blp.route("/readyz")
@blp.doc(security=NO_SECURITY)
@blp.response(200, Readiness)
@blp.errors({503: "`service_unavailable`: the database or the broker did not answer."})
def readyz() -> Any:
    """Readiness: the database and the broker answer"""
    checks = current_service().readiness()
    failing = [f"{name} unavailable" for name, state in checks.items() if state != "ok"]
    if failing:
        raise NotReady("Not ready: " + ", ".join(failing) + ".")
    return {"status": "ready", "checks": checks}


@metrics_blp.route("/metrics")
@metrics_blp.requires("read")
@metrics_blp.doc(
    responses={
        "200": {
            "description": "Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }
)
@metrics_blp.errors({401: UNAUTHORIZED})
def metrics() -> Response:
    """Prometheus metrics"""
    return Response(generate_latest(current_zart().metrics_registry), content_type=CONTENT_TYPE_LATEST)
