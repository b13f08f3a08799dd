"""`zart replay`: the check before a deploy that the new code still replays the recorded executions."""

from __future__ import annotations

import contextlib
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from zart.cli import render
from zart.cli.connect import service_for
from zart.cli.state import CliState, global_options, with_state

EXIT_NONDETERMINISTIC = 1
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Since(click.ParamType):
    """An ISO date or time (UTC unless it says otherwise), or a duration back from now: 30m, 24h, 7d."""

    name = "SINCE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        duration = _DURATION.fullmatch(text)
        if duration:
            return datetime.now(UTC) - timedelta(seconds=float(duration[1]) * _UNIT_SECONDS[duration[2]])
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{text!r} is neither an ISO date/time nor a duration like 30m, 24h, 7d", param, ctx)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@click.command()
@click.option("--task", "task_name", metavar="TASK", help="Only executions of this task.")
@click.option("--since", type=Since(), help="Only executions created since then: 2026-11-30, 24h, 7d.")
@click.option("--limit", type=int, default=1000, show_default=True, help="The newest this many executions.")
@click.option("-I", "--import", "imports", multiple=True, help="Module that defines workflows (repeatable).")
@global_options
@with_state
def replay(
    state: CliState, task_name: str | None, since: datetime | None, limit: int, imports: tuple[str, ...]
) -> None:
    """Replay recorded executions against the current code; exit 1 if any is non-deterministic.

    Runs in this process with no side effects: completed steps return their checkpoints and each replay
    stops at the first step its history does not hold. Workflow modules come from ZART_IMPORTS and -I.
    """
    from zart.registry import import_modules

    # the workflow code runs here (its imports, then every handler): what it prints goes to stderr, so stdout
    # carries only this command's own output (one JSON document with --json)
    with contextlib.redirect_stdout(sys.stderr):
        import_modules(dict.fromkeys((*state.settings.imports, *imports)))
        results = service_for(state).replay(task=task_name, since=since, limit=limit)
    failing = [r for r in results if r["outcome"] in ("nondeterministic", "error")]
    summary = {
        "replayed": len(results),
        "consistent": sum(1 for r in results if r["outcome"] == "consistent"),
        "nondeterministic": [r for r in results if r["outcome"] == "nondeterministic"],
        "errors": [r for r in results if r["outcome"] == "error"],
        "unknown_task": [r for r in results if r["outcome"] == "unknown-task"],
    }
    render.emit(state, summary, [_line(r) for r in failing + summary["unknown_task"]] + [_summary_line(summary)])
    if failing:
        sys.exit(EXIT_NONDETERMINISTIC)


def _line(result: dict[str, Any]) -> str:
    head = f"{result['execution_id']} ({result['task']}, {result['status']})"
    if result["outcome"] == "nondeterministic":
        return (
            f"NON-DETERMINISTIC {head}: at position {result['position']} the recorded run has "
            f"'{result['recorded']}', the code now reaches '{result['reached']}'"
        )
    if result["outcome"] == "error":
        return f"ERROR {head}: {result['message']}"
    return f"SKIPPED {head}: task not registered in this code"


def _summary_line(summary: dict[str, Any]) -> str:
    return (
        f"Replayed {summary['replayed']} execution{'s' if summary['replayed'] != 1 else ''}: "
        f"{summary['consistent']} consistent, {len(summary['nondeterministic'])} non-deterministic, "
        f"{len(summary['errors'])} errors, {len(summary['unknown_task'])} of unknown tasks"
    )


COMMANDS = [replay]
