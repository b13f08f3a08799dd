"""Pushing a remote step's task message straight onto a Redis broker's queue, over a client kept per process.

Celery's `apply_async` is most of what a zart worker spends on a remote step: per message it acquires a
producer, kombu's Redis transport creates a new Redis client, and kombu's publish machinery runs. In the plain
case (a Redis broker, a queue Celery publishes to through the default direct exchange, JSON, no priority,
countdown, expiry, time limit, trace headers, publish signal receivers or `task-sent` events) the message pushed
here is the one Celery would push: Celery builds it (`create_task_message`), kombu's channel encodes the
envelope, and one LPUSH puts it on the same list. Any other case goes through `apply_async` (`push` returns
False), so what reaches the fleet never depends on which path sent it.
"""

from __future__ import annotations

import os
import threading
import uuid

from celery import Celery, Signature, signals
from celery.app.task import Task as CeleryTask
from kombu.entity import DELIVERY_MODES
from kombu.serialization import dumps as serialize
from kombu.utils.json import dumps as to_json

# exec options that leave the message as the plain path builds it when they are unset
_ROUTING = frozenset({"queue", "routing_key", "exchange", "serializer"})
_PUBLISH_SIGNALS = (signals.before_task_publish, signals.after_task_publish, signals.task_sent)


class _Wire:
    """One app's Redis connection in one process: the kombu channel that encodes envelopes, and a client."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.connection = app.connection_for_write()
        self.channel = self.connection.default_channel
        self.client = self.channel.Client(connection_pool=self.channel.pool)

    def close(self) -> None:
        try:
            self.connection.release()
        except Exception:  # a broken connection: nothing left to release
            pass


_wires: dict[tuple[int, int], _Wire | None] = {}
_lock = threading.Lock()


def push(signature: Signature, queue: str, token: str, link: Signature, link_error: Signature) -> bool:
    """Send `signature` as task `token` to `queue` with its callbacks; False when the plain path does not
    apply (the caller sends it with `apply_async`). Raises what the broker raises."""
    app: Celery = signature._app
    wire = _wire_for(app)
    task = app.tasks.get(signature.task)
    if wire is None or not _plain(app, task, signature, queue):
        return False
    if task is not None and task.typing and hasattr(task, "__header__"):
        task.__header__(*signature.args, **signature.kwargs)  # the arguments check apply_async makes
    parent = app.current_worker_task
    parent_id = getattr(getattr(parent, "request", None), "id", None)
    root_id = (getattr(parent.request, "root_id", None) or parent_id) if parent is not None else None
    headers, properties, body, _ = app.amqp.create_task_message(
        token,
        signature.task,
        signature.args,
        signature.kwargs,
        callbacks=[link],
        errbacks=[link_error],
        reply_to=app.thread_oid,
        root_id=root_id,
        parent_id=parent_id,
        ignore_result=True,
    )
    content_type, content_encoding, data = serialize(body, serializer="json")
    channel = wire.channel
    envelope = channel.prepare_message(
        data, 0, content_type, content_encoding, headers, {**properties, "delivery_mode": _delivery_mode(app, queue)}
    )
    envelope["body"], body_encoding = channel.encode_body(envelope["body"], channel.body_encoding)
    envelope["properties"].update(body_encoding=body_encoding, delivery_tag=str(uuid.uuid4()))
    envelope["properties"]["delivery_info"].update(exchange="", routing_key=queue)
    try:
        wire.client.lpush(queue, to_json(envelope))
    except Exception:
        _forget(app)  # a new connection next time
        raise
    return True


def _plain(app: Celery, task: CeleryTask | None, signature: Signature, queue: str) -> bool:
    """The message `apply_async` would send is the one `push` builds."""
    if any(s.receivers for s in _PUBLISH_SIGNALS):
        return False
    options = {**(task._get_exec_options() if task is not None else {}), **signature.options}
    # what the app's task_routes add (an exchange and routing key, a priority, ...) counts as well
    routed = app.amqp.router.route(dict(options), signature.task, signature.args, signature.kwargs)
    options.update({key: value for key, value in routed.items() if key != "queue"})
    if any(value for key, value in options.items() if key not in _ROUTING):
        return False
    if options.get("serializer") not in (None, "json") or options.get("exchange"):
        return False
    if options.get("routing_key") not in (None, "", queue):
        return False
    if task is not None and (
        type(task).apply_async is not CeleryTask.apply_async or type(task).shadow_name is not CeleryTask.shadow_name
    ):
        return False
    declared = app.amqp.queues.get(queue)
    if declared is not None and (
        declared.exchange is None
        or declared.exchange.type != "direct"
        or declared.queue_arguments
        or declared.expires is not None
        or declared.message_ttl is not None
        or declared.max_priority is not None
    ):
        return False
    return True


def _delivery_mode(app: Celery, queue: str) -> int:
    """What Celery and kombu put in the message: the queue's exchange's mode, else the app's default."""
    declared = app.amqp.queues.get(queue)
    mode = getattr(getattr(declared, "exchange", None), "delivery_mode", None) or app.conf.task_default_delivery_mode
    return mode if isinstance(mode, int) else DELIVERY_MODES[mode]


def _wire_for(app: Celery) -> _Wire | None:
    key = (os.getpid(), id(app))
    if key in _wires:
        return _wires[key]
    with _lock:
        if key not in _wires:
            _wires[key] = _Wire(app) if _eligible(app) else None
        return _wires[key]


def _eligible(app: Celery) -> bool:
    """An app whose every zart task message can go the plain way: a Redis broker Celery talks to as is."""
    conf = app.conf
    options = conf.broker_transport_options or {}
    if conf.task_always_eager or conf.task_send_sent_event or conf.task_compression:
        return False
    if conf.task_serializer != "json" or int(conf.task_protocol) != 2:
        return False
    if options.get("global_keyprefix") or options.get("priority_steps") is not None:
        return False
    if conf.task_inherit_parent_priority or conf.task_default_priority is not None:
        return False
    connection = app.connection_for_write()
    try:
        return bool(connection.transport.driver_type == "redis")
    finally:
        connection.release()


def _forget(app: Celery) -> None:
    with _lock:
        wire = _wires.pop((os.getpid(), id(app)), None)
    if wire is not None:
        wire.close()
