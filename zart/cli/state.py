"""State shared by every command, and the global options accepted before and after the subcommand."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from zart.config import Settings, load_settings


@dataclass
class CliState:
    database_url: str | None = None
    json_output: bool = False
    quiet: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """Read lazily, so `--help` never touches the environment or the database."""
        if self._settings is None:
            self._settings = load_settings(database_url=self.database_url)
        return self._settings


def _remember(attribute: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        state = ctx.find_root().ensure_object(CliState)
        if value:  # a flag given anywhere wins over its absence elsewhere
            setattr(state, attribute, value)
        return value

    return callback


def global_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--database-url, --json, --quiet and --version, on the group and on every command."""
    from zart import __version__

    options = [
        click.version_option(__version__, "--version", prog_name="zart"),
        click.option(
            "--database-url",
            metavar="URL",
            expose_value=False,
            callback=_remember("database_url"),
            help="Database connection string (overrides DATABASE_URL).",
        ),
        click.option(
            "--json",
            "json_output",
            is_flag=True,
            expose_value=False,
            callback=_remember("json_output"),
            help="Output as JSON instead of human-readable text.",
        ),
        click.option(
            "--quiet",
            is_flag=True,
            expose_value=False,
            callback=_remember("quiet"),
            help="Suppress non-error output.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def command_state() -> CliState:
    return click.get_current_context().find_root().ensure_object(CliState)


def with_state(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Pass the CliState as the first argument of a command."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(command_state(), *args, **kwargs)

    return wrapper
