"""How the CLI shows things: compact JSON, aligned tables and status lines, colour only on a terminal.

Commands hand over a JSON view (from `zart.views`) and the human lines; `emit` picks one according to
`--json` / `--quiet`, so no command decides on its own what those flags mean.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click

from zart.cli.state import CliState

STATUS_COLOURS = {
    "pending": "white",
    "running": "cyan",
    "waiting": "blue",
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
}
MISSING = "-"


def dump(value: Any) -> str:
    """One line of JSON: what agents and shell pipelines parse."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


# Our own colours are written with NUL where the escape character goes, and become escapes only as a line is
# printed, after everything else in it was made printable. Stored data can never hold NUL (PostgreSQL refuses
# it) and neither can a command-line argument, so no client value can smuggle an escape sequence through.
_OUR_ESCAPE = "\x00"


def printable(line: str) -> str:
    """A line of text output with every non-printable character (controls, terminal escapes, bidirectional
    overrides, line breaks inside a value) shown as its Python escape, so client data cannot drive the
    terminal; our own colours are kept."""
    if line.isprintable():
        return line
    shown = "".join(
        c if c.isprintable() or c == _OUR_ESCAPE else c.encode("unicode_escape").decode("ascii") for c in line
    )
    return shown.replace(_OUR_ESCAPE, "\x1b")


def say(line: str, err: bool = False) -> None:
    """Print one line of human output (never JSON: that is escaped by its encoder)."""
    click.echo(printable(line), err=err)


def style(value: str, **options: Any) -> str:
    """`click.style`, in the form `printable` turns back into escapes."""
    return click.style(value, **options).replace("\x1b", _OUR_ESCAPE)


def emit(state: CliState, view: Any, lines: Iterable[str] = ()) -> None:
    """`--json` prints the view (even with `--quiet`); otherwise the human lines, unless `--quiet`."""
    if state.json_output:
        click.echo(dump(view))
    elif not state.quiet:
        for line in lines:
            say(line)


def warn(message: str) -> None:
    """A notice that is not an error (the command still succeeded): stderr, one line."""
    say(f"Warning: {message}", err=True)


def on_terminal() -> bool:
    return sys.stdout.isatty()


def paint_status(status: str) -> str:
    if not on_terminal():
        return status
    return style(status, fg=STATUS_COLOURS.get(status), bold=status in ("failed", "completed"))


def text(value: Any) -> str:
    """A cell or field value: strings as they are, missing as '-', everything else as compact JSON."""
    if value is None:
        return MISSING
    return printable(value if isinstance(value, str) else dump(value))


def column_widths(headers: Sequence[str], rows: Iterable[Sequence[Any]], floors: Sequence[int] = ()) -> list[int]:
    """The width of each column: its widest cell or title (or the floor given, when wider)."""
    cells = [[text(value) for value in row] for row in rows]
    least = list(floors) or [0] * len(headers)
    return [max([len(header), least[i], *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    status_column: int | None = None,
    min_widths: Sequence[int] = (),
) -> list[str]:
    """Left-aligned columns two spaces apart; padding is computed before colouring so escapes don't skew it.

    `min_widths` keeps later pages of a streamed table in the columns of the first."""
    cells = [[text(value) for value in row] for row in rows]
    widths = column_widths(headers, cells, min_widths)

    def line(row: Sequence[str], header: bool = False) -> str:
        padded = []
        for i, value in enumerate(row):
            cell = value.ljust(widths[i]) if i < len(row) - 1 else value
            if header and on_terminal():
                cell = style(cell, bold=True)
            elif i == status_column and not header:
                cell = paint_status(value) + cell[len(value) :]
            padded.append(cell)
        return "  ".join(padded).rstrip()

    return [line(headers, header=True), *(line(row) for row in cells)]


def error_text(error: Any) -> str:
    """`Type: message` for the store's `{"type", "message"}` errors, JSON for anything else."""
    if isinstance(error, Mapping) and "message" in error:
        kind = error.get("type")
        return f"{kind}: {error['message']}" if kind else str(error["message"])
    return text(error)


def waiting_text(waiting_for: Mapping[str, Any] | None, event: str | None, wake_at: str | None) -> str | None:
    """What a waiting execution waits for, in words: `event approval`, `sleep nap (until …)`, `children …`."""
    details = dict(waiting_for or {})
    kind = details.get("kind") or ("event" if event else None)
    if kind is None:
        return f"timer (until {wake_at})" if wake_at else None
    subject = {
        "event": event or details.get("event"),
        "children": ", ".join(details.get("steps", [])),
        "remote": "celery " + ", ".join(details.get("steps", [])),
        "rate_limit": f"{details.get('limit')} (step {details.get('step')})",
        "worker": f"registering {details.get('task')}",
    }
    reason = " ".join(part for part in (kind, subject.get(kind, details.get("step"))) if part)
    return f"{reason} (until {wake_at})" if wake_at and kind != "children" else reason


def status_lines(view: Mapping[str, Any], steps_running: int, waiting: str | None) -> list[str]:
    """The `key: value` lines of `zart status`; optional facts appear only when they apply."""
    lines = [
        f"execution_id: {view['execution_id']}",
        f"task: {view['task']}",
        f"status: {paint_status(view['status'])}",
        f"started_at: {text(view['started_at'])}",
    ]
    if view["completed_at"]:
        lines.append(f"completed_at: {view['completed_at']}")
    lines.append(f"steps: {view['steps_completed']} completed, {steps_running} running")
    if view["current_step"]:
        lines.append(f"current_step: {view['current_step']}")
    if waiting:
        lines.append(f"waiting_for: {waiting}")
    if view["status"] == "completed" or view["output"] is not None:
        lines.append(f"output: {dump(view['output'])}")
    if view["error"] is not None:
        lines.append(f"error: {error_text(view['error'])}")
    return lines


def step_lines(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every step of the run, then its attempts as an indented aligned table (for `status --verbose`)."""
    if not steps:
        return ["", "no steps recorded yet"]
    lines: list[str] = []
    for step in steps:
        count = step["attempts"]
        lines += [
            "",
            f"step {step['name']} ({step['kind']}): {paint_status(step['status'])}, "
            f"{count} attempt{'s' if count != 1 else ''}",
        ]
        dispatch = step.get("remote")
        if dispatch:
            lines.append(
                f"  celery task {dispatch['task_name']} on queue {dispatch['queue']}, task id {dispatch['task_id']}, "
                f"worker {dispatch['worker'] or '-'}: {dispatch['state']}"
            )
        history = step["attempt_history"]
        if history:
            rows = [
                (f"#{a['attempt']}", a["started_at"], a["ended_at"], a["outcome"], _optional_error(a["error"]))
                for a in history
            ]
            lines += ["  " + row for row in table(("ATTEMPT", "STARTED", "ENDED", "OUTCOME", "ERROR"), rows)]
        elif step["error"] is not None:
            lines.append(f"  error: {error_text(step['error'])}")
    return lines


def _optional_error(error: Any) -> str:
    return "" if error is None else error_text(error)


def limit_reason(held: Mapping[str, Any]) -> str:
    """Why a limit holds an execution, in the limit's own numbers."""
    reason = held["reason"]
    if reason == "concurrency":
        return f"concurrency: {held['running']} of {held['concurrency']} running"
    if reason == "key":
        return f"key {held['flow_key']!r}: {held['key_running'] or 0} of {held['key_concurrency']} running"
    if reason == "rate":
        return f"rate: waiting for a token ({held['rate']} per {held['period_seconds']:g}s)"
    if reason == "paused":
        return "the queue is paused"
    if reason == "queued":
        return "behind earlier or higher-priority executions"
    return str(reason)
