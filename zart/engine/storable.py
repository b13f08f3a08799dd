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
    works only the first time. A value already made of what JSON reads back is returned as it is: this runs
    for every step, and a JSON round trip costs several times the walk that tells."""
    if _read_back_as_is(value):
        return value
    return json.loads(json.dumps(value))


def _read_back_as_is(value: Any) -> bool:
    """Whether `value` holds only plain dicts with str keys, lists, str, int, float, bool and None (exact types:
    a subclass, an enum member say, reads back as its base)."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return True
    if kind is list:
        return all(_read_back_as_is(item) for item in value)
    if kind is dict:
        return all(type(key) is str and _read_back_as_is(item) for key, item in value.items())
    return False
