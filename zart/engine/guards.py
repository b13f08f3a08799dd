"""Rules a workflow must keep that can only be checked as it runs, each with a message that says why.

Durable calls that take a position in the run (sleeps, event waits, children) cannot be made from inside a
step body: the step's own checkpoint is what records the body, so they would shift every later position and
break the next replay. Step functions must be plain functions: a coroutine or a generator is not a result.
"""

from __future__ import annotations

from typing import Any

from zart.errors import MisplacedCall, WorkflowDefinitionError
from zart.flow.definitions import missing_key
from zart.registry import plain_function_problem

# kinds of `_enter` a step body may not reach
POSITIONED_WAITS = {"sleep": "ctx.sleep", "event": "ctx.wait_for_event", "child": "ctx.schedule"}


def refuse_inside_step(in_step: bool, call: str) -> None:
    if in_step:
        raise MisplacedCall(
            f"{call} was called inside a step body; durable calls belong to the handler, between steps "
            "(a step body runs once and only its result is recorded)"
        )


def require_plain_function(fn: Any, what: str) -> None:
    problem = plain_function_problem(fn)
    if problem is not None:
        raise WorkflowDefinitionError(f"{what}: {problem}")


def refuse_taken_child_id(existing: dict[str, Any] | None, parent_id: str) -> None:
    """A child's derived id already names an execution that is not this parent's child (a user-supplied id
    of the same shape): waiting on it would wait for a stranger, so the parent fails instead."""
    if existing is not None and existing["parent_id"] != parent_id:
        raise WorkflowDefinitionError(
            f"child id {existing['execution_id']} is already taken by an execution that is not a child of "
            f"{parent_id}; choose another step name (or another id for that execution)"
        )


def require_concurrency_key(created: dict[str, Any]) -> None:
    """A child under a limit keyed on its input must carry the key, as a scheduled execution must (the service
    refuses that one); the parent fails rather than start a child its limit cannot place."""
    problem = missing_key(created)
    if problem is not None:
        raise WorkflowDefinitionError(f"child {created['id']}: its {problem}")
