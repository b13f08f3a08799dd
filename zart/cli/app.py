"""The Click group, its global options and the exit-code contract."""

from __future__ import annotations

import sys
from typing import Any

import click

from zart.cli import render
from zart.cli.state import CliState, global_options
from zart.errors import ExecutionNotFound, ScheduleNotFound, ZartError
from zart.observability import tracing

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_TIMEOUT = 2
EXIT_NOT_FOUND = 3


@click.group(context_settings={"help_option_names": ["--help", "-h"]})
@global_options
@click.pass_context
def cli(ctx: click.Context, **_: Any) -> None:
    """zart: durable workflows on Celery, checkpointed in PostgreSQL."""
    ctx.ensure_object(CliState)


def _register_commands() -> None:
    from zart.cli import admin, executions, limits, operate, replay, schedules, server

    for module in (executions, operate, server, admin, schedules, replay, limits):
        for command in module.COMMANDS:
            cli.add_command(command)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage errors exit 1 (never 2, which means a `wait` timeout), not found exits 3."""
    try:
        with tracing.continued_from(tracing.environment_carrier()):
            code = cli.main(args=argv, prog_name="zart", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_ERROR)
    except (ExecutionNotFound, ScheduleNotFound) as exc:
        render.say(f"Error: {exc.message}", err=True)
        sys.exit(EXIT_NOT_FOUND)
    except ZartError as exc:
        render.say(f"Error: {exc.message}", err=True)
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # whatever else: one line an operator (or an agent) can act on, never a traceback
        render.say(f"Error: {unexpected_failure(exc)}", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def unexpected_failure(exc: Exception) -> str:
    """One line for an error zart did not translate (the store translates the database's own)."""
    detail = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {detail[0]}" if detail else type(exc).__name__
