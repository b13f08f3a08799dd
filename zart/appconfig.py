"""What an application tells zart in code (`zart.configure`): where the store is, and the app's own engine.

Workers import the workflow modules, so a `zart.configure(...)` there holds in every worker process too.
Anything not configured comes from the environment (`zart.config.load_settings`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from zart.config import Settings, load_settings, normalise_database_url, with_schema

_lock = threading.Lock()
_overrides: dict[str, Any] = {}
_settings: Settings | None = None
_app_engine: Any = None


def configure(
    *,
    database_url: str | None = None,
    broker_url: str | None = None,
    app_engine: Any | Callable[[], Any] | None = None,
) -> None:
    """Set where zart's store and broker are, and the app's SQLAlchemy Engine (or a factory: a callable
    returning an Engine, or a new Connection each time) that `ctx.transaction` uses; it must reach zart's own
    database, which is checked on first use."""
    global _settings, _app_engine
    with _lock:
        if database_url is not None:
            _overrides["database_url"] = normalise_database_url(database_url)
        if broker_url is not None:
            _overrides["broker_url"] = broker_url
        if app_engine is not None:
            _app_engine = app_engine
        _settings = None


def settings() -> Settings:
    """The environment's settings with whatever `configure` set on top (read once)."""
    global _settings
    with _lock:
        if _settings is None:
            base = load_settings()
            overrides = dict(_overrides)
            if "database_url" in overrides:  # ZART_SCHEMA holds for a URL given in code too
                overrides["database_url"] = with_schema(overrides["database_url"], base.schema)
            _settings = replace(base, **overrides)
        return _settings


def app_engine() -> Any:
    """The configured application Engine (or a Connection its factory made), or None (then zart's own
    engine serves `ctx.transaction`)."""
    engine = _app_engine
    if engine is not None and not hasattr(engine, "connect"):
        engine = engine()
    return engine


def reset() -> None:
    """Forget everything configured (tests)."""
    global _settings, _app_engine
    with _lock:
        _overrides.clear()
        _settings = None
        _app_engine = None
