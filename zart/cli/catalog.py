"""`zart tasks`: the task names worker processes have registered, i.e. what `schedule` will accept."""

from __future__ import annotations

import click

from zart import views
from zart.cli import render
from zart.cli.connect import service_for
from zart.cli.state import CliState, global_options, with_state


@click.command()
@global_options
@with_state
def tasks(state: CliState) -> None:
    """List the registered tasks (recorded by workers when they start)."""
    entries = [views.task_view(task) for task in service_for(state).tasks()]
    rows = [(t["name"], t["queue"] or "(default)", t["registered_by"], t["last_seen_at"]) for t in entries]
    columns = ("TASK", "QUEUE", "REGISTERED BY", "LAST SEEN")
    lines = render.table(columns, rows) if rows else ["no tasks registered yet"]
    render.emit(state, {"tasks": entries}, lines)
