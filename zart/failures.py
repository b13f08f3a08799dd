"""How an exception is recorded: `{"type", "message"}`, the shape every error takes in the store."""

from __future__ import annotations

from typing import Any

from zart.errors import StepFailed


def error_json(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, StepFailed):
        return {"type": "StepFailed", "message": error_message(exc), "step": exc.step_name, "cause": exc.error_type}
    return {"type": type(exc).__name__, "message": error_message(exc)}


def error_message(exc: BaseException) -> str:
    """`str(exc)` as the store can hold it, or a stand-in when the exception's own `__str__` raises: recording a
    failure must not fail (the run would escape its worker task holding its lease, and be taken for a dead
    worker's)."""
    try:
        text = str(exc)
    except BaseException as problem:  # noqa: BLE001  user code: a broken __str__ may raise anything
        return f"<str() of this {type(exc).__name__} raised {type(problem).__name__}>"
    return storable_text(text)


def storable_text(text: str) -> str:
    """`text` with what PostgreSQL cannot store (U+0000, a lone surrogate) written as a backslash escape."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
