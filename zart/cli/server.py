"""`zart server`: the HTTP API under waitress, sized for long-polls."""

from __future__ import annotations

import logging

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
    """Serve the HTTP API (OpenAPI at /openapi.json, Swagger UI at /docs) and the dashboard (at /ui)."""
    from flask_app import create_app
    from flask_app.hosts import default_allowed_hosts
    from zart.cli.serving import create_server, waitress_options
    from zart.heap import freeze_startup_heap

    if state.settings.log_format == "json":
        from zart.observability.logs import install_on_root

        install_on_root("json")
    max_waiters = threads - reserved_threads(threads)
    allowed_hosts = state.settings.allowed_hosts or default_allowed_hosts(host)
    app = create_app(state.settings, max_waiters=max_waiters, allowed_hosts=allowed_hosts)
    freeze_startup_heap()
    if not state.quiet:
        click.echo(f"zart API on http://{host}:{port} ({threads} threads, up to {max_waiters} long-polls)")
    options = waitress_options(threads, connection_limit, state.settings.max_body_bytes)
    logging.basicConfig()  # as waitress.serve does: its warnings (queue depth, app errors) reach stderr
    create_server(app, host=host, port=port, **options).run()


COMMANDS = [server]
