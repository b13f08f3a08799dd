"""Operator controls: detail, runs, dead-step retry, restart, selective rerun and pause rules.

Each action is explicit and audited (who, when, what) and refuses anything ambiguous: an active execution
is only restarted or rerun with `force`, only a dead step is retried, a rule must say what it pauses.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from zart import pruning
from zart.canvas.tree import canvas_tree
from zart.celery.canvas import CANVAS_TASK
from zart.errors import (
    ChildExecution,
    ExecutionActive,
    ExecutionNotFound,
    InvalidData,
    PauseRuleNotActive,
    PauseRuleNotFound,
    RunChanged,
    StepNotDead,
    StepNotFound,
)
from zart.limits import (
    ACTIVE_STATUSES,
    MAX_ACTIVE_PAUSE_RULES,
    MAX_LIST_LIMIT,
    MOMENT_RULE,
    TERMINAL_STATUSES,
    in_moment_range,
)
from zart.retention.policy import MAX_SECONDS
from zart.service import ZartService, check_execution_id, check_input_shape, check_lookup_id, check_name
from zart.store import admin, db, events, liveness, pause
from zart.store import steps as steps_store

RELEASE_BATCH = 10_000


def is_dead(step: dict[str, Any], execution: dict[str, Any]) -> bool:
    """Retries exhausted, and that failure is what failed the execution."""
    error = execution.get("error") or {}
    return (
        step["status"] == "failed"
        and step["kind"] in ("step", "remote")
        and execution["status"] == "failed"
        and error.get("type") == "StepFailed"
        and error.get("step") == step["name"]
    )


def audited(details: dict[str, Any], on_behalf_of: str | None) -> dict[str, Any] | None:
    """An action's details, with whom the caller said it acted for (never who it is: that is the actor)."""
    merged = {**details, **({"on_behalf_of": on_behalf_of} if on_behalf_of else {})}
    return merged or None


class AdminService:
    def __init__(self, service: ZartService) -> None:
        self.service = service
        self._url = service.settings.database_url

    # ------------------------------------------------------------ reading

    def detail(self, execution_id: str, run_index: int | None = None) -> dict[str, Any]:
        """The execution, its runs, the chosen run's steps with attempts, the audit trail, the holding rule."""
        execution = self.service.status(execution_id)
        run = execution["run_index"] if run_index is None else run_index
        with db.autocommit(self._url) as conn:
            runs = admin.list_runs(conn, execution_id)
            if run not in {r["run_index"] for r in runs}:
                raise InvalidData(f"execution {execution_id} has no run {run}")
            steps = steps_store.steps_of_run(conn, execution_id, run)
            actions = admin.actions_for(conn, execution_id)
            delivered = events.delivered_to(conn, execution_id)
            held_by = pause.holding_rule(conn, execution_id) if execution["status"] in ACTIVE_STATUSES else None
        current = run == execution["run_index"]
        for step in steps:
            step["retryable"] = current and is_dead(step, execution)
        canvas = None
        if execution["task"] == CANVAS_TASK:
            shown = next(r for r in runs if r["run_index"] == run)
            canvas = canvas_tree(shown.get("input"), {step["name"]: step["status"] for step in steps})
        return {
            "execution": execution,
            "run_index": run,
            "runs": runs,
            "steps": steps,
            "actions": actions,
            "events": delivered,
            "held_by": held_by,
            "canvas": canvas,
        }

    def runs(self, execution_id: str) -> list[dict[str, Any]]:
        check_lookup_id(execution_id)
        with db.autocommit(self._url) as conn:
            runs = admin.list_runs(conn, execution_id)
        if not runs:
            raise ExecutionNotFound(execution_id)
        return runs

    # ------------------------------------------------------------ execution actions

    def retry_step(
        self, execution_id: str, step_name: str, triggered_by: str, on_behalf_of: str | None = None
    ) -> dict[str, Any]:
        """Reset a dead step and resume the execution in the same run; earlier steps stay checkpointed."""
        check_lookup_id(execution_id)
        check_name("step name", step_name)
        with db.transaction(self._url) as conn:
            execution = self._locked(conn, execution_id)
            step = admin.get_step(conn, execution_id, execution["run_index"], step_name)
            if step is None:
                raise StepNotFound(
                    f"execution {execution_id} has no step '{step_name}' in run {execution['run_index']}"
                )
            if not is_dead(step, execution):
                raise StepNotDead(
                    f"step '{step_name}' is {step['status']} and execution {execution_id} is {execution['status']}; "
                    "only a step whose exhausted retries failed the execution can be retried"
                )
            admin.reset_dead_step(
                conn,
                execution_id,
                execution["run_index"],
                step_name,
                execution["attempt"],
                self.service.task_timeout(conn, execution["task"]),
            )
            admin.record_action(
                conn,
                action="retry-step",
                triggered_by=triggered_by,
                execution_id=execution_id,
                details=audited({"step": step_name, "run_index": execution["run_index"]}, on_behalf_of),
            )
        self.service.publish(execution_id)
        return {
            "execution_id": execution_id,
            "status": "pending",
            "step_name": step_name,
            "run_index": execution["run_index"],
        }

    def restart(
        self,
        execution_id: str,
        data: Any,
        force: bool,
        triggered_by: str,
        *,
        expected_run: int | None = None,
        on_behalf_of: str | None = None,
    ) -> dict[str, Any]:
        """A new run from the top, optionally with new input; the previous run's work is cancelled first.

        New input passes exactly the checks `schedule` applies. A child's input is refused: it holds what its
        parent's code passed (for a function child, the arguments of the function its parent named)."""
        if data is not None:
            check_input_shape(data)
        run = self._new_run(
            execution_id,
            "restart",
            data,
            force,
            triggered_by,
            keep=[],
            expected_run=expected_run,
            on_behalf_of=on_behalf_of,
        )
        return {"execution_id": execution_id, "status": "pending", "run_index": run, "trigger": "restart"}

    def rerun_plan(self, execution_id: str, step_names: list[str], preserve: list[str]) -> dict[str, Any]:
        """What a rerun would do, changing nothing: which steps run again and which checkpoints are kept."""
        if not step_names:
            raise InvalidData("steps must name at least one step to re-run")
        for name in [*step_names, *preserve]:
            check_name("step name", name)
        check_lookup_id(execution_id)
        execution = self.service.status(execution_id)
        with db.autocommit(self._url) as conn:
            steps = steps_store.steps_of_run(conn, execution_id, execution["run_index"])
        by_name = {s["name"]: s for s in steps}
        unknown = [n for n in [*step_names, *preserve] if n not in by_name]
        if unknown:
            raise StepNotFound(f"execution {execution_id} has no step(s) {', '.join(repr(n) for n in unknown)}")
        first = min(by_name[n]["position"] for n in step_names)
        named = {
            s["name"] for s in steps if s["name"] in step_names or (s["position"] > first and s["name"] not in preserve)
        }
        keep = [s["name"] for s in steps if s["name"] not in named and s["status"] == "completed"]
        # only checkpoints are copied: a step that had not completed (a child still running, a failure the handler
        # caught, a wait that timed out) runs again too, wherever it is
        rerun = [s["name"] for s in steps if s["name"] not in keep]
        return {
            "execution_id": execution_id,
            "status": execution["status"],
            "run_index": execution["run_index"],
            "steps_to_run": rerun,
            "steps_preserved": keep,
        }

    def rerun(
        self,
        execution_id: str,
        step_names: list[str],
        preserve: list[str],
        force: bool,
        triggered_by: str,
        *,
        expected_run: int | None = None,
        on_behalf_of: str | None = None,
    ) -> dict[str, Any]:
        """A new run that re-runs the named steps and everything after the first of them (unless preserved)."""
        plan = self.rerun_plan(execution_id, step_names, preserve)
        run = self._new_run(
            execution_id,
            "selective_rerun",
            None,
            force,
            triggered_by,
            keep=plan["steps_preserved"],
            details={"steps": step_names, "preserve": preserve},
            expected_run=expected_run,
            on_behalf_of=on_behalf_of,
        )
        return {
            "execution_id": execution_id,
            "status": "pending",
            "run_index": run,
            "trigger": "selective_rerun",
            "steps_to_run": plan["steps_to_run"],
            "steps_preserved": plan["steps_preserved"],
        }

    def _new_run(
        self,
        execution_id: str,
        trigger: str,
        data: Any,
        force: bool,
        triggered_by: str,
        keep: list[str],
        details: dict[str, Any] | None = None,
        expected_run: int | None = None,
        on_behalf_of: str | None = None,
    ) -> int:
        check_lookup_id(execution_id)
        with db.transaction(self._url) as conn:
            execution = self._locked(conn, execution_id)
            if expected_run is not None and execution["run_index"] != expected_run:
                raise RunChanged(
                    f"execution {execution_id} is at run {execution['run_index']}, not {expected_run}: "
                    "it was restarted or rerun since (a repeated request starts nothing)"
                )
            if data is not None and execution["parent_id"] is not None:
                raise ChildExecution(
                    f"execution {execution_id} is a child of {execution['parent_id']}: its input is what its "
                    "parent's code passed and cannot be replaced; restart it without data, or restart the parent"
                )
            if data is not None:
                self.service.validate_input(conn, execution["task"], data)
            if execution["status"] in ACTIVE_STATUSES and not force:
                raise ExecutionActive(
                    f"execution {execution_id} is {execution['status']}; pass force to stop it and start a new run"
                )
            timeout = self.service.task_timeout(conn, execution["task"])
            run = admin.start_new_run(conn, execution_id, trigger, data, triggered_by, timeout)
            admin.copy_checkpoints(conn, execution_id, execution["run_index"], run, keep)
            admin.record_action(
                conn,
                action=trigger,
                triggered_by=triggered_by,
                execution_id=execution_id,
                details=audited(
                    {
                        "run_index": run,
                        "previous_status": execution["status"],
                        "force": force,
                        "new_input": data is not None,
                        **(details or {}),
                    },
                    on_behalf_of,
                ),
            )
        self.service.cancel_descendants(execution_id, before_run=run)
        self.service.publish(execution_id)
        return run

    @staticmethod
    def _locked(conn: Any, execution_id: str) -> dict[str, Any]:
        execution = admin.lock_execution(conn, execution_id)
        if execution is None:
            raise ExecutionNotFound(execution_id)
        return execution

    # ------------------------------------------------------------ retention

    def prune(
        self,
        older_than: float,
        statuses: list[str] | None,
        dry_run: bool,
        triggered_by: str,
        on_behalf_of: str | None = None,
    ) -> dict[str, Any]:
        """Delete finished executions (trees whole) that finished over `older_than` seconds ago, now, in small
        batches; a dry run only counts them. Active executions are never pruned."""
        chosen = list(dict.fromkeys(statuses or TERMINAL_STATUSES))
        wrong = [status for status in chosen if status not in TERMINAL_STATUSES]
        if wrong:
            raise InvalidData(f"only final statuses can be pruned ({', '.join(TERMINAL_STATUSES)}), not {wrong[0]!r}")
        if not 0 < older_than <= MAX_SECONDS:
            raise InvalidData("older_than must be more than 0 seconds and at most 100 years")
        counted = pruning.prune(self._url, dict.fromkeys(chosen, older_than), dry_run=dry_run)
        result = {
            "dry_run": dry_run,
            "older_than_seconds": older_than,
            "pruned": counted,
            "total": sum(counted.values()),
        }
        if not dry_run:
            with db.transaction(self._url) as conn:
                admin.record_action(
                    conn, action="prune", triggered_by=triggered_by, details=audited(result, on_behalf_of)
                )
        return result

    def stranded(self, limit: int = 100) -> list[dict[str, Any]]:
        """Non-terminal executions with no live reason to progress (the liveness invariant's breaches)."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidData(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        with db.autocommit(self._url) as conn:
            return liveness.stranded(conn, limit)

    # ------------------------------------------------------------ pause rules

    def create_pause(
        self,
        *,
        execution_id: str | None,
        task: str | None,
        step_pattern: str | None,
        reason: str | None,
        expires_at: datetime | None,
        applies_to_all: bool,
        triggered_by: str,
        on_behalf_of: str | None = None,
    ) -> dict[str, Any]:
        if execution_id is not None:
            check_execution_id(execution_id)
        if task is not None:
            check_name("task name", task)
        if step_pattern is not None:
            check_name("step pattern", step_pattern)
        if expires_at is not None and expires_at.tzinfo is None:
            raise InvalidData("expires_at must include a timezone")
        if expires_at is not None and not in_moment_range(expires_at):
            raise InvalidData(f"expires_at must lie {MOMENT_RULE}")
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise InvalidData("expires_at must be in the future")
        narrows = execution_id is not None or task is not None
        pattern_matches_all = step_pattern is not None and set(step_pattern) <= {"*"}
        if not applies_to_all and not narrows and step_pattern is None:
            raise InvalidData("a pause rule must name execution_id, task or step_pattern (or set all: true)")
        if not applies_to_all and not narrows and pattern_matches_all:
            raise InvalidData(f"step_pattern '{step_pattern}' would pause everything; set all: true to mean it")
        rule_id = f"pause-{uuid.uuid4().hex[:12]}"
        with db.transaction(self._url) as conn:
            if pause.lock_and_count_active(conn) >= MAX_ACTIVE_PAUSE_RULES:
                raise InvalidData(
                    f"there are already {MAX_ACTIVE_PAUSE_RULES} active pause rules; resume or delete some first"
                )
            rule = pause.create_rule(
                conn,
                rule_id=rule_id,
                execution_id=execution_id,
                task=task,
                step_pattern=step_pattern,
                applies_to_all=applies_to_all,
                reason=reason,
                expires_at=expires_at,
                created_by=triggered_by,
            )
            admin.record_action(
                conn,
                action="pause",
                triggered_by=triggered_by,
                execution_id=execution_id,
                rule_id=rule_id,
                details=audited({"task": task, "step_pattern": step_pattern, "reason": reason}, on_behalf_of),
            )
        return rule

    def list_pauses(
        self, include_inactive: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Rules oldest first; `limit`/`offset` page through them (the API always pages)."""
        if limit is not None and not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidData(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        if offset < 0:
            raise InvalidData("offset must not be negative")
        with db.autocommit(self._url) as conn:
            return pause.list_rules(conn, include_inactive, limit, offset)

    def count_pauses(self, include_inactive: bool = False) -> int:
        with db.autocommit(self._url) as conn:
            return pause.count_rules(conn, include_inactive)

    def resume_pause(self, rule_id: str, triggered_by: str, on_behalf_of: str | None = None) -> dict[str, Any]:
        """Soft delete: the rule stays for the record; held executions are released at once."""
        check_name("rule id", rule_id)
        with db.transaction(self._url) as conn:
            rule = pause.resume_rule(conn, rule_id, triggered_by)
            if rule is None:
                if pause.get_rule(conn, rule_id) is None:
                    raise PauseRuleNotFound(rule_id)
                raise PauseRuleNotActive(f"pause rule {rule_id} was already resumed")
            admin.record_action(
                conn,
                action="resume",
                triggered_by=triggered_by,
                rule_id=rule_id,
                details=audited({}, on_behalf_of),
            )
        self.release_lifted_rules()
        return rule

    def delete_pause(self, rule_id: str, triggered_by: str, on_behalf_of: str | None = None) -> dict[str, Any]:
        check_name("rule id", rule_id)
        with db.transaction(self._url) as conn:
            if pause.get_rule(conn, rule_id) is None:
                raise PauseRuleNotFound(rule_id)
            pause.resume_rule(conn, rule_id, triggered_by)
            released = pause.release_lifted(conn, RELEASE_BATCH)
            pause.delete_rule(conn, rule_id)
            admin.record_action(
                conn,
                action="delete-pause",
                triggered_by=triggered_by,
                rule_id=rule_id,
                details=audited({}, on_behalf_of),
            )
        for execution_id in released:
            self.service.publish(execution_id)
        return {"rule_id": rule_id, "deleted": True}

    def release_lifted_rules(self) -> list[str]:
        """Make executions held by resumed or expired rules ready again and ring their doorbells."""
        with db.transaction(self._url) as conn:
            released = pause.release_lifted(conn, RELEASE_BATCH) + pause.release_orphaned(conn)
        for execution_id in released:
            self.service.publish(execution_id)
        return released
