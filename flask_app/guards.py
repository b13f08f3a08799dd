"""Hooks every zart blueprint carries: the error shape, the body limit and (unless public) the bearer check.

They are attached when a blueprint is defined and read the app's policy at request time, so the same
blueprints serve any number of apps (tests, or a team mounting them next to its own routes).
"""

from __future__ import annotations

from typing import TypeVar

from flask import Blueprint, request
from werkzeug.exceptions import RequestEntityTooLarge

from flask_app.auth import check_request, enforce_scope
from flask_app.errors import register_error_handlers
from flask_app.extension import current_zart
from flask_app.headers import add_security_headers

B = TypeVar("B", bound=Blueprint)


def _limit_body() -> None:
    limit = current_zart().max_body_bytes
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"The request body exceeds the limit of {limit} bytes.")


def _authenticate() -> None:
    check_request(request, current_zart().tokens)


def _authenticate_docs() -> None:
    if not current_zart().public_docs:
        _authenticate()


def protected(blueprint: B) -> B:
    """Bearer token (when configured) and its scope, then the body limit."""
    blueprint.before_request(_authenticate)
    blueprint.before_request(enforce_scope)
    blueprint.before_request(_limit_body)
    blueprint.after_request(add_security_headers)
    register_error_handlers(blueprint)
    return blueprint


def public(blueprint: B) -> B:
    """Probes: never authenticated, never read a body."""
    blueprint.after_request(add_security_headers)
    register_error_handlers(blueprint)
    return blueprint


def documentation(blueprint: B) -> B:
    """The OpenAPI document and Swagger UI: public unless the app says otherwise."""
    blueprint.before_request(_authenticate_docs)
    blueprint.after_request(add_security_headers)
    register_error_handlers(blueprint)
    return blueprint
