"""`zart limits …`: see and change flow-control limits at runtime, pause and resume a queue fleet-wide.

A change is written to Postgres and takes effect at the next claim of every worker; nothing restarts.
Bad values (a malformed rate, a negative limit) exit 1 and change nothing; an unknown limit exits 1 too.
"""

from __future__ import annotations

from typing import Any

import click

from zart.cli import render
from zart.cli.connect import service_for
from zart.cli.params import triggered_by
from zart.cli.state import CliState, global_options, with_state

CLEAR = "none"


def _flow(state: CliState) -> Any:
    from zart.flow_admin import FlowAdmin

    return FlowAdmin(service_for(state))


class Clearable(click.ParamType):
    """A value, or `none` to remove that limit."""

    name = "VALUE|none"

    def __init__(self, whole_number: bool) -> None:
        self.whole_number = whole_number

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        if value.strip().lower() == CLEAR:
            return None
        if not self.whole_number:
            return value
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is not a whole number (or '{CLEAR}')", param, ctx)


@click.group()
@global_options
def limits() -> None:
    """Flow-control limits: concurrency, rate, per-key concurrency, pause and resume."""


def _lines(view: dict[str, Any]) -> list[str]:
    key = "-"
    if view["concurrency_key"]:
        key = f"{view['concurrency_key']} ≤ {view['key_concurrency']} ({view['on_key_busy']})"
    return [
        f"limit: {view['name']}" + ("  [PAUSED]" if view["paused"] else ""),
        f"concurrency: {render.text(view['concurrency'])} (running {view['running']})",
        f"rate: {render.text(view['rate'])} burst {render.text(view['burst'])} (tokens {render.text(view['tokens'])})",
        f"per key: {key}",
        f"held: {view['held']}",
        f"set by: {view['source']} ({render.text(view['updated_by'])}, {render.text(view['updated_at'])})",
    ]


@limits.command("list")
@global_options
@with_state
def list_limits(state: CliState) -> None:
    """Every limit with what it holds now."""
    views = _flow(state).list()
    rows = [
        [
            v["name"],
            f"{v['running']}/{render.text(v['concurrency'])}",
            render.text(v["rate"]),
            render.text(v["concurrency_key"]),
            "yes" if v["paused"] else "",
            v["held"],
            v["source"],
        ]
        for v in views
    ]
    render.emit(
        state,
        {"limits": views},
        render.table(["LIMIT", "RUNNING", "RATE", "KEY", "PAUSED", "HELD", "SOURCE"], rows),
    )


@limits.command("show")
@click.argument("name")
@global_options
@with_state
def show(state: CliState, name: str) -> None:
    """One limit in full."""
    view = _flow(state).get(name)
    render.emit(state, view, _lines(view))


@limits.command("set")
@click.argument("name")
@click.option("--concurrency", type=Clearable(True), help="At most this many running across the fleet.")
@click.option("--rate", type=Clearable(False), help="At most COUNT starts per PERIOD, e.g. 100/m, 10/s, 5/10s.")
@click.option("--burst", type=Clearable(True), help="Starts allowed at once (the bucket size; default: the count).")
@click.option("--concurrency-key", type=Clearable(False), help="Input field (or dotted path) to limit per value.")
@click.option("--key-concurrency", type=Clearable(True), help="At most this many running per key (default 1).")
@click.option(
    "--on-key-busy",
    type=click.Choice(["wait", "cancel_newest", "cancel_in_progress"]),
    help="When a key is busy: wait, cancel the newest, or cancel the one in progress.",
)
@triggered_by
@global_options
@with_state
def set_limit(state: CliState, name: str, triggered_by: str, **options: Any) -> None:
    """Create or change limit NAME (a task name or a queue); options not given keep their value."""
    source = click.get_current_context()
    changes = {
        key: value
        for key, value in options.items()
        if source.get_parameter_source(key) is not click.core.ParameterSource.DEFAULT
    }
    view = _flow(state).update(name, changes, triggered_by)
    render.emit(state, view, [f"Set limit {name}", *_lines(view)])


@limits.command("pause")
@click.argument("name")
@triggered_by
@global_options
@with_state
def pause(state: CliState, name: str, triggered_by: str) -> None:
    """Stop starting executions of this queue on every worker (running ones finish)."""
    view = _flow(state).pause(name, triggered_by)
    render.emit(state, view, [f"Paused limit {name}"])


@limits.command("resume")
@click.argument("name")
@triggered_by
@global_options
@with_state
def resume(state: CliState, name: str, triggered_by: str) -> None:
    """Start executions of this queue again (those held start at once)."""
    view = _flow(state).resume(name, triggered_by)
    render.emit(state, view, [f"Resumed limit {name}"])


@limits.command("delete")
@click.argument("name")
@triggered_by
@global_options
@with_state
def delete(state: CliState, name: str, triggered_by: str) -> None:
    """Remove a limit (what it held starts); one declared in code returns at the next worker start."""
    result = _flow(state).delete(name, triggered_by)
    render.emit(state, result, [f"Deleted limit {name} ({result['released']} released)"])


COMMANDS: list[click.Command] = [limits]
