"""Operator commands: `zart admin detail|runs|retry-step|restart|rerun` and `zart admin pause …`.

Every action records who asked (`--triggered-by`, else "cli") and when; refusals exit 1 with the reason,
an unknown execution exits 3.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click

from zart import views
from zart.canvas.tree import draw
from zart.cli import render
from zart.cli.connect import service_for
from zart.cli.params import DURATION, JSON_OBJECT, triggered_by
from zart.cli.state import CliState, global_options, with_state
from zart.limits import MAX_LIST_LIMIT, TERMINAL_STATUSES


def _admin(state: CliState) -> Any:
    from zart.admin import AdminService

    return AdminService(service_for(state))


expected_run = click.option(
    "--expected-run",
    type=click.IntRange(min=0),
    default=None,
    help="Refuse (run_changed) unless the execution is still at this run, so a repeated command starts nothing.",
)


@click.group()
@global_options
def admin() -> None:
    """Operator controls: inspect, retry, restart, rerun, pause, prune."""


@admin.command()
@click.argument("execution_id")
@click.option("--run", "run_index", type=click.IntRange(min=0), default=None, help="Run to show (default: current).")
@global_options
@with_state
def detail(state: CliState, execution_id: str, run_index: int | None) -> None:
    """Everything about an execution: runs, steps with attempts, audit trail, holding pause rule."""
    view = views.detail_view(_admin(state).detail(execution_id, run_index))
    lines = [
        f"execution_id: {view['execution_id']}",
        f"task: {view['task']}",
        f"status: {render.paint_status(view['status'])}",
        f"run: {view['run_index']} (current {view['current_run']})",
    ]
    if view["held_by"]:
        lines.append(f"held by: {view['held_by']['rule_id']} ({render.text(view['held_by']['reason'])})")
    if view.get("schedule_id"):
        lines.append(f"schedule: {view['schedule_id']} (tick {view['scheduled_for']})")
    if view["error"]:
        lines.append(f"error: {render.error_text(view['error'])}")
    lines += ["", *_run_lines(view["runs"]), ""]
    lines += render.table(
        ["POS", "STEP", "KIND", "STATUS", "ATTEMPTS", "RETRYABLE", "OUTPUT / ERROR"],
        [
            [
                s["position"],
                s["name"],
                s["kind"],
                s["status"],
                s["attempts"],
                "yes" if s["retryable"] else "",
                render.error_text(s["error"]) if s["error"] else render.text(s["output"]),
            ]
            for s in view["steps"]
        ],
        status_column=3,
    )
    if view["actions"]:
        lines += [
            "",
            *render.table(
                ["WHEN", "ACTION", "BY", "DETAILS"],
                [[a["created_at"], a["action"], a["triggered_by"], render.text(a["details"])] for a in view["actions"]],
            ),
        ]
    if view["canvas"] is not None:
        lines += draw(view["canvas"])
    render.emit(state, view, lines)


def _run_lines(runs: list[dict[str, Any]]) -> list[str]:
    return render.table(
        ["RUN", "TRIGGER", "STATUS", "BY", "STARTED", "COMPLETED"],
        [
            [
                r["run_index"],
                r["trigger"],
                r["status"],
                render.text(r["triggered_by"]),
                render.text(r["started_at"]),
                render.text(r["completed_at"]),
            ]
            for r in runs
        ],
        status_column=2,
    )


@admin.command()
@click.argument("execution_id")
@global_options
@with_state
def runs(state: CliState, execution_id: str) -> None:
    """Every run of an execution (the first, then one per restart or rerun)."""
    view = [views.run_view(run) for run in _admin(state).runs(execution_id)]
    render.emit(state, {"execution_id": execution_id, "runs": view}, _run_lines(view))


@admin.command("retry-step")
@click.argument("execution_id")
@click.argument("step_name")
@triggered_by
@global_options
@with_state
def retry_step(state: CliState, execution_id: str, step_name: str, triggered_by: str) -> None:
    """Give a dead step a fresh retry budget and resume the execution in the same run."""
    result = _admin(state).retry_step(execution_id, step_name, triggered_by)
    render.emit(state, result, [f"Retrying step {step_name} of {execution_id} (run {result['run_index']})"])


@admin.command()
@click.argument("execution_id")
@click.option("--data", type=JSON_OBJECT, default=None, help="New input as a JSON object (default: the same).")
@click.option("--force", is_flag=True, help="Stop a pending, running or waiting execution first.")
@expected_run
@triggered_by
@global_options
@with_state
def restart(
    state: CliState,
    execution_id: str,
    data: dict[str, Any] | None,
    force: bool,
    expected_run: int | None,
    triggered_by: str,
) -> None:
    """Start a new run from the top: every step runs again."""
    result = _admin(state).restart(execution_id, data, force, triggered_by, expected_run=expected_run)
    render.emit(state, result, [f"Restarted {execution_id} as run {result['run_index']}"])


@admin.command()
@click.argument("execution_id")
@click.option("--step", "steps", multiple=True, required=True, help="Step to re-run (repeatable).")
@click.option("--preserve", multiple=True, help="A later step to keep anyway (repeatable).")
@click.option("--force", is_flag=True, help="Stop a pending, running or waiting execution first.")
@expected_run
@triggered_by
@global_options
@with_state
def rerun(
    state: CliState,
    execution_id: str,
    steps: tuple[str, ...],
    preserve: tuple[str, ...],
    force: bool,
    expected_run: int | None,
    triggered_by: str,
) -> None:
    """Start a new run that re-runs the named steps and every step after the first of them."""
    result = _admin(state).rerun(
        execution_id, list(steps), list(preserve), force, triggered_by, expected_run=expected_run
    )
    render.emit(
        state,
        result,
        [
            f"Rerunning {execution_id} as run {result['run_index']}",
            f"will run: {', '.join(result['steps_to_run']) or '-'}",
            f"preserved: {', '.join(result['steps_preserved']) or '-'}",
        ],
    )


@admin.group()
@global_options
def pause() -> None:
    """Pause rules: hold matching executions (at claim) and steps (before they start)."""


@pause.command("create")
@click.option("--execution-id", default=None, help="Hold this execution.")
@click.option("--task", default=None, help="Hold executions of this task.")
@click.option("--step-pattern", default=None, help="Hold only steps whose name matches this glob.")
@click.option("--reason", default=None, help="Why, for whoever finds it.")
@click.option("--expires-in", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS")
@click.option("--all", "applies_to_all", is_flag=True, help="Required for a rule that pauses everything.")
@triggered_by
@global_options
@with_state
def pause_create(
    state: CliState,
    execution_id: str | None,
    task: str | None,
    step_pattern: str | None,
    reason: str | None,
    expires_in: float | None,
    applies_to_all: bool,
    triggered_by: str,
) -> None:
    """Create a pause rule."""
    expires_at = None if expires_in is None else datetime.now(UTC) + timedelta(seconds=expires_in)
    rule = _admin(state).create_pause(
        execution_id=execution_id,
        task=task,
        step_pattern=step_pattern,
        reason=reason,
        expires_at=expires_at,
        applies_to_all=applies_to_all,
        triggered_by=triggered_by,
    )
    render.emit(state, views.pause_view(rule), [f"Created pause rule: {rule['rule_id']}"])


@pause.command("list")
@click.option("--all", "include_inactive", is_flag=True, help="Include resumed and expired rules.")
@global_options
@with_state
def pause_list(state: CliState, include_inactive: bool) -> None:
    """List pause rules (active ones unless --all)."""
    rules = [views.pause_view(rule) for rule in _admin(state).list_pauses(include_inactive)]
    render.emit(
        state,
        {"rules": rules},
        render.table(
            ["RULE", "ACTIVE", "EXECUTION", "TASK", "STEPS", "EXPIRES", "REASON"],
            [
                [
                    r["rule_id"],
                    "yes" if r["active"] else "no",
                    render.text(r["execution_id"]),
                    render.text(r["task"]),
                    render.text(r["step_pattern"]),
                    render.text(r["expires_at"]),
                    render.text(r["reason"]),
                ]
                for r in rules
            ],
        ),
    )


@pause.command("resume")
@click.argument("rule_id")
@triggered_by
@global_options
@with_state
def pause_resume(state: CliState, rule_id: str, triggered_by: str) -> None:
    """Lift a rule (kept for the record) and release what it held."""
    rule = _admin(state).resume_pause(rule_id, triggered_by)
    render.emit(state, views.pause_view(rule), [f"Resumed pause rule: {rule_id}"])


@pause.command("delete")
@click.argument("rule_id")
@triggered_by
@global_options
@with_state
def pause_delete(state: CliState, rule_id: str, triggered_by: str) -> None:
    """Delete a rule outright (what it held is released)."""
    result = _admin(state).delete_pause(rule_id, triggered_by)
    render.emit(state, result, [f"Deleted pause rule: {rule_id}"])


@admin.command()
@click.option("--limit", type=click.IntRange(1, MAX_LIST_LIMIT), default=100, show_default=True)
@global_options
@with_state
def stranded(state: CliState, limit: int) -> None:
    """Executions that nothing will ever move again (the liveness check; empty when healthy)."""
    view = views.stranded_view(_admin(state).stranded(limit))
    lines = render.table(
        ["EXECUTION", "TASK", "STATUS", "CAUSE", "WAITING FOR", "SINCE"],
        [
            [
                row["execution_id"],
                row["task"],
                row["status"],
                row["cause"],
                render.text(row["waiting_for"] or row["waiting_for_event"]),
                render.text(row["updated_at"]),
            ]
            for row in view["stranded"]
        ],
        status_column=2,
    )
    render.emit(state, view, lines if view["stranded"] else ["No stranded executions."])


@admin.command("prune")
@click.option("--older-than", type=DURATION, required=True, help="Finished longer ago than this (30d, 12h, 2w).")
@click.option(
    "--status",
    "statuses",
    type=click.Choice(TERMINAL_STATUSES),
    multiple=True,
    help="Only this final status (repeatable; default: all three).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@triggered_by
@global_options
@with_state
def prune(state: CliState, older_than: float, statuses: tuple[str, ...], dry_run: bool, triggered_by: str) -> None:
    """Delete finished executions (with their children, steps and events) now, in small batches."""
    result = _admin(state).prune(older_than, list(statuses), dry_run, triggered_by)
    detail = ", ".join(f"{status} {count}" for status, count in result["pruned"].items())
    verb = "Would prune" if dry_run else "Pruned"
    render.emit(state, result, [f"{verb} {result['total']} executions ({detail})"])


COMMANDS: list[click.Command] = [admin]
