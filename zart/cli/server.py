"""`zart server`: the HTTP API under waitress, sized for long-polls."""

from __future__ import annotations

from typing import Any

import click

from zart.cli.state import CliState, global_options, with_state

DEFAULT_PORT = 7700
DEFAULT_THREADS = 256


def reserved_threads(threads: int) -> int:
    """Threads kept free of /wait long-polls so probes and ordinary requests are always answered."""
    return max(4, threads // 8)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0 for all).")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(min=8),
    default=DEFAULT_THREADS,
    show_default=True,
    help="Worker threads; each /wait long-poll holds one until it returns.",
)
@click.option(
    "--connection-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Open connections accepted at once (default: threads + 256).",
)
@global_options
@with_state
def server(state: CliState, host: str, port: int, threads: int, connection_limit: int | None) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, Swagger UI at /docs)."""
    import waitress

    from flask_app import create_app
    from zart.heap import freeze_startup_heap

    if state.settings.log_format == "json":
        from zart.observability.logs import install_on_root

        install_on_root("json")
    max_waiters = threads - reserved_threads(threads)
    app = create_app(state.settings, max_waiters=max_waiters)
    freeze_startup_heap()
    if not state.quiet:
        click.echo(f"zart API on http://{host}:{port} ({threads} threads, up to {max_waiters} long-polls)")
    waitress.serve(app, host=host, port=port, **waitress_options(threads, connection_limit))


def waitress_options(threads: int, connection_limit: int | None = None) -> dict[str, Any]:
    """How zart serves under waitress (shared with the tests' in-process server)."""
    return {
        "threads": threads,
        "connection_limit": connection_limit or threads + 256,
        "asyncore_use_poll": True,  # select() stops at 1024 descriptors
        "channel_timeout": 120,
        # reading one request ahead is what lets waitress notice a client that hung up on a held /wait
        "channel_request_lookahead": 1,
        "ident": "zart",
        "clear_untrusted_proxy_headers": True,
    }


COMMANDS = [server]
