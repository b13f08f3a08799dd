"""The built-in workflow `zart.canvas`: a Celery canvas walked as one durable execution.

Every task of the tree is a remote step named after its position (`0.1.2 legacy.add`), so a replay finds
each checkpoint again and a completed task never runs twice. The walk goes in rounds: each round evaluates
the tree over the results known so far, dispatches every task whose input is now known (the frontier) in
parallel and waits for all of them. A chain passes each result on (prepended to the next task's arguments
unless that signature is immutable), a group collects its members' results in order, a chord calls its body
once with the list of its header's results. Nothing later than a failed task is ever dispatched: the failure
runs the `link_error` callbacks that cover the failed task (each once, as steps of their own) and fails the
execution with the task's error.

A `link` callback runs with its task's result, as in Celery, but is no part of the canvas's outcome: its
failure stops only the callback (running the error callbacks inside it) and is logged; the canvas goes on.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from celery import Signature

from zart import registry
from zart.celery.canvas import CANVAS_TASK, Node, parse, step_name
from zart.errors import StepFailed

if TYPE_CHECKING:
    from zart.engine.context import Context

log = logging.getLogger(__name__)

_PENDING = object()
_NOTHING = object()
_FAILED = object()  # a link callback's task that failed: what follows it inside the callback does not run


@registry.task(CANVAS_TASK, schema={"type": "object", "required": ["canvas"]})
def run_canvas(ctx: Context, data: dict[str, Any]) -> Any:
    start_at = data.get("start_at")
    if start_at:
        ctx.sleep_until("countdown", datetime.fromisoformat(start_at))
    return Walk(ctx, parse(data["canvas"])).run()


def signature_of(node: Node, args: tuple[Any, ...]) -> Signature:
    """The task to send: its own arguments after the ones the canvas passes in, routed as recorded."""
    options = {"queue": node.queue} if node.queue else {}
    return Signature(node.task, args=(*args, *node.args), kwargs=node.kwargs, options=options, immutable=True)


class Walk:
    def __init__(self, ctx: Context, root: Node) -> None:
        self._ctx = ctx
        self._root = root
        self._nodes = _by_path(root)
        self._results: dict[str, Any] = {}
        # nodes whose value and whose callbacks are all known: a later round takes their value without a walk
        self._settled: dict[str, Any] = {}
        self._chains: dict[str, tuple[int, Any]] = {}  # a chain's settled members: how many, and the last value
        self._frontier: list[tuple[Node, tuple[Any, ...]]] = []

    def run(self) -> Any:
        while True:
            self._frontier = []
            value = self._value(self._root, _NOTHING)
            if not self._frontier:
                return value
            handles = [self._ctx.schedule(step_name(node), signature_of(node, args)) for node, args in self._frontier]
            canvas = [(node, h) for (node, _), h in zip(self._frontier, handles, strict=True) if not _in_link(node)]
            try:
                outputs = self._ctx.wait_all([handle for _, handle in canvas])
            except StepFailed as failure:
                # a replay may see another member of the round failed too: the callbacks already recorded
                # after this round are the ones that run, whichever failure this replay saw first
                if not self._revisit_error_callbacks([node for node, _ in self._frontier]):
                    self._run_error_callbacks(failure)
                raise
            for (node, _), output in zip(canvas, outputs, strict=True):
                self._results[node.path] = output
            self._revisit_error_callbacks([node for node, _ in self._frontier])
            for (node, _), handle in zip(self._frontier, handles, strict=True):
                if _in_link(node):
                    self._results[node.path] = self._link_outcome(node, handle)

    # ------------------------------------------------------------- evaluation

    def _value(self, node: Node, previous: Any) -> Any:
        """The node's result if everything it needs is known; else _PENDING, with its ready tasks queued.

        A node that is done, callbacks and all, is settled: each round walks only the rest of the tree, so a
        replay of a long chain costs its length, not its length squared."""
        if node.path in self._settled:
            return self._settled[node.path]
        queued = len(self._frontier)
        if node.kind == "task":
            value = self._task(node, previous)
        elif node.kind == "chain":
            value = self._chain(node, previous)
            if value is _PENDING or value is _FAILED:
                return self._settle(node, value, queued)
        else:
            values = [self._value(member, previous) for member in node.members]
            value = next((v for v in (_PENDING, _FAILED) if any(m is v for m in values)), values)
            if node.kind == "chord" and value is values:
                assert node.body is not None
                value = self._value(node.body, values)
        if value is not _PENDING and value is not _FAILED:
            for callback in node.link:
                self._value(callback, value)
        return self._settle(node, value, queued)

    def _settle(self, node: Node, value: Any, queued: int) -> Any:
        """Remember `value` for good when nothing below `node` was queued this round and it is not pending."""
        if value is not _PENDING and len(self._frontier) == queued:
            self._settled[node.path] = value
        return value

    def _chain(self, node: Node, previous: Any) -> Any:
        """Each member's value passed on to the next, from the first member not settled yet."""
        start, value = self._chains.get(node.path, (0, previous))
        settled = True  # every member before this one is settled
        for index in range(start, len(node.members)):
            member = node.members[index]
            value = self._value(member, value)
            if value is _PENDING or value is _FAILED:
                return value
            settled = settled and member.path in self._settled
            if settled:
                self._chains[node.path] = (index + 1, value)
        return value

    def _task(self, node: Node, previous: Any) -> Any:
        if node.path in self._results:
            return self._results[node.path]
        passed = () if previous is _NOTHING or node.immutable else (previous,)
        self._frontier.append((node, passed))
        return _PENDING

    # ------------------------------------------------------------- failure

    def _link_outcome(self, node: Node, handle: Any) -> Any:
        """A link callback's task: its result, or _FAILED after its own error callbacks ran."""
        try:
            return self._ctx.wait_all([handle])[0]
        except StepFailed as failure:
            log.warning("a link callback of the canvas failed (the canvas goes on): %s", failure)
            callbacks = self._covering(node.path)
            if callbacks:
                self._call_error_callbacks(callbacks, failure.step_name)
            return _FAILED

    def _covering(self, path: str) -> list[Node]:
        """The `link_error` callbacks covering the task at `path`: its own, then its ancestors' outward, up to the
        `link` callback it belongs to, if any (a task's error callbacks cover the task, not its callbacks)."""
        lineage = _lineage(self._nodes, path)
        boundary = max((i for i, node in enumerate(lineage) if _is_link(node)), default=0)
        covering = [cb for node in reversed(lineage[boundary:]) for cb in node.link_error]
        return list({cb.path: cb for cb in covering}.values())

    def _run_error_callbacks(self, failure: StepFailed) -> None:
        callbacks = self._covering(failure.step_name.split(" ", 1)[0])
        if callbacks:
            self._call_error_callbacks(callbacks, failure.step_name)

    def _revisit_error_callbacks(self, round_tasks: list[Node]) -> bool:
        """A round that failed, ran its error callbacks, and was retried by an operator: its callbacks are
        entered again where they were recorded (they do not run again), so the replay stays deterministic.
        `round_tasks` is every task the round sent, link callbacks too: the error callbacks come after them all."""
        positions = [self._ctx.recorded_position(step_name(task)) for task in round_tasks]
        after = max((p for p in positions if p is not None), default=None)
        if after is None:
            return False
        recorded: dict[int, Node] = {}
        for task in round_tasks:
            if _in_link(task):  # a link callback's own error callbacks are entered when its outcome is read
                continue
            for cb in self._covering(task.path):
                position = self._ctx.recorded_position(step_name(cb))
                if position is not None and position > after:
                    recorded[position] = cb
        callbacks = []
        while after + 1 in recorded:  # only those recorded right after this round
            after += 1
            callbacks.append(recorded[after])
        if callbacks:
            self._call_error_callbacks(callbacks, "")
        return bool(callbacks)

    def _call_error_callbacks(self, callbacks: list[Node], failed_step: str) -> None:
        handles = [
            self._ctx.schedule(step_name(cb), signature_of(cb, () if cb.immutable else (failed_step,)))
            for cb in callbacks
        ]
        try:
            self._ctx.wait_all(handles)
        except StepFailed as callback_failure:  # the task's own failure is what the execution reports
            log.warning("an error callback of %s failed: %s", failed_step or "a retried task", callback_failure)


def _is_link(node: Node) -> bool:
    """Whether `node` is a `link` callback itself (its path's last part, `link0`)."""
    return node.path.rsplit(".", 1)[-1].startswith("link")


def _in_link(node: Node) -> bool:
    """Whether `node` is, or is inside, a `link` callback."""
    return any(part.startswith("link") for part in node.path.split("."))


def _by_path(root: Node) -> dict[str, Node]:
    """Every node of the tree by its path, so a task's ancestors are found without scanning their siblings
    (a scan made each round of a wide group quadratic, on every replay)."""
    nodes: dict[str, Node] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        nodes[node.path] = node
        stack.extend((*node.members, *((node.body,) if node.body else ()), *node.link, *node.link_error))
    return nodes


def _lineage(nodes: dict[str, Node], path: str) -> list[Node]:
    """The nodes from the root down to the one at `path`: a node's path is its parent's, one part longer."""
    parts = path.split(".")
    prefixes = (".".join(parts[: end + 1]) for end in range(len(parts)))
    return [nodes[prefix] for prefix in prefixes if prefix in nodes]
