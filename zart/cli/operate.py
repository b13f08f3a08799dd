"""Operator entry points: migrate, worker, dev."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

import click

from zart.cli.render import emit
from zart.cli.state import CliState, global_options, with_state


@click.command()
@global_options
@with_state
def migrate(state: CliState) -> None:
    """Create or update the zart schema (safe to run on every deploy)."""
    from zart.migrate import upgrade
    from zart.store.db import translated_errors

    with translated_errors():
        applied = upgrade(state.settings.session_url)
    line = f"Applied {applied} migration{'s' if applied != 1 else ''} successfully." if applied else (
        "Schema is up to date."
    )
    emit(state, {"applied": applied}, [line])


@click.command()
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None, help="Worker processes.")
@click.option("-I", "--import", "imports", multiple=True, help="Module that defines workflows (repeatable).")
@click.option("--pool", default=None, help="Celery pool (prefork by default).")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.option("--hostname", "-n", default=None, help="Celery node name, e.g. worker1@%h.")
@click.option(
    "--queues", "-Q", default=None, help="Comma-separated queues to consume (default: ZART_QUEUE), e.g. -Q etl."
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve Prometheus metrics of every worker process on this port (default: ZART_METRICS_PORT, else off).",
)
@click.option("--no-restart", "in_process", is_flag=True, help="Run the worker in this process, without restarting it.")
@global_options
@with_state
def worker(
    state: CliState,
    concurrency: int | None,
    imports: tuple[str, ...],
    pool: str | None,
    loglevel: str,
    hostname: str | None,
    queues: str | None,
    metrics_port: int | None,
    in_process: bool,
) -> None:
    """Run a Celery worker that executes workflows (imports ZART_IMPORTS and -I modules).

    The worker runs in a child process that is started again if it dies on its own (SIGTERM/SIGINT stop it).
    """
    from dataclasses import replace

    state.settings  # noqa: B018  (a bad setting is reported once, here, not by every child the supervisor restarts)
    if not in_process:
        from zart.supervise import supervise

        say = (lambda _line: None) if state.quiet else (lambda line: click.echo(f"zart worker: {line}", err=True))
        sys.exit(supervise([sys.executable, "-m", "zart", *sys.argv[1:], "--no-restart"], say))

    from zart.dispatch import create_celery_app, run_worker

    settings = replace(state.settings, imports=tuple(dict.fromkeys((*state.settings.imports, *imports))))
    if metrics_port is not None:
        settings = replace(settings, metrics_port=metrics_port)
    app = create_celery_app(settings)
    # zart needs neither Celery's start-up mingle (it waits a second for neighbours' revoked ids and clocks) nor
    # gossip (worker-to-worker events): Postgres holds the state; remote control and events for Flower stay on
    argv = ["worker", "--loglevel", loglevel, "-Q", queues or settings.queue, "--without-mingle", "--without-gossip"]
    if state.quiet:
        # Celery prints its banner and shutdown lines to the process's own stdout; with --quiet they (and its
        # logs, as always) go to stderr, so stdout stays empty
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        argv.insert(0, "--quiet")
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if pool:
        argv += ["--pool", pool]
    if hostname:
        argv += ["--hostname", hostname]
    try:
        code = run_worker(app, argv)
    except Exception as exc:  # raised before the worker ran (Celery's own import of ZART_IMPORTS, say)
        from zart.cli.app import unexpected_failure
        from zart.supervise import COULD_NOT_START, SUPERVISED_ENV

        if not os.environ.get(SUPERVISED_ENV):
            raise
        click.echo(f"Error: {unexpected_failure(exc)}", err=True)
        code = COULD_NOT_START
    sys.exit(code)


@click.command()
@click.option("--port", default=7700, show_default=True, help="Port of the HTTP API.")
@click.option("--once", is_flag=True, help="Run the sample, print the result and stop everything.")
@global_options
@with_state
def dev(state: CliState, port: int, once: bool) -> None:
    """Database, broker, worker and HTTP API together for local use, plus a sample workflow."""
    import json
    import threading
    from pathlib import Path

    from zart.devstack import DevStack

    say = (lambda _line: None) if state.quiet else click.echo
    stack = DevStack(Path.cwd() / ".zart", port, say, database_url=state.database_url)
    signal.signal(signal.SIGTERM, _interrupt)  # a process manager's stop tears the stack down like Ctrl-C
    try:
        env = stack.start()
        sample = stack.run_sample(env)
        say(f"Sample execution {sample['execution_id']}: {sample['status']} {json.dumps(sample['output'])}")
        if once:
            return
        stack.wait_for_api()
        say("")
        say(f"HTTP API:   http://127.0.0.1:{port}/api/v1/executions   Swagger UI: http://127.0.0.1:{port}/docs")
        say(f"Dashboard:  http://127.0.0.1:{port}/ui/")
        say(f"Logs:       {stack.root}/worker.log, {stack.root}/server.log")
        say("Use the CLI from another shell with:")
        say(f"  export DATABASE_URL='{env['DATABASE_URL']}' ZART_BROKER_URL='{env['ZART_BROKER_URL']}'")
        say('  zart schedule onboarding --data \'{"email": "ada@example.com"}\'')
        say("  zart list; zart status <execution-id> --verbose; zart event <execution-id> email-verified")
        say("Press Ctrl-C to stop.")
        threading.Event().wait()
    except KeyboardInterrupt:
        say("Stopping ...")
    finally:
        stack.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


COMMANDS = [migrate, worker, dev]
