"""Reading the dashboard's form fields: JSON text, UTC times, names. Bad input raises InvalidData."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from zart.errors import InvalidData

NO_VALUE = object()


def text(form: Any, name: str) -> str | None:
    """A trimmed field, or None when it is absent or blank."""
    value = (form.get(name) or "").strip()
    return value or None


def json_value(form: Any, name: str, what: str) -> Any:
    """The field parsed as JSON; NO_VALUE when blank."""
    raw = (form.get(name) or "").strip()
    if not raw:
        return NO_VALUE
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidData(f"{what} is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # deeper than the parser goes (the API's bodies are refused the same way)
        raise InvalidData(f"{what} is nested too deeply") from exc


def json_object(form: Any, name: str, what: str) -> dict[str, Any] | None:
    value = json_value(form, name, what)
    if value is NO_VALUE:
        return None
    if not isinstance(value, dict):
        raise InvalidData(f"{what} must be a JSON object")
    return value


def utc_time(form: Any, name: str, what: str) -> datetime | None:
    """A `datetime-local` value (or ISO 8601 text), as UTC; without an offset it is read as UTC.

    Turned to UTC here, so a time whose offset takes it past year 1 or 9999 is refused as input rather than
    failing when the page writes it back into the form."""
    raw = text(form, name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidData(f"{what} must be a date and time such as 2026-04-04T10:23") from exc
    try:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError as exc:
        raise InvalidData(f"{what} is out of range once turned to UTC") from exc


def local_input(moment: datetime | None) -> str:
    """A UTC time as a `datetime-local` input's value."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def run_index(form: Any) -> int | None:
    """The run a confirmation page was shown for (`run`): the action is refused if another run began since."""
    raw = text(form, "run")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):  # isdigit alone takes "²", which int() refuses
        raise InvalidData("run must be a run index")
    return int(raw)


def checked(form: Any, name: str) -> bool:
    return form.get(name) in ("1", "on", "true", "yes")
