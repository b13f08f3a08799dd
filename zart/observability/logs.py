"""Log lines that say which execution they belong to.

While a run is in progress a context variable holds its execution id, task, run index and current step; a
logging filter copies them onto every record, whoever logs it (zart's own modules or a user's `logging` call
inside a step). Text lines get them appended as `[execution_id=… task=… run=… step=…]`;
`ZART_LOG_FORMAT=json` writes one JSON object per line instead.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

FIELDS = ("execution_id", "task", "run", "step", "attempt")
FORMATS = ("text", "json")

_current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("zart_log_fields", default=None)


@contextmanager
def fields(**values: Any) -> Iterator[None]:
    """Add these fields to every record logged inside the block (nested blocks add to the outer ones)."""
    token = _current.set({**(_current.get() or {}), **values})
    try:
        yield
    finally:
        _current.reset(token)


def current() -> dict[str, Any]:
    return dict(_current.get() or {})


class ContextFilter(logging.Filter):
    """Copies the current run's fields onto the record (None outside a run); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = _current.get() or {}
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, values.get(name))
        return True


class ContextTextFormatter(logging.Formatter):
    """The handler's own format, with the run's fields appended to lines logged inside a run."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self._inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        line = self._inner.format(record)
        present = [(name, getattr(record, name, None)) for name in FIELDS]
        tags = " ".join(f"{name}={value}" for name, value in present if value is not None)
        return f"{line} [{tags}]" if tags else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, process, the run's fields, and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def install(handlers: list[logging.Handler], log_format: str) -> None:
    """Give these handlers the filter and the chosen format (idempotent: a handler is set up once)."""
    for handler in handlers:
        if any(isinstance(f, ContextFilter) for f in handler.filters):
            continue
        handler.addFilter(ContextFilter())
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(ContextTextFormatter(handler.formatter))


def install_on_root(log_format: str) -> None:
    """For processes that configure logging themselves (the worker after Celery has, the API server)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    install(root.handlers, log_format)
