"""One claimed run of an execution: claim, replay the handler in-process, then finish, park or retry."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from zart.engine.context import CHILD_FUNCTION_TASK, Context, Publish, current_context, ensure_json, utcnow
from zart.engine.failures import error_json
from zart.engine.lease import LeaseKeeper
from zart.errors import (
    ExecutionTimeout,
    LeaseLost,
    StoreUnavailable,
    Suspend,
    WorkflowDefinitionError,
)
from zart.registry import Registry, Task, default_registry, resolve_function
from zart.retry import RetryPolicy
from zart.store import db, executions, steps

log = logging.getLogger(__name__)

UNKNOWN_TASK_BACKOFF = 5.0


@dataclass(frozen=True)
class RunnerConfig:
    database_url: str
    lease_seconds: float
    short_wait_hint: float
    worker_name: str


def run_execution(
    execution_id: str, config: RunnerConfig, publish: Publish, registry: Registry = default_registry
) -> str:
    """Run one execution as far as it can go. Returns what happened (for logs and tests)."""
    token = uuid.uuid4().hex
    with db.autocommit(config.database_url) as conn:
        claimed = executions.claim(conn, execution_id, token, config.worker_name, config.lease_seconds)
    if claimed is None:
        return "skipped"
    task = _resolve_task(claimed["task"], registry)
    if task is None:
        log.warning("task %r is not registered in this worker; releasing %s", claimed["task"], execution_id)
        _release(config, execution_id, token, claimed["attempt"], UNKNOWN_TASK_BACKOFF)
        return "unknown-task"
    if claimed["past_deadline"]:
        return _finish_failed(config, claimed, token, ExecutionTimeout("execution exceeded its timeout"), publish)

    keeper = LeaseKeeper(
        config.database_url, execution_id, token, claimed["run_index"], claimed["attempt"], config.lease_seconds
    )
    context = Context(
        database_url=config.database_url,
        claimed=claimed,
        token=token,
        lease_seconds=config.lease_seconds,
        keeper=keeper,
        publish=publish,
    )
    keeper.start()
    reset = current_context.set(context)
    try:
        output = task.handler(context, claimed["input"])
        ensure_json(output)
    except Suspend:
        _publish_all(publish, context.to_publish)
        _send_wake_hint(config, publish, execution_id, context)
        return "suspended"
    except LeaseLost:
        return "lease-lost"
    except (WorkflowDefinitionError, ExecutionTimeout) as exc:
        return _finish_failed(config, claimed, token, exc, publish)
    except Exception as exc:
        return _retry_or_fail(config, claimed, token, task.retry, exc, publish)
    finally:
        current_context.reset(reset)
        keeper.stop()
    return _finish(config, claimed, token, "completed", output, None, publish)


def _resolve_task(name: str, registry: Registry) -> Task | None:
    if name == CHILD_FUNCTION_TASK:
        return Task(name=name, handler=_run_child_function, retry=RetryPolicy.none(), timeout=None)
    return registry.get(name)


def _run_child_function(ctx: Context, data: dict[str, Any]) -> Any:
    """The handler of a function child: the function runs as one step named after the parent's step."""
    retry = RetryPolicy(**data["retry"])
    fn = resolve_function(data["function"])
    name = ctx.execution_id.rsplit("~", 1)[-1]
    return ctx.step(name, fn, *data["args"], retry=retry, **data["kwargs"])


def _retry_or_fail(
    config: RunnerConfig,
    claimed: dict[str, Any],
    token: str,
    policy: RetryPolicy,
    exc: Exception,
    publish: Publish,
) -> str:
    attempt = claimed["attempt"]
    if not policy.allows_retry(attempt):
        return _finish_failed(config, claimed, token, exc, publish)
    delay = policy.delay_before_retry(attempt)
    _release(config, claimed["id"], token, attempt + 1, delay)
    publish(claimed["id"], delay if delay <= config.short_wait_hint else None)
    return "retrying"


def _release(config: RunnerConfig, execution_id: str, token: str, attempt: int, delay: float) -> None:
    """Give the execution back as pending, not before `delay` seconds (execution-level back-off)."""
    with db.autocommit(config.database_url) as conn:
        executions.park(
            conn,
            execution_id,
            token,
            wake_at=utcnow() + timedelta(seconds=delay),
            waiting_for={"kind": "retry"} if delay > 0 else None,
            attempt=attempt,
            status="waiting" if delay > 0 else "pending",
        )


def _finish_failed(
    config: RunnerConfig, claimed: dict[str, Any], token: str, exc: BaseException, publish: Publish
) -> str:
    return _finish(config, claimed, token, "failed", None, error_json(exc), publish)


def _finish(
    config: RunnerConfig,
    claimed: dict[str, Any],
    token: str,
    status: str,
    output: Any,
    error: dict[str, Any] | None,
    publish: Publish,
) -> str:
    """Terminal write, fenced on the lease; a child also reports to its parent in the same transaction."""
    wake_parent = None
    try:
        with db.transaction(config.database_url) as conn:
            if claimed["parent_id"] is not None:
                executions.lock_parent(conn, claimed["parent_id"])
            done = executions.finish(conn, claimed["id"], status=status, token=token, output=output, error=error)
            if done is None:
                return "lease-lost"
            if done["parent_id"] is not None:
                steps.record_child_result(
                    conn,
                    parent_id=done["parent_id"],
                    run_index=done["parent_run"],
                    name=done["parent_step"],
                    status=status if status in ("completed", "failed") else "failed",
                    output=output,
                    error=error,
                )
                if executions.wake_parent_if_children_done(conn, done["parent_id"], done["parent_run"]):
                    wake_parent = done["parent_id"]
    except StoreUnavailable:
        log.warning("could not record the end of %s; it will be recovered", claimed["id"], exc_info=True)
        return "store-unavailable"
    if wake_parent is not None:
        publish(wake_parent, None)
    return status


def finish_without_lease(database_url: str, execution_id: str, status: str, error: dict[str, Any]) -> bool:
    """Fail or cancel an execution no worker holds (sweeper: overdue)."""
    with db.transaction(database_url) as conn:
        return executions.finish(conn, execution_id, status=status, token=None, error=error) is not None


def _send_wake_hint(config: RunnerConfig, publish: Publish, execution_id: str, context: Context) -> None:
    suspension = context.suspension
    if suspension is None or suspension.wake_at is None:
        return
    delay = max((suspension.wake_at - utcnow()).total_seconds(), 0.0)
    if delay <= config.short_wait_hint:
        publish(execution_id, delay)


def _publish_all(publish: Publish, execution_ids: list[str]) -> None:
    for execution_id in execution_ids:
        publish(execution_id, None)
