"""The admin API under the admin prefix: execution detail, runs, dead-step retry, restart, rerun, pause rules.

Thin views: parse, call `AdminService`, render. Who acted is always the bearer token's name (else "api"); a
body's `triggered_by` is kept beside it as who the action was taken on behalf of. Every action lands in the
audit trail.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from flask_app.admin_schemas import (
    RULE_ID_PARAMETER,
    Deleted,
    Detail,
    DetailQuery,
    NewRun,
    PauseListQuery,
    PauseRequest,
    PauseRule,
    PauseRules,
    PruneRequest,
    PruneResult,
    RerunPlan,
    RerunPreviewRequest,
    RerunRequest,
    RerunResult,
    RestartRequest,
    ResumeRequest,
    RetryStepRequest,
    RetryStepResult,
    Runs,
    StrandedList,
    StrandedQuery,
)
from flask_app.api import GUARDED, INVALID, NOT_FOUND, ZartBlueprint
from flask_app.auth import current_actor
from flask_app.extension import current_service
from flask_app.guards import protected
from flask_app.schemas import EXECUTION_ID_PARAMETER
from zart import views
from zart.admin import AdminService

blp = protected(ZartBlueprint("admin", __name__, description="Operator actions on executions and pause rules."))

COMMON = {**GUARDED, 422: INVALID}
ACTIVE = (
    "`execution_active`: it is pending, running or waiting; send `force: true` to stop it first. "
    "`run_changed`: `expected_run_index` was given and the execution is at another run (a repeated request)."
)
CHILD = "`child_execution`: new `data` for a child execution (its input is what its parent's code passed)."
DEDUP = (
    "`execution_already_exists`: its dedup key is held by another active execution (reviving this one would make two)."
)
RULE_NOT_FOUND = "`pause_rule_not_found`: no pause rule has this ID."


def _admin() -> AdminService:
    return AdminService(current_service())


def _who(body: dict[str, Any]) -> dict[str, Any]:
    """The audit fields of an action: the authenticated token's name, and whom the caller says it acts for."""
    return {"triggered_by": current_actor(), "on_behalf_of": body.get("triggered_by")}


@blp.route("/executions/<execution_id>/detail", parameters=[EXECUTION_ID_PARAMETER])
@blp.requires("read")
@blp.arguments(DetailQuery, location="query")
@blp.response(200, Detail)
@blp.errors({**COMMON, 404: NOT_FOUND})
def detail(query: dict[str, Any], execution_id: str) -> Any:
    """Full execution detail: runs, steps with attempts, audit trail, the rule holding it"""
    return views.detail_view(_admin().detail(execution_id, query.get("run")))


@blp.route("/executions/<execution_id>/runs", parameters=[EXECUTION_ID_PARAMETER])
@blp.requires("read")
@blp.response(200, Runs)
@blp.errors({**COMMON, 404: NOT_FOUND})
def runs(execution_id: str) -> Any:
    """List the runs of an execution"""
    return {"execution_id": execution_id, "runs": [views.run_view(run) for run in _admin().runs(execution_id)]}


@blp.route("/executions/<execution_id>/retry-step", methods=["POST"], parameters=[EXECUTION_ID_PARAMETER])
@blp.requires("admin")
@blp.arguments(RetryStepRequest)
@blp.response(200, RetryStepResult)
@blp.errors(
    {
        **COMMON,
        404: NOT_FOUND + " `step_not_found`: the current run has no step of that name.",
        409: "`step_not_dead`: only a step whose exhausted retries failed the execution can be retried. " + DEDUP,
    }
)
def retry_step(body: dict[str, Any], execution_id: str) -> Any:
    """Retry a dead step in the same run"""
    return _admin().retry_step(execution_id, body["step_name"], **_who(body))


@blp.route("/executions/<execution_id>/restart", methods=["POST"], parameters=[EXECUTION_ID_PARAMETER])
@blp.requires("admin")
@blp.arguments(RestartRequest)
@blp.response(200, NewRun)
@blp.errors(
    {
        **COMMON,
        404: NOT_FOUND,
        409: ACTIVE + " " + CHILD + " " + DEDUP,
        422: INVALID + " New `data` passes the checks of scheduling: the task's schema, `task_not_registered`.",
    }
)
def restart(body: dict[str, Any], execution_id: str) -> Any:
    """Restart an execution: a new run in which every step runs again"""
    return _admin().restart(
        execution_id, body["data"], body["force"], expected_run=body["expected_run_index"], **_who(body)
    )


@blp.route("/executions/<execution_id>/rerun", methods=["POST"], parameters=[EXECUTION_ID_PARAMETER])
@blp.requires("admin")
@blp.arguments(RerunRequest)
@blp.response(200, RerunResult)
@blp.errors(
    {**COMMON, 404: NOT_FOUND + " `step_not_found`: a named step is not in the current run.", 409: ACTIVE + " " + DEDUP}
)
def rerun(body: dict[str, Any], execution_id: str) -> Any:
    """Selective rerun: a new run re-running the named steps and everything after the first of them"""
    return _admin().rerun(
        execution_id,
        body["steps"],
        body["preserve"],
        body["force"],
        expected_run=body["expected_run_index"],
        **_who(body),
    )


@blp.route("/executions/<execution_id>/rerun/preview", methods=["POST"], parameters=[EXECUTION_ID_PARAMETER])
@blp.requires("read")
@blp.arguments(RerunPreviewRequest)
@blp.response(200, RerunPlan)
@blp.errors({**COMMON, 404: NOT_FOUND + " `step_not_found`: a named step is not in the current run."})
def rerun_preview(body: dict[str, Any], execution_id: str) -> Any:
    """What a selective rerun would do, changing nothing: the steps that would run again and those kept"""
    return _admin().rerun_plan(execution_id, body["steps"], body["preserve"])


@blp.route("/prune", methods=["POST"])
@blp.requires("admin")
@blp.arguments(PruneRequest)
@blp.response(200, PruneResult)
@blp.errors(COMMON)
def prune(body: dict[str, Any]) -> Any:
    """Delete finished executions older than `older_than` (with their children, steps and events), now

    The sweeper applies the `ZART_RETENTION` policy continuously; this prunes on demand, in the same small
    batches. Active executions are never deleted; a parent goes only with all of its children."""
    from zart.retention.policy import parse_duration

    older_than = parse_duration(body["older_than"])
    return _admin().prune(older_than, body["statuses"], body["dry_run"], **_who(body))


@blp.route("/stranded")
@blp.requires("read")
@blp.arguments(StrandedQuery, location="query")
@blp.response(200, StrandedList)
@blp.errors(COMMON)
def stranded(query: dict[str, Any]) -> Any:
    """Executions that nothing will ever move again: the liveness invariant's breaches (empty when healthy)

    Every pending, running or waiting execution should have a live reason to progress: a message or
    re-publication, a live lease, a timer, an awaited event, an unfinished child, an active pause rule. The
    sweeper logs each one found and repairs the known causes; what stays listed needs an operator."""
    return views.stranded_view(_admin().stranded(query["limit"]))


@blp.route("/pause")
class Pauses(MethodView):
    @blp.requires("admin")
    @blp.arguments(PauseRequest)
    @blp.response(201, PauseRule)
    @blp.errors(
        {
            **COMMON,
            422: INVALID
            + " Also when the rule names nothing, pauses everything without `all`, or 1,000 rules are active already.",
        }
    )
    def post(self, body: dict[str, Any]) -> Any:
        """Create a pause rule"""
        rule = _admin().create_pause(
            execution_id=body["execution_id"],
            task=body["task"],
            step_pattern=body["step_pattern"],
            reason=body["reason"],
            expires_at=body["expires_at"],
            applies_to_all=body["all"],
            **_who(body),
        )
        return views.pause_view(rule)

    @blp.requires("read")
    @blp.arguments(PauseListQuery, location="query")
    @blp.response(200, PauseRules)
    @blp.errors(COMMON)
    def get(self, query: dict[str, Any]) -> Any:
        """List pause rules (active ones unless `all=true`), oldest first, a page at a time"""
        admin = _admin()
        rules = admin.list_pauses(query["all"], query["limit"], query["offset"])
        return {
            "rules": [views.pause_view(rule) for rule in rules],
            "total": admin.count_pauses(query["all"]),
            "limit": query["limit"],
            "offset": query["offset"],
        }


@blp.route("/pause/<rule_id>", parameters=[RULE_ID_PARAMETER])
class Pause(MethodView):
    @blp.requires("admin")
    @blp.arguments(ResumeRequest)
    @blp.response(200, PauseRule)
    @blp.errors({**COMMON, 404: RULE_NOT_FOUND, 409: "`pause_rule_not_active`: it was already resumed."})
    def post(self, body: dict[str, Any], rule_id: str) -> Any:
        """Resume (soft-delete) a pause rule; what it held is released"""
        return views.pause_view(_admin().resume_pause(rule_id, **_who(body)))

    @blp.requires("admin")
    @blp.response(200, Deleted)
    @blp.errors({**COMMON, 404: RULE_NOT_FOUND})
    def delete(self, rule_id: str) -> Any:
        """Delete a pause rule; what it held is released"""
        return _admin().delete_pause(rule_id, triggered_by=current_actor())
