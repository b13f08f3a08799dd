"""The check every value passes before it is checkpointed, shared by the context and the runner."""

from __future__ import annotations

import json
from typing import Any

from zart.errors import UnstorableValue
from zart.schema import storage_problem


def ensure_storable(value: Any, what: str) -> None:
    """Fail early, and clearly, on a value the store could not checkpoint (rather than with a driver error)."""
    problem = storage_problem(value)
    if problem is not None:
        raise UnstorableValue(f"{what} cannot be stored: {problem}")


def as_replayed(value: Any) -> Any:
    """`value` as every replay will read it back from its JSON checkpoint (a tuple becomes a list, a dict's
    int keys become strings), so the run that checkpoints it sees what later runs see, not a value that
    works only the first time."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.loads(json.dumps(value))
