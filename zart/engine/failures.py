"""How an exception is recorded: `{"type", "message"}`, the shape every error takes in the store."""

from __future__ import annotations

from typing import Any

from zart.errors import StepFailed


def error_json(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, StepFailed):
        return {"type": "StepFailed", "message": str(exc), "step": exc.step_name, "cause": exc.error_type}
    return {"type": type(exc).__name__, "message": str(exc)}
