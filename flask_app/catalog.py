"""/stats and /tasks: counts by status and the catalog of task names the workers registered."""

from __future__ import annotations

from typing import Any

from flask_app.api import GUARDED, ZartBlueprint
from flask_app.extension import current_service
from flask_app.guards import protected
from flask_app.schemas import Stats, TaskCatalog
from zart import views

blp = protected(ZartBlueprint("catalog", __name__, description="Aggregate counts and registered tasks."))


@blp.route("/stats")
@blp.requires("read")
@blp.response(200, Stats, description="Executions per status; every status is present, zeros included.")
@blp.errors(GUARDED)
def stats() -> Any:
    """Count executions by status"""
    return current_service().stats()


@blp.route("/tasks")
@blp.requires("read")
@blp.response(200, TaskCatalog)
@blp.errors(GUARDED)
def tasks() -> Any:
    """List the registered tasks and their input schemas"""
    return {"tasks": [views.task_view(task) for task in current_service().tasks()]}
