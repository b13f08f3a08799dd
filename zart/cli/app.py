"""The Click group, its global options and the exit-code contract."""

from __future__ import annotations

import importlib
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


# Which module defines each command: a command's module (and what it imports, such as the store and SQLAlchemy)
# loads only when that command runs, so `zart worker`'s supervisor and `zart --help` start quickly
COMMAND_MODULES = {
    "schedule": "executions",
    "status": "executions",
    "cancel": "executions",
    "wait": "executions",
    "event": "executions",
    "list": "executions",
    "tasks": "executions",
    "migrate": "operate",
    "worker": "operate",
    "dev": "operate",
    "server": "server",
    "admin": "admin",
    "schedules": "schedules",
    "replay": "replay",
    "limits": "limits",
}


class LazyGroup(click.Group):
    """A group whose commands are imported from their module (COMMAND_MODULES) the first time they are asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMAND_MODULES, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            module = importlib.import_module(f"zart.cli.{COMMAND_MODULES[cmd_name]}")
            for command in module.COMMANDS:
                self.add_command(command)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["--help", "-h"]})
@global_options
@click.pass_context
def cli(ctx: click.Context, **_: Any) -> None:
    """zart: durable workflows on Celery, checkpointed in PostgreSQL."""
    ctx.ensure_object(CliState)


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
