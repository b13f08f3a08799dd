"""Commands on executions: schedule, status, cancel, wait, event, list (and the task catalog).

Each one parses, calls `ZartService` (which writes straight to Postgres), and renders; errors raised by the
service become exit codes in `zart.cli.app.main` (not found 3, any other error 1).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from zart import views
from zart.admin import AdminService
from zart.canvas.tree import tree_lines
from zart.celery.canvas import CANVAS_TASK
from zart.cli import render
from zart.cli.catalog import tasks
from zart.cli.connect import service_for
from zart.cli.params import JSON_ANY, JSON_OBJECT
from zart.cli.state import CliState, global_options, with_state
from zart.limits import ACTIVE_STATUSES, EXECUTION_STATUSES, MAX_LIST_LIMIT

EXIT_FAILED = 1
EXIT_TIMEOUT = 2
BROKER_DOWN = "the broker is unreachable; {what} will be picked up by the workers' sweeper"


@click.command()
@click.argument("task_name", metavar="TASK_NAME")
@click.option("--data", type=JSON_OBJECT, default="{}", show_default=True, help="Input as a JSON object.")
@click.option("--id", "execution_id", metavar="EXECUTION_ID", help="Explicit id: scheduling it again is safe.")
@click.option("--priority", type=int, default=None, help="Higher starts first when its queue's limits hold a backlog.")
@click.option("--dedup-key", default=None, help="While an execution with this key is active, return it instead.")
@click.option(
    "--debounce",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Start after this delay; a schedule with the same --dedup-key before then replaces the input.",
)
@global_options
@with_state
def schedule(
    state: CliState,
    task_name: str,
    data: dict[str, Any],
    execution_id: str | None,
    priority: int | None,
    dedup_key: str | None,
    debounce: float | None,
) -> None:
    """Schedule a new execution of TASK_NAME."""
    scheduled = service_for(state).schedule(
        task_name, data, execution_id=execution_id, priority=priority, dedup_key=dedup_key, debounce=debounce
    )
    view = views.scheduled_view(scheduled.execution)
    if scheduled.created and not scheduled.published:
        render.warn(BROKER_DOWN.format(what=f"execution {view['execution_id']}"))
    render.emit(
        state,
        view,
        [
            f"Scheduled execution: {view['execution_id']}",
            f"Task: {view['task']}",
            f"Status: {render.paint_status(view['status'])}",
        ],
    )


@click.command()
@click.argument("execution_id")
@click.option("--verbose", "-v", is_flag=True, help="Also show every step and its attempts.")
@global_options
@with_state
def status(state: CliState, execution_id: str, verbose: bool) -> None:
    """Show the current state of an execution."""
    service = service_for(state)
    row = service.status(execution_id)
    view = views.status_view(row)
    steps = [views.step_view(step) for step in service.steps(execution_id)] if verbose else []
    waiting = render.waiting_text(row.get("waiting_for"), row.get("waiting_for_event"), views.iso(row.get("wake_at")))
    lines = render.status_lines(view, row.get("steps_running", 0), waiting)
    held = service.holding_rule(execution_id) if row["status"] in ACTIVE_STATUSES else None
    if held is not None:  # text only: --json keeps exactly the API's status fields
        lines.append(f"Held by: pause rule {held['rule_id']} ({render.text(held['reason'])})")
    limit = service.holding_limit(execution_id) if row["status"] == "pending" else None
    if limit is not None:
        lines.append(f"Held by: limit {limit['limit_name']} ({render.limit_reason(limit)})")
    if verbose:
        view = {**view, "steps": steps}
        lines += render.step_lines(steps)
        if row["task"] == CANVAS_TASK:
            runs = AdminService(service).runs(execution_id)
            current = next((r for r in runs if r["run_index"] == row["run_index"]), None)
            statuses = {step["name"]: step["status"] for step in steps}
            lines += tree_lines(current["input"] if current else None, statuses)
    render.emit(state, view, lines)


@click.command()
@click.argument("execution_id")
@global_options
@with_state
def cancel(state: CliState, execution_id: str) -> None:
    """Cancel a pending, running or waiting execution (a running one stops at its next step)."""
    service_for(state).cancel(execution_id, triggered_by="cli")
    render.emit(state, views.cancelled_view(execution_id), [f"Cancelled execution: {execution_id}"])


@click.command()
@click.argument("execution_id")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Give up after this long (exit 2); without it, wait as long as it takes.",
)
@global_options
@with_state
def wait(state: CliState, execution_id: str, timeout: float | None) -> None:
    """Block until the execution finishes; exit 0 completed, 1 failed or cancelled, 2 timed out."""
    finished, row = service_for(state).wait(execution_id, float("inf") if timeout is None else timeout)
    if not finished:
        render.emit(state, views.still_running_view(row), [render.dump({"status": row["status"]})])
        render.say(f"Timeout reached: execution {execution_id} is still {row['status']}.", err=True)
        sys.exit(EXIT_TIMEOUT)
    view = views.finished_view(row)
    outcome: dict[str, Any] = {"status": view["status"]}
    if view["status"] == "completed":
        outcome["output"] = view["output"]
    elif view["error"] is not None:
        outcome["error"] = view["error"]
    render.emit(state, view, [render.dump(outcome)])
    if view["status"] != "completed":
        sys.exit(EXIT_FAILED)


@click.command()
@click.argument("execution_id")
@click.argument("event_name")
@click.option("--data", type=JSON_ANY, default="{}", show_default=True, help="Event payload as JSON.")
@global_options
@with_state
def event(state: CliState, execution_id: str, event_name: str, data: Any) -> None:
    """Deliver EVENT_NAME to an execution that is waiting for it."""
    published = service_for(state).send_event(execution_id, event_name, data, triggered_by="cli")
    if not published:
        render.warn(BROKER_DOWN.format(what=f"execution {execution_id}"))
    render.emit(
        state, views.delivered_view(execution_id, event_name), [f"Event delivered to {execution_id}: {event_name}"]
    )


LIST_HEADERS = ("EXECUTION ID", "TASK", "STATUS", "CREATED", "STARTED")


@click.command("list")
@click.option("--status", "status_filter", type=click.Choice(EXECUTION_STATUSES), help="Only this status.")
@click.option("--task", metavar="TASK_NAME", help="Only this task.")
@click.option("--limit", type=click.IntRange(1, MAX_LIST_LIMIT), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--order", type=click.Choice(["asc", "desc"]), default="desc", show_default=True, help="By creation.")
@click.option("--cursor", metavar="CURSOR", help="Start after this next_cursor of a previous page (no --offset).")
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Stream every match, --limit rows per query (with --json: one JSON object per line).",
)
@global_options
@with_state
def list_executions(
    state: CliState,
    status_filter: str | None,
    task: str | None,
    limit: int,
    offset: int,
    order: str,
    cursor: str | None,
    every: bool,
) -> None:
    """List executions, newest first by default."""
    service = service_for(state)
    query = {"status": status_filter, "task": task, "limit": limit, "order": order}
    if every:
        _stream_all(state, service, query, offset, cursor)
        return
    page = service.list_page(**query, offset=offset, cursor=cursor)
    view = views.list_view(page.executions, page.total, limit, offset, page.next_cursor)
    lines = render.table(LIST_HEADERS, _list_rows(view["executions"]), status_column=2)
    items = view["executions"]
    if cursor is not None:
        lines.append(f"({len(items)} after the cursor, of {page.total})")
    else:
        lines.append(f"({f'{offset + 1}-{offset + len(items)}' if items else 'none'} of {page.total})")
    if page.next_cursor is not None:
        lines.append(f"next: --cursor {page.next_cursor}")
    render.emit(state, view, lines)


def _list_rows(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["execution_id"], e["task"], e["status"], e["created_at"], e["started_at"]) for e in items]


def _stream_all(state: CliState, service: Any, query: dict[str, Any], offset: int, cursor: str | None) -> None:
    """Every match, page after page by cursor, printed as each page arrives (memory stays one page)."""
    widths: list[int] = []
    shown = 0
    while True:
        page = service.list_page(**query, offset=offset, cursor=cursor)
        items = [views.summary_view(row) for row in page.executions]
        if state.json_output:
            for item in items:
                click.echo(render.dump(item))
        elif not state.quiet:
            rows = _list_rows(items)
            lines = render.table(LIST_HEADERS, rows, status_column=2, min_widths=widths)
            for line in lines[1:] if widths else lines:  # the titles once, at the top
                render.say(line)
            widths = widths or render.column_widths(LIST_HEADERS, rows)
        shown += len(items)
        if page.next_cursor is None:
            break
        cursor, offset = page.next_cursor, 0
    if not state.json_output and not state.quiet:
        click.echo(f"({shown} listed)")


COMMANDS: list[click.Command] = [schedule, status, cancel, wait, event, list_executions, tasks]
