"""A Celery task call as zart dispatches it: the signature, the task's name and the queue Celery routes it to.

Routing is Celery's own: the signature's options over the task's own options over the app's `task_routes`.
Everything a dispatch could trip over later (arguments that are not JSON, a canvas, callbacks already attached,
a queue name no broker accepts) is refused here, at the call, before anything is recorded or sent.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import Celery, Signature
from celery.app.task import Task as CeleryTask
from celery.canvas import _chain, chord, group

from zart.celery import wire
from zart.limits import QUEUE_RULE, is_queue
from zart.observability import hooks
from zart.retry import RetryPolicy

log = logging.getLogger(__name__)

TASK_ID_PREFIX = "zart-"
RESULT_TASK = "zart.remote_result"
FAILURE_TASK = "zart.remote_failure"


def is_celery_target(target: Any) -> bool:
    """A Celery task (`@app.task`, `@shared_task`, any `celery.Task`) or a signature of one."""
    return isinstance(target, (CeleryTask, Signature))


def new_token() -> str:
    """A dispatch token; it is also the Celery task id, which is how every report finds its dispatch."""
    return TASK_ID_PREFIX + uuid.uuid4().hex


def is_dispatch_token(task_id: Any) -> bool:
    return isinstance(task_id, str) and task_id.startswith(TASK_ID_PREFIX)


@dataclass(frozen=True)
class RemoteCall:
    signature: Signature
    task_name: str
    queue: str


@dataclass(frozen=True)
class RemoteHandle:
    """A remote step started by `ctx.schedule` (or by `ctx.step`, which waits on it at once)."""

    name: str
    position: int
    call: RemoteCall | None
    policy: RetryPolicy
    timeout: float | None
    dispatch_timeout: float


@dataclass(frozen=True)
class Home:
    """Where results come back to when a fleet worker lacks the integration: zart's own app and queue."""

    app: Celery | None = None
    queue: str = "zart"
    dispatch_timeout: float = 300.0
    # how long a run keeps its claim waiting for a remote outcome before it parks (0: parks at once)
    hold_seconds: float = 0.0
    # where that wait listens for outcomes (a session URL, not through a transaction pooler)
    listen_url: str | None = None


_home = Home()


def configure_home(
    app: Celery, queue: str, dispatch_timeout: float, hold_seconds: float = 0.0, listen_url: str | None = None
) -> None:
    """Called once by the zart worker: the app a bare signature is sent with, the callbacks' queue, and how
    runs wait for remote outcomes."""
    global _home
    _home = Home(app, queue, dispatch_timeout, hold_seconds, listen_url)


def home() -> Home:
    return _home


def build_call(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> RemoteCall:
    """The signature to send for `target(*args, **kwargs)`, checked and routed."""
    if isinstance(target, (_chain, group, chord)):
        raise TypeError(
            f"a {type(target).__name__} cannot run as one step: dispatch each task as a step of its own"
        )
    if isinstance(target, Signature):
        if target.options.get("link") or target.options.get("link_error"):
            raise ValueError(
                f"the signature of {target.task!r} already has callbacks attached (link/link_error); zart "
                "records the result itself, so chain the next task as the workflow's next step instead"
            )
        signature = target.clone(args=args, kwargs=kwargs)
    else:
        signature = target.signature(args, kwargs)
    app = _sending_app(signature, target)
    signature._app = app
    _check_json(signature.task, signature.args, signature.kwargs)
    return RemoteCall(signature, signature.task, route(app, signature))


def _sending_app(signature: Signature, target: Any) -> Celery:
    app = signature._app or getattr(target, "_app", None) or getattr(target, "app", None)
    if app is None or not app.conf.broker_url:
        # a bare signature or a shared task with no configured app: send it over zart's own broker
        if _home.app is None:
            raise RuntimeError(f"no Celery app is configured to send {signature.task!r}")
        return _home.app
    return app  # type: ignore[no-any-return]


def route(app: Celery, signature: Signature) -> str:
    options: dict[str, Any] = {}
    task = app.tasks.get(signature.task)
    if task is not None:
        options.update(task._get_exec_options())
    options.update(signature.options)
    routed = app.amqp.router.route(options, signature.task, signature.args, signature.kwargs)
    queue = routed.get("queue")
    name = getattr(queue, "name", queue) or app.conf.task_default_queue
    if not is_queue(name):
        raise ValueError(
            f"queue name {name!r} for {signature.task!r} is not valid: {QUEUE_RULE}"
        )
    return name


def _check_json(task_name: str, args: Any, kwargs: Any) -> None:
    try:
        json.dumps([list(args), dict(kwargs)])
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the arguments of {task_name!r} must be JSON-serialisable: {exc}") from exc


def due_in(call: RemoteCall) -> float:
    """Seconds until the task is due by its own `countdown` or `eta` option (0 when it has none): a worker
    holds such a message until then, so nobody hears of it before."""
    options = call.signature.options
    countdown = options.get("countdown")
    if countdown is not None:  # as Celery: a countdown wins over an eta
        return max(0.0, float(countdown))
    eta = options.get("eta")
    if isinstance(eta, str):
        eta = datetime.fromisoformat(eta)
    if isinstance(eta, datetime):
        if eta.tzinfo is None:
            eta = eta.replace(tzinfo=UTC)
        return max(0.0, (eta - datetime.now(UTC)).total_seconds())
    return 0.0


def send(call: RemoteCall, token: str) -> None:
    """Send the task with `token` as its id, and Celery callbacks that record its outcome with zart.

    The callbacks are the fallback for a fleet worker without the integration; an integrated worker drops
    them and records the outcome itself. A send that fails is left to the dispatch timeout. A plain message to
    a Redis broker is pushed straight onto its queue (`zart.celery.wire`); anything else goes through Celery.
    """
    app = call.signature._app
    # JSON whatever the fleet's default serializer: zart's worker accepts nothing else
    options = {"queue": _home.queue, "serializer": "json"}
    on_success = Signature(RESULT_TASK, kwargs={"token": token}, options=options, app=app)
    on_failure = Signature(FAILURE_TASK, options=dict(options), app=app)
    with hooks.remote_step(call.signature.task, token) as trace_headers:  # the fleet's task may continue the trace
        if not trace_headers and wire.push(call.signature, call.queue, token, on_success, on_failure):
            return
        call.signature.apply_async(
            task_id=token,
            queue=call.queue,
            link=on_success,
            link_error=on_failure,
            retry=False,
            # the result comes back through Postgres: the app's result backend (if any) is neither subscribed
            # to when sending nor written by the worker
            ignore_result=True,
            **trace_headers,
        )


def revoke(app: Celery, task_ids: list[str]) -> bool:
    """Tell every worker listening on `app`'s broker not to start these tasks (Celery's `revoke` by task id; a
    task already running is left to finish). Best effort: returns whether the broadcast was sent.

    Sent as Celery's own control message, but with one connection attempt and no retries: `control.revoke`
    retries its publish for as long as the broker is down, which would stall the sweeper that calls this."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0)
            mailbox = app.control.mailbox(connection)
            with connection.Producer() as producer:
                producer.publish(
                    {
                        "method": "revoke",
                        "arguments": {"task_id": list(task_ids), "terminate": False, "signal": None},
                        "destination": None,
                        "pattern": None,
                        "matcher": None,
                    },
                    exchange=mailbox.exchange.name,
                    declare=[mailbox.exchange],
                    headers={"clock": mailbox.clock.forward(), "expires": 0},
                    serializer=mailbox.serializer,
                    retry=False,
                )
        return True
    except Exception as exc:  # the broker is down: the caller tries again later
        log.warning("could not revoke %d celery task(s): %s", len(task_ids), exc)
        return False
