"""A serialised Celery canvas, read and checked without importing Celery.

Celery signatures are dicts (`json.dumps(signature)` is their wire form): a task is
`{"task", "args", "kwargs", "options", "immutable", "subtask_type": None}`; `chain` and `group` keep their
members in `kwargs.tasks`; `chord` keeps `kwargs.header` (a group or a list) and `kwargs.body`. `parse` turns
that into a small tree of `Node`s the runner walks, and refuses anything else with every problem named, so a
bad canvas is refused at the door (HTTP 422 / exit 1) and nothing starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from zart.limits import CALLER_NAMED_TASKS, NAME_MAX, QUEUE_RULE, is_queue, is_reserved_task

CANVAS_TASK = CALLER_NAMED_TASKS[0]
KINDS = ("task", "chain", "group", "chord")
MAX_TASKS = 10_000
_CELERY_NAMES = {"celery.chain": "chain", "celery.group": "group", "celery.chord": "chord"}


# Celery options a canvas's tasks and containers may not carry: they would be dropped, so they are refused. A per-
# task delay would hold up its whole round of the walk, and a Celery ETA or expiry lives in Redis and in worker
# memory (the dispatch timeout takes an ETA'd message for a lost one; an expired one is discarded unreported).
REFUSED_OPTIONS = ("countdown", "eta", "expires", "priority")
_REFUSED_WHY = (
    "is not supported inside a canvas (each task is sent as soon as its input is known); delay the whole "
    "canvas durably with zart.canvas.apply(countdown=... or eta=...), or make the task a step of a workflow"
)


class CanvasError(ValueError):
    """The input is not a Celery canvas zart can run."""


@dataclass(frozen=True)
class Node:
    """One position of the tree: a task, or a chain / group / chord of nodes."""

    kind: str
    path: str
    task: str = ""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    immutable: bool = False
    queue: str | None = None
    members: tuple[Node, ...] = ()
    body: Node | None = None
    link: tuple[Node, ...] = ()
    link_error: tuple[Node, ...] = ()
    refused: tuple[str, ...] = ()  # REFUSED_OPTIONS it carries: refused when a canvas starts (see `refusals`)

    def tasks(self) -> list[Node]:
        """Every task node below (and including) this one, callbacks included, in tree order."""
        found = [self] if self.kind == "task" else []
        for child in (*self.members, *((self.body,) if self.body else ()), *self.link, *self.link_error):
            found.extend(child.tasks())
        return found


def step_name(node: Node) -> str:
    """A task's step name: its position in the tree, then the task (`0.1.2 proj.add`)."""
    return f"{node.path} {node.task}"


def parse(value: Any) -> Node:
    """The tree of a serialised canvas; raises CanvasError naming every problem."""
    problems: list[str] = []
    node = _node(value, "0", "canvas", problems)
    if not problems and len(node.tasks()) > MAX_TASKS:
        problems.append(f"canvas has more than {MAX_TASKS} tasks")
    if problems or node is None:
        raise CanvasError("; ".join(problems[:20]) or "canvas is empty")
    return node


def refusals(root: Node) -> list[str]:
    """What a canvas about to start may not carry, named; empty when fine. Checked when a canvas is started, not
    by `parse`, so a canvas already running keeps running as it was admitted."""
    found: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        what = step_name(node) if node.kind == "task" else f"the {node.kind} at {node.path}"
        found += [f"option {key!r} of {what} {_REFUSED_WHY}" for key in node.refused]
        stack.extend(reversed((*node.members, *((node.body,) if node.body else ()), *node.link, *node.link_error)))
    return found


def problems_of(data: Any) -> list[str]:
    """What is wrong with the input of the canvas task (`{"canvas": ..., "start_at": ...}`); empty when fine."""
    if not isinstance(data, dict):
        return ["data must be an object"]
    unknown = sorted(set(data) - {"canvas", "start_at"})
    problems = [f"data.{key} is not allowed" for key in unknown]
    if "canvas" not in data:
        problems.append("data.canvas is required")
    else:
        try:
            problems += refusals(parse(data["canvas"]))
        except CanvasError as exc:
            problems.append(str(exc))
    start_at = data.get("start_at")
    if start_at is not None and not _is_timestamp(start_at):
        problems.append("data.start_at must be an ISO-8601 timestamp with a timezone, or null")
    return problems


def _is_timestamp(value: Any) -> bool:
    from datetime import datetime

    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _node(value: Any, path: str, where: str, problems: list[str]) -> Node | None:
    if not isinstance(value, dict):
        problems.append(f"{where} must be a Celery signature (an object), not {type(value).__name__}")
        return None
    task = value.get("task")
    kind = value.get("subtask_type") or _CELERY_NAMES.get(task if isinstance(task, str) else "") or "task"
    if kind not in KINDS:
        problems.append(f"{where}: {kind!r} is not a canvas type zart runs (task, chain, group, chord)")
        return None
    options = value.get("options") or {}
    kwargs = value.get("kwargs") or {}
    if not isinstance(options, dict) or not isinstance(kwargs, dict):
        problems.append(f"{where}: options and kwargs must be objects")
        return None
    refused = tuple(key for key in REFUSED_OPTIONS if options.get(key) is not None)
    link = _callbacks(options.get("link"), f"{path}.link", f"{where}.link", problems)
    link_error = _callbacks(options.get("link_error"), f"{path}.error", f"{where}.link_error", problems)
    if kind == "task":
        task = _task(value, path, where, options, kwargs, link, link_error, problems)
        return None if task is None else replace(task, refused=refused)
    if kind == "chord":
        header = kwargs.get("header")
        if isinstance(header, dict):  # a group
            header = (header.get("kwargs") or {}).get("tasks")
        members = _members(header, path, f"{where}.header", problems)
        body = _node(kwargs.get("body"), f"{path}.body", f"{where}.body", problems)
        if body is None:
            return None
        # Celery's chord error callback is the body's link_error: it runs on a failure anywhere in the chord
        return Node(
            "chord", path, members=members, body=body, link=link, link_error=(*link_error, *body.link_error),
            refused=refused,
        )
    members = _members(kwargs.get("tasks"), path, where, problems)
    if kind == "chain" and not members:
        problems.append(f"{where}: a chain needs at least one task")
    return Node(kind, path, members=members, link=link, link_error=link_error, refused=refused)


def _task(
    value: dict[str, Any],
    path: str,
    where: str,
    options: dict[str, Any],
    kwargs: dict[str, Any],
    link: tuple[Node, ...],
    link_error: tuple[Node, ...],
    problems: list[str],
) -> Node | None:
    name = value.get("task")
    if not isinstance(name, str) or not name or len(f"{path} {name}") > NAME_MAX:
        problems.append(f"{where}.task must be a task name of 1 to {NAME_MAX - len(path) - 1} characters here "
                        "(its step is named after its position and the task)")
        return None
    if is_reserved_task(name):
        problems.append(f"{where}.task {name!r} is one of zart's or Celery's own tasks, which a canvas may not send")
        return None
    args = value.get("args") or []
    if not isinstance(args, (list, tuple)):
        problems.append(f"{where}.args must be an array")
        return None
    queue = options.get("queue")
    if isinstance(queue, dict):  # a kombu Queue, serialised
        queue = queue.get("name")
    if queue is not None and not is_queue(queue):
        problems.append(f"{where}.options.queue must be a queue name of {QUEUE_RULE}")
        return None
    return Node(
        "task",
        path,
        task=name,
        args=tuple(args),
        kwargs=dict(kwargs),
        immutable=bool(value.get("immutable")),
        queue=queue,
        link=link,
        link_error=link_error,
    )


def _members(value: Any, path: str, where: str, problems: list[str]) -> tuple[Node, ...]:
    if not isinstance(value, (list, tuple)):
        problems.append(f"{where}: its tasks must be an array of signatures")
        return ()
    found = [_node(item, f"{path}.{index}", f"{where}[{index}]", problems) for index, item in enumerate(value)]
    return tuple(node for node in found if node is not None)


def _callbacks(value: Any, path: str, where: str, problems: list[str]) -> tuple[Node, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else [value]
    found = [_node(item, f"{path}{index}", f"{where}[{index}]", problems) for index, item in enumerate(items)]
    if path.rsplit(".", 1)[-1].startswith("error") and any(n is not None and n.kind != "task" for n in found):
        problems.append(f"{where}: an error callback must be a single task signature")
    return tuple(node for node in found if node is not None)
