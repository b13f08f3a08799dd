"""The Celery app, its one worker task, and the worker's lifecycle (the sweeper thread, the exit code).

A Celery message carries only an execution id; the worker claims the row in Postgres before doing anything.
Publishing happens after commit and may fail: the sweeper re-publishes whatever the messages missed.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import sys
from dataclasses import replace
from typing import Any

from celery import Celery, signals

from zart.celery import target  # noqa: F401  (registers the workflow that fires Celery targets)
from zart.celery.calls import configure_home
from zart.celery.doorbell import BROKER_SOCKET_TIMEOUT, RUN_TASK, Publisher
from zart.celery.recorder import register_fallback_tasks
from zart.celery.routing import QueueRouter
from zart.celery.standby import Standby, pass_on
from zart.config import Settings, is_pooled
from zart.declarations import fingerprint, latest_sets, module_source, warn_superseded
from zart.dispatch.broker import BrokerProbe
from zart.dispatch.budget import budget_for
from zart.dispatch.sweeper import Sweeper
from zart.engine.context import CHILD_FUNCTION_TASK
from zart.engine.runner import ReadySelection, RunnerConfig, run_execution
from zart.heap import freeze_startup_heap
from zart.observability import logs, metrics, tracing
from zart.registry import default_registry, import_modules
from zart.store import catalog, db, executions, flow, unregistered
from zart.store import schedules as schedule_store

log = logging.getLogger(__name__)

# workflows every zart worker runs: a Celery canvas as one execution
BUILT_IN_WORKFLOWS = "zart.canvas.workflow"


def default_concurrency() -> int:
    """Pool processes of a worker started without --concurrency: steps wait on commits more than on the CPU,
    so two processes per core keep the cores busy."""
    return 2 * (os.cpu_count() or 1)


def create_celery_app(settings: Settings, main: str = "zart") -> Celery:
    """A Celery app configured for durability; the worker task closes over `settings`."""
    app = Celery(main, broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.queue,
        task_routes={RUN_TASK: {"queue": settings.queue}},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        broker_transport_options={
            "visibility_timeout": 3600,
            "socket_connect_timeout": 2,
            "socket_timeout": BROKER_SOCKET_TIMEOUT,
        },
        broker_pool_limit=10,
        worker_send_task_events=False,
        imports=[BUILT_IN_WORKFLOWS, *settings.imports],
        worker_hijack_root_logger=False,
        worker_concurrency=default_concurrency(),
    )
    app.zart_settings = settings  # type: ignore[attr-defined]
    app.zart_router = QueueRouter(settings.database_url)  # type: ignore[attr-defined]
    runner_config = RunnerConfig(
        database_url=settings.database_url,
        lease_seconds=settings.lease_seconds,
        short_wait_hint=settings.short_wait_hint,
        worker_name=socket.gethostname(),
        max_recoveries=settings.max_recoveries,
        workflow_modules=settings.imports,
        pass_on=functools.partial(_pass_on, app, settings.queue),
    )
    publisher = Publisher(app)
    selection: list[ReadySelection] = []

    # not shared: Celery would otherwise register this closure (over these settings) in every app finalised later
    # in the process, another zart app's or a team's own
    @app.task(name=RUN_TASK, ignore_result=True, shared=False)
    def run(execution_id: str) -> str:
        # named per call: a prefork pool child has its own pid
        config = replace(runner_config, worker_name=f"{socket.gethostname()}:{os.getpid()}")
        if settings.self_claim and not selection:  # once per process: the tasks and queues are fixed by then
            selection.append(
                ready_selection(app, settings.queue, publisher, settings.standby_seconds, settings.database_url)
            )
        then_ready = selection[0] if selection else None
        return run_execution(execution_id, config, publisher.publish, then_ready=then_ready)

    register_fallback_tasks(app, settings.database_url, publisher.publish)
    configure_home(app, settings.queue, settings.dispatch_timeout, settings.remote_hold, settings.libpq_url)
    _connect_worker_signals(app, settings, publisher)
    return app


def ready_selection(
    app: Celery, default_queue: str, publisher: Publisher, standby_seconds: float, database_url: str
) -> ReadySelection:
    """What this worker may claim without a doorbell: the tasks registered here, on the queues it consumes
    (`-Q`, selected before the pool forks, so a child sees the same). Executions with no queue of their own
    are routed to the deployment's default queue (ZART_QUEUE)."""
    queues = tuple(sorted(app.amqp.queues.consume_from))
    return ReadySelection(
        tasks=own_tasks(),
        queues=queues,
        default_queue=default_queue in queues,
        stand_by=functools.partial(
            Standby,
            app,
            queues,
            publisher.publish,
            publisher.ring_queue,
            standby_seconds,
            still_pending=functools.partial(_pending_among, database_url),
        )
        if standby_seconds > 0
        else None,
    )


def own_tasks() -> tuple[str, ...]:
    """The tasks this process runs (once its workflow modules are imported)."""
    return (*sorted(task.name for task in default_registry.tasks()), CHILD_FUNCTION_TASK)


def _pass_on(app: Celery, default_queue: str, queue: str | None, task: str, execution_id: str) -> bool:
    """See zart.celery.standby.pass_on; an execution with no queue of its own is on the default queue."""
    return pass_on(app, queue or default_queue, task, execution_id)


def _pending_among(database_url: str, execution_ids: list[str]) -> list[str]:
    with db.autocommit(database_url) as conn:
        return executions.pending_among(conn, execution_ids)


def run_worker(app: Celery, argv: list[str]) -> int:
    """Run a Celery worker in this process and return the exit code its shutdown chose.

    `worker_main` drops that code, so a worker that stopped on an unrecoverable broker error would otherwise
    exit 0, and a supervisor would take the failure for a requested stop and leave the host without a worker.
    """
    app.worker_main(argv)
    controller = getattr(app, "zart_worker", None)
    if controller is None:
        return 1  # the worker never started
    return int(controller.exitcode or 0)


def _pool_name(pool_cls: Any) -> str:
    """Celery's pool as its short name, whether given by alias ("prefork", "threads") or as a class."""
    if isinstance(pool_cls, str):
        return {"processes": "prefork"}.get(pool_cls.lower(), pool_cls.lower())
    module = getattr(pool_cls, "__module__", "")
    return {"celery.concurrency.thread": "threads", "celery.concurrency.solo": "solo"}.get(module, "prefork")


# the declaration sets of a module's tasks and limits are recorded apart from its schedules, under this prefix
CATALOG_UNIT = "catalog:"


def record_catalog(settings: Settings) -> None:
    """Tell the store which task names this process can run (so others can refuse unknown ones) and which
    limits its code declares.

    Each module's tasks and limits are written only while its set of them is the newest seen (see
    zart.declarations): in a rolling deploy an old worker restarting after a new one would otherwise put back
    a task's old queue (routing its new executions to a queue the new workers may not serve) or old limits."""
    recorder = f"{socket.gethostname()}:{os.getpid()}"
    tasks = default_registry.tasks()
    limits = default_registry.limits()
    rows = {
        task.name: {
            "name": task.name,
            "schema": task.schema,
            "timeout_seconds": task.timeout,
            "queue": task.queue,
            "flow_limit": task.flow_limit,
            "priority": task.priority,
        }
        for task in tasks
    }
    by_module: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for task in tasks:
        by_module.setdefault(task.handler.__module__, {"tasks": [], "limits": []})["tasks"].append(rows[task.name])
    for spec in limits:
        for module in sorted(default_registry.limit_modules(spec.name)):
            by_module.setdefault(module, {"tasks": [], "limits": []})["limits"].append(spec.columns())
    found = {
        CATALOG_UNIT + module: fingerprint(declared, module_source(module), settings.code_version, "catalog")
        for module, declared in by_module.items()
    }
    with db.transaction(settings.database_url) as conn:
        schedule_store.serialise_reconciliation(conn)
        current, superseded = latest_sets(conn, found, settings.code_version)
        for unit, latest in superseded.items():
            warn_superseded("tasks and limits", unit.removeprefix(CATALOG_UNIT), settings.code_version, latest)
        generations = {
            task.name: current[CATALOG_UNIT + task.handler.__module__]
            for task in tasks
            if CATALOG_UNIT + task.handler.__module__ in current
        }
        newest_tasks = set(generations)
        catalog.record_tasks(
            conn, [{**rows[name], "generation": generations[name]} for name in sorted(newest_tasks)], recorder
        )
        catalog.record_seen(conn, sorted(set(rows) - newest_tasks), recorder)
        # executions given back by workers that lacked these tasks need not wait out their back-off
        unregistered.wake_for_tasks(conn, [task.name for task in tasks])
        newest = []
        for spec in limits:
            units = [CATALOG_UNIT + module for module in default_registry.limit_modules(spec.name)]
            if all(unit in current for unit in units):
                generation = max((current[unit] for unit in units), default=None)
                newest.append({**spec.columns(), "generation": generation})
        flow.declare(conn, newest, recorder)


def start_up(settings: Settings) -> None:
    """What a worker writes as it becomes ready: the tasks it runs, and the schedules its code declares."""
    record_catalog(settings)
    reconcile_schedules(settings)


def reconcile_schedules(settings: Settings) -> None:
    """Bring the schedules declared on this process's tasks into the store (see zart.schedules.reconcile).

    A failure is logged, never fatal: the sweeper must start whatever happens to the declarations. The modules
    whose stale declarations are disabled include every module defining one of this process's tasks, not only
    those ZART_IMPORTS names: a package's tasks module often imports the modules that declare them."""
    from zart.schedules.reconcile import declared, reconcile

    tasks = default_registry.tasks()
    modules = [*settings.imports, *sorted({task.handler.__module__ for task in tasks})]
    try:
        reconcile(settings.database_url, declared(tasks), modules, settings.code_version)
    except Exception:
        log.exception("could not reconcile the schedules declared in code; they keep their previous definitions")


def _connect_worker_signals(app: Celery, settings: Settings, publisher: Publisher) -> None:
    state: dict[str, Any] = {}

    def on_ready(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        fields_on_root_handlers()
        import_modules((BUILT_IN_WORKFLOWS, *settings.imports))
        queues = tuple(sorted(app.amqp.queues.consume_from))
        probe = BrokerProbe(
            app,
            queues,
            settings.self_claim,
            announce_seconds=max(10.0, 3 * settings.sweep_interval),
            tasks=own_tasks(),
        )
        # the tasks it runs are announced before its start-up wakes the executions waiting for them: a worker
        # lacking one that takes such a doorbell then hands it on to this one (see zart.celery.standby.pass_on)
        probe.announce_kind()
        pending_start = None
        try:
            start_up(settings)
        except Exception:  # Postgres unreachable as the worker starts: the sweeper must run all the same
            log.warning("could not record this worker's tasks; its sweeper tries again every %ss",
                        settings.sweep_interval, exc_info=True)
            pending_start = functools.partial(start_up, settings)
        sweeper = Sweeper(settings, publisher, probe, pending_start)
        sweeper.start()
        state["sweeper"] = sweeper
        freeze_startup_heap()

    def on_shutdown(sender: Any = None, **_: Any) -> None:
        sweeper = state.pop("sweeper", None)
        if sweeper is not None:
            sweeper.stop()
        tracing.flush()
        metrics.disable()

    def on_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        app.zart_worker = sender  # type: ignore[attr-defined]
        if settings.metrics_port is not None:  # a worker only: clients of the app never count or serve
            metrics.enable()  # before the pool forks, so every child counts into the same directory
            metrics.serve(settings.metrics_port)
        db.ping_only_after_idle(db.WORKER_PING_AFTER_IDLE)
        budget = budget_for(int(sender.concurrency or 1), _pool_name(sender.pool_cls), is_pooled(settings.database_url))
        db.size_pool(budget.kept_per_process, budget.burst_per_process)  # before the pool forks its children
        print(f"zart worker: {budget.line()}", file=sys.stderr, flush=True)
        freeze_startup_heap()

    def on_pool_child_ready(**_: Any) -> None:
        fields_on_root_handlers()
        freeze_startup_heap()

    def on_logging_set_up(logger: logging.Logger | None = None, **_: Any) -> None:
        if logger is not None:
            logs.install(logger.handlers, settings.log_format)

    def fields_on_root_handlers() -> None:
        """The run's fields on the root logger's handlers also when the app configures logging itself (a
        `setup_logging` receiver): Celery then sends no after_setup_logger. In the main process once it is
        ready, and in each pool child after the fork (a handler is set up once, whoever asks first)."""
        logs.install(logging.getLogger().handlers, settings.log_format)

    def on_pool_child_exit(**_: Any) -> None:
        tracing.flush()  # a pool child leaves through os._exit: buffered spans would be lost

    signals.after_setup_logger.connect(on_logging_set_up, weak=False)
    signals.after_setup_task_logger.connect(on_logging_set_up, weak=False)
    signals.worker_process_shutdown.connect(on_pool_child_exit, weak=False)
    signals.worker_init.connect(on_init, weak=False)
    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutdown.connect(on_shutdown, weak=False)
    signals.worker_process_init.connect(on_pool_child_ready, weak=False)
