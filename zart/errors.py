"""One exception tree for the library.

`ZartError` subclasses are what callers (service, CLI, HTTP) handle; each carries the contract's error
code. Control-flow signals derive from `BaseException` so that a user's `except Exception:` inside a
workflow cannot swallow them.
"""

from __future__ import annotations


class ZartError(Exception):
    """Base of every error the service reports to a caller."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ExecutionNotFound(ZartError):
    code = "execution_not_found"
    http_status = 404

    def __init__(self, execution_id: str) -> None:
        super().__init__(f"No execution found with ID {execution_id}")
        self.execution_id = execution_id


class TaskNotRegistered(ZartError):
    code = "task_not_registered"
    http_status = 422

    def __init__(self, task: str) -> None:
        super().__init__(f"Task '{task}' has no registered handler")
        self.task = task


class InvalidData(ZartError):
    code = "invalid_data"
    http_status = 422


class ExecutionAlreadyExists(ZartError):
    code = "execution_already_exists"
    http_status = 409


class NotWaitingForEvent(ZartError):
    code = "not_waiting_for_event"
    http_status = 409


class ExecutionAlreadyFinished(ZartError):
    code = "execution_already_finished"
    http_status = 409


class StoreUnavailable(ZartError):
    code = "database_unavailable"
    http_status = 503


class ConfigurationError(ZartError):
    """A setting that cannot work (a database URL that is not PostgreSQL's, say), reported before any use."""


class WorkflowDefinitionError(Exception):
    """The workflow code broke a rule of replay (duplicate step name, non-determinism); never retried."""


class NonDeterminismError(WorkflowDefinitionError):
    """A replay reached a different step than the recorded run at the same position."""

    def __init__(
        self, message: str, *, position: int | None = None, recorded: str | None = None, reached: str | None = None
    ) -> None:
        super().__init__(message)
        self.position = position
        self.recorded = recorded
        self.reached = reached


class DuplicateStepName(WorkflowDefinitionError):
    pass


class StepFailed(Exception):
    """A step exhausted its retries; carries the last error's type and message."""

    def __init__(self, step_name: str, error_type: str, error_message: str) -> None:
        super().__init__(f"step '{step_name}' failed: {error_type}: {error_message}")
        self.step_name = step_name
        self.error_type = error_type
        self.error_message = error_message


class EventTimeout(Exception):
    """`ctx.wait_for_event` reached its timeout before the event was delivered."""

    def __init__(self, event_name: str) -> None:
        super().__init__(f"timed out waiting for event '{event_name}'")
        self.event_name = event_name


class StepTimeout(Exception):
    """A step attempt ran longer than its timeout."""


class DispatchTimeout(Exception):
    """No worker took up a dispatched task within its dispatch timeout."""


class WorkerLost(Exception):
    """The workers running a task kept going silent before it finished."""


class UndecodableExecution(Exception):
    """A claimed execution's stored input or checkpoints could not be decoded; it fails rather than loops."""


class ExecutionTimeout(Exception):
    """The execution ran past the timeout its task declares."""


class UnstorableValue(TypeError):
    """A step result or an output that PostgreSQL's jsonb cannot hold (not JSON, NaN, U+0000, a lone surrogate)."""


class RecoveriesExhausted(Exception):
    """The run died with its worker too many times in a row without a new checkpoint (a poison execution)."""


class ControlSignal(BaseException):
    """Base of the signals that unwind a handler; user code must not catch them."""


class Suspend(ControlSignal):
    """The handler must wait (timer, event, back-off, children); state is already recorded."""


class MisplacedCall(ControlSignal):
    """A durable call made inside a step body (where it cannot be recorded): fails the execution, and no
    `except Exception:` in the step body can hide it."""


class Cancelled(ControlSignal):
    """The execution was cancelled; stop at this step boundary."""


class LeaseLost(ControlSignal):
    """Another worker owns the execution now (or it was cancelled): write nothing more."""


class StepNotFound(ZartError):
    code = "step_not_found"
    http_status = 404


class StepNotDead(ZartError):
    """Only a step whose retries are exhausted and whose failure failed the execution can be retried."""

    code = "step_not_dead"
    http_status = 409


class ExecutionActive(ZartError):
    """Restart and rerun of a pending, running or waiting execution need an explicit `force`."""

    code = "execution_active"
    http_status = 409


class PauseRuleNotFound(ZartError):
    code = "pause_rule_not_found"
    http_status = 404

    def __init__(self, rule_id: str) -> None:
        super().__init__(f"No pause rule found with ID {rule_id}")


class PauseRuleNotActive(ZartError):
    code = "pause_rule_not_active"
    http_status = 409


class ChildExecution(ZartError):
    """A child's input is what its parent's code passed; an operator may re-run it, never replace it."""

    code = "child_execution"
    http_status = 409


class RunChanged(ZartError):
    """The request named the run it expected to replace, and the execution has moved on (a replayed request)."""

    code = "run_changed"
    http_status = 409


class ScheduleNotFound(ZartError):
    code = "schedule_not_found"
    http_status = 404

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"No schedule found with ID {schedule_id}")


class ScheduleAlreadyExists(ZartError):
    code = "schedule_already_exists"
    http_status = 409


class ScheduleDeclaredInCode(ZartError):
    """A schedule declared in code is changed in code: its row is rewritten whenever a worker starts."""

    code = "schedule_declared_in_code"
    http_status = 409
