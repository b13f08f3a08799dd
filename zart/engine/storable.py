"""The check every value passes before it is checkpointed, shared by the context and the runner."""

from __future__ import annotations

from typing import Any

from zart.errors import UnstorableValue
from zart.schema import storage_problem


def ensure_storable(value: Any, what: str) -> None:
    """Fail early, and clearly, on a value the store could not checkpoint (rather than with a driver error)."""
    problem = storage_problem(value)
    if problem is not None:
        raise UnstorableValue(f"{what} cannot be stored: {problem}")
