"""A Celery canvas object turned into the input of the `zart.canvas` workflow.

Each task is routed here, where its own Celery app (and so its `task_routes`) is at hand, and the queue is
recorded with it; the zart worker then sends it there without importing the team's task modules.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Signature
from celery.canvas import _chain, chord, group, signature

from zart.celery.calls import route
from zart.celery.canvas import REFUSED_OPTIONS, CanvasError, parse, refusals


def canvas_input(canvas: Any, countdown: float | timedelta | None = None, eta: datetime | None = None) -> dict:
    """`{"canvas": <the canvas as Celery's dict form, queues resolved>, "start_at": <iso or None>}`, checked."""
    if not isinstance(canvas, Signature):
        raise CanvasError(f"a canvas must be a Celery signature, chain, group or chord, not {type(canvas).__name__}")
    if countdown is not None and eta is not None:
        raise CanvasError("give countdown or eta, not both")
    tree = _serialise(canvas)
    try:
        tree = json.loads(json.dumps(tree))
    except (TypeError, ValueError) as exc:
        raise CanvasError(f"the canvas's arguments must be JSON-serialisable: {exc}") from exc
    refused = refusals(parse(tree))
    if refused:
        raise CanvasError("; ".join(refused[:20]))
    return {"canvas": tree, "start_at": _start_at(countdown, eta)}


def _start_at(countdown: float | timedelta | None, eta: datetime | None) -> str | None:
    if countdown is not None:
        delay = countdown.total_seconds() if isinstance(countdown, timedelta) else float(countdown)
        if delay < 0:
            raise CanvasError("countdown must not be negative")
        return (datetime.now(UTC) + timedelta(seconds=delay)).isoformat()
    if eta is not None:
        if not isinstance(eta, datetime) or eta.tzinfo is None:
            raise CanvasError("eta must be a timezone-aware datetime")
        return eta.isoformat()
    return None


def _serialise(sig: Any, queue: Any = None) -> dict[str, Any]:
    """`sig` in Celery's dict form, each task with the queue it is sent to.

    `queue` is the one an enclosing container's options send this node to. Celery's apply_async passes a
    container's options down over the node's own: a group's to each member, a chord's to its header and its
    body, a chain's to its first task only (callbacks keep their own)."""
    if not isinstance(sig, Signature):
        sig = signature(sig)
    options: dict[str, Any] = {
        key: [_serialise(cb) for cb in _listed(sig.options.get(key))] for key in ("link", "link_error")
    }
    # kept so that `parse` refuses them by name (dropped, a `.set(countdown=60)` task ran at once)
    options.update({key: _plain(sig.options[key]) for key in REFUSED_OPTIONS if sig.options.get(key) is not None})
    if isinstance(sig, (_chain, group, chord)):
        queue = queue if queue is not None else sig.options.get("queue")
    if isinstance(sig, chord):
        header = sig.kwargs.get("header")
        header_queue = queue if queue is not None else getattr(header, "options", {}).get("queue")
        return {
            "task": "celery.chord",
            "subtask_type": "chord",
            "kwargs": {
                "header": [_serialise(t, header_queue) for t in sig.tasks],
                "body": _serialise(sig.body, queue),
            },
            "options": options,
        }
    if isinstance(sig, (_chain, group)):
        kind = "chain" if isinstance(sig, _chain) else "group"
        tasks = [_serialise(t, queue if kind == "group" or i == 0 else None) for i, t in enumerate(sig.tasks)]
        return {"task": f"celery.{kind}", "subtask_type": kind, "kwargs": {"tasks": tasks}, "options": options}
    if sig.subtask_type:
        raise CanvasError(f"{sig.subtask_type!r} is not a canvas type zart runs (task, chain, group, chord)")
    if queue is not None:
        sig = sig.clone()
        sig.set(queue=queue)
    try:
        queue = route(sig.app, sig)
    except ValueError as exc:  # a queue name zart cannot send to: bad input, refused as the rest is
        raise CanvasError(str(exc)) from exc
    return {
        "task": sig.task,
        "args": list(sig.args),
        "kwargs": dict(sig.kwargs),
        "immutable": bool(sig.immutable),
        "subtask_type": None,
        "options": {**options, "queue": queue},
    }


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
