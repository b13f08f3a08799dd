"""How an exception is recorded: `{"type", "message"}`, the shape every error takes in the store."""

from __future__ import annotations

from typing import Any

from zart.errors import StepFailed


def error_json(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, StepFailed):
        return {"type": "StepFailed", "message": str(exc), "step": exc.step_name, "cause": exc.error_type}
    return {"type": type(exc).__name__, "message": error_message(exc)}


def error_message(exc: BaseException) -> str:
    """`str(exc)`, or a stand-in when the exception's own `__str__` raises: recording a failure must not fail
    (the run would escape its worker task holding its lease, and be taken for a dead worker's)."""
    try:
        return str(exc)
    except BaseException as problem:  # noqa: BLE001  user code: a broken __str__ may raise anything
        return f"<str() of this {type(exc).__name__} raised {type(problem).__name__}>"
