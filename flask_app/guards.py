"""Hooks every zart blueprint carries: the error shape, the body limit and (unless public) the bearer check.

They are attached when a blueprint is defined and read the app's policy at request time, so the same
blueprints serve any number of apps (tests, or a team mounting them next to its own routes).
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, Request, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from flask_app.auth import Forbidden, check_request, enforce_scope, presented_token
from flask_app.errors import register_error_handlers
from flask_app.extension import current_zart
from flask_app.headers import add_security_headers
from flask_app.hosts import check_host
from zart.store import deadline

B = TypeVar("B", bound=Blueprint)


def _limit_body() -> None:
    limit = current_zart().max_body_bytes
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"The request body exceeds the limit of {limit} bytes.")


def _authenticate() -> None:
    check_request(request, current_zart().tokens)


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def from_another_site(request: Request) -> bool:
    """Whether a browser sent this request for a page of another site: its own Sec-Fetch-Site header, else an
    Origin naming another host. A client that is not a browser (curl, a service) sends neither."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc != request.host


def _refuse_cross_site() -> None:
    """A browser sends a form's or a `text/plain` POST to any site without asking it first, and the API reads a
    body whatever its Content-Type: so a page elsewhere could act through the browser of anyone who reaches an
    API without tokens (schedule, cancel, restart, create schedules). A request carrying a bearer token is not at
    risk (no browser adds one by itself), so only one without is refused."""
    if request.method in SAFE_METHODS or presented_token(request) is not None:
        return
    if from_another_site(request):
        raise Forbidden("A browser's request from another site may change nothing here; send a bearer token.")


def bound_database_waits() -> None:
    """A database that stopped answering (frozen, partitioned) fails the request with a 503 after
    ZART_API_DATABASE_TIMEOUT instead of holding its thread forever: psycopg has no read timeout of its own."""
    seconds = current_zart().database_timeout
    if seconds > 0:
        g.zart_database_deadline = deadline.enter(seconds)


def end_database_bound(_error: BaseException | None = None) -> None:
    token = g.pop("zart_database_deadline", None)
    if token is not None:
        deadline.leave(token)


def _bounded(blueprint: B) -> B:
    blueprint.before_request(bound_database_waits)
    blueprint.teardown_request(end_database_bound)
    return blueprint


def _authenticate_docs() -> None:
    if not current_zart().public_docs:
        _authenticate()


def protected(blueprint: B) -> B:
    """An allowed host or a bearer token (when configured) and its scope, no change from another site's page, then
    the body limit."""
    _bounded(blueprint)
    blueprint.before_request(check_host)
    blueprint.before_request(_authenticate)
    blueprint.before_request(_refuse_cross_site)
    blueprint.before_request(enforce_scope)
    blueprint.before_request(_limit_body)
    blueprint.after_request(add_security_headers)
    register_error_handlers(blueprint)
    return blueprint


def public(blueprint: B) -> B:
    """Probes: never authenticated, never read a body."""
    _bounded(blueprint)
    blueprint.after_request(add_security_headers)
    register_error_handlers(blueprint)
    return blueprint


def documentation(blueprint: B) -> B:
    """The OpenAPI document and Swagger UI: public unless the app says otherwise (an allowed host, without tokens)."""
    blueprint.before_request(check_host)
    blueprint.before_request(_authenticate_docs)
    blueprint.after_request(add_security_headers)
    register_error_handlers(blueprint)
    return blueprint
