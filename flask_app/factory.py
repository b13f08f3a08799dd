"""Building the app: `create_app()` for zart's own server, `init_zart()` to mount zart into a team's app."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from flask_app import admin, catalog, docs, events, executions, limits, probes, schedules
from flask_app.api import CONFIG_PREFIX, ZartApi
from flask_app.auth import SCHEME_NAME, SECURITY_SCHEME, encode_tokens
from flask_app.errors import register_error_handlers
from flask_app.extension import EXTENSION_KEY, ZartExtension
from flask_app.headers import add_security_headers
from flask_app.hosts import LOOPBACK, allowed_names
from flask_app.metrics import init_metrics
from flask_app.tracing import init_tracing
from flask_app.ui import mount as dashboard
from flask_app.ui.session import SessionCodec
from flask_app.waiting import WaitSlots
from zart import __version__
from zart.config import Settings, load_settings
from zart.errors import ConfigurationError
from zart.service import ZartService

DESCRIPTION = (
    "Schedule durable workflow executions, deliver events and query their status. "
    'Every error has the shape `{"error": {"code", "message"}}`.'
)


def normalise_prefix(prefix: str) -> str:
    """`api/v1/` → `/api/v1`; `/` or empty → mounted at the root."""
    stripped = prefix.strip().strip("/")
    return f"/{stripped}" if stripped else ""


def init_zart(
    app: Flask,
    settings: Settings | None = None,
    *,
    api_prefix: str | None = None,
    admin_prefix: str | None = None,
    ui_prefix: str | None = None,
    max_waiters: int | None = None,
    public_docs: bool | None = None,
    service: ZartService | None = None,
    allowed_hosts: Iterable[str] | None = None,
) -> ZartExtension:
    """Mount zart's blueprints on `app`: the API and the dashboard under their prefixes, probes, metrics and
    docs at the root.

    Error handling is attached to zart's own blueprints only, so the host app keeps its handlers.
    `max_waiters` caps concurrent /wait long-polls (keep it below the WSGI server's thread count).
    `public_docs` (default: ZART_PUBLIC_DOCS) serves /openapi.json and /docs without a token when tokens are set.
    `allowed_hosts` (default: ZART_ALLOWED_HOSTS) are the only `Host` names zart's routes answer without tokens; when
    neither is given they answer any, as the host app does: its own host handling (Flask's TRUSTED_HOSTS, a proxy)
    applies to them.
    """
    if EXTENSION_KEY in app.extensions:  # a second mount would half-replace the first before failing
        raise ConfigurationError("init_zart was already called on this app: zart is mounted once per app")
    settings = settings or load_settings()
    api_at = normalise_prefix(settings.api_prefix if api_prefix is None else api_prefix)
    admin_at = normalise_prefix(settings.admin_prefix if admin_prefix is None else admin_prefix)
    ui_at = normalise_prefix(settings.ui_prefix if ui_prefix is None else ui_prefix)
    tokens = encode_tokens(settings.api_tokens)
    service = service or ZartService(settings)
    wait_slots = WaitSlots(max_waiters)

    app.config.setdefault(f"{CONFIG_PREFIX}API_TITLE", "zart")
    app.config.setdefault(f"{CONFIG_PREFIX}API_VERSION", __version__)
    app.config.setdefault(f"{CONFIG_PREFIX}OPENAPI_VERSION", "3.0.3")
    spec_options: dict[str, Any] = {"info": {"description": DESCRIPTION}}
    if tokens:
        spec_options["security"] = [{SCHEME_NAME: []}]
    api = ZartApi(app, config_prefix=CONFIG_PREFIX, spec_kwargs=spec_options)
    api.spec.components.security_scheme(SCHEME_NAME, SECURITY_SCHEME)

    extension = ZartExtension(
        service=service,
        api=api,
        tokens=tokens,
        max_body_bytes=settings.max_body_bytes,
        wait_slots=wait_slots,
        metrics_registry=init_metrics(app, service, wait_slots),
        api_prefix=api_at,
        admin_prefix=admin_at,
        ui_prefix=ui_at,
        ui_sessions=SessionCodec(tokens, f"{settings.database_url}\0{settings.broker_url}"),
        public_docs=settings.public_docs if public_docs is None else public_docs,
        allowed_hosts=_allowed(allowed_hosts, settings.allowed_hosts),
        database_timeout=settings.api_database_timeout,
    )
    app.extensions[EXTENSION_KEY] = extension
    for blueprint in (executions.blp, events.blp, catalog.blp, schedules.blp):
        api.register_blueprint(blueprint, url_prefix=api_at)
    api.register_blueprint(admin.blp, url_prefix=admin_at)
    api.register_blueprint(limits.blp, url_prefix=admin_at)
    api.register_blueprint(probes.blp)
    api.register_blueprint(probes.metrics_blp)
    app.register_blueprint(docs.blp)
    app.register_blueprint(dashboard.blueprint(), url_prefix=ui_at)
    init_tracing(app)
    return extension


def _allowed(*choices: Iterable[str] | None) -> frozenset[str] | None:
    """The first host list given, normalised; None when none is."""
    chosen = next((choice for choice in choices if choice is not None), None)
    return None if chosen is None else allowed_names(chosen)


def create_app(
    settings: Settings | None = None,
    *,
    api_prefix: str | None = None,
    admin_prefix: str | None = None,
    ui_prefix: str | None = None,
    max_waiters: int | None = None,
    public_docs: bool | None = None,
    allowed_hosts: Iterable[str] | None = None,
) -> Flask:
    """zart's own app: everything `init_zart` mounts, plus the error shape for unmatched URLs and methods.

    Without tokens it answers only the `Host` names `allowed_hosts`, else ZART_ALLOWED_HOSTS, else the loopback
    names (`zart server` adds the address it is bound to).
    """
    settings = settings or load_settings()
    app = Flask("zart", static_folder=None)
    app.url_map.merge_slashes = False  # `//` is a 404 in the error shape, not an HTML redirect page
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False  # keep the contract's field order
    init_zart(
        app,
        settings,
        api_prefix=api_prefix,
        admin_prefix=admin_prefix,
        ui_prefix=ui_prefix,
        max_waiters=max_waiters,
        public_docs=public_docs,
        allowed_hosts=_allowed(allowed_hosts, settings.allowed_hosts, LOOPBACK),
    )
    register_error_handlers(app)
    app.after_request(add_security_headers)  # unmatched URLs and methods too
    return app
