"""Flask-Smorest pieces adapted to zart: an Api that documents the contract's error shape and leaves error
handling and the spec's URL to us, and a Blueprint that reads bodies as JSON whatever their Content-Type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask import Response, jsonify
from flask_smorest import Api, Blueprint

from flask_app.auth import SCOPE_EXTENSION, requires_scope
from flask_app.body import ArgumentsParser
from flask_app.schemas import Error

CONFIG_PREFIX = "ZART_"  # keeps our settings apart from a Flask-Smorest Api the host app may have


class ZartApi(Api):
    ERROR_SCHEMA = Error

    def _register_error_handlers(self) -> None:
        """flask_app.errors handles errors (per blueprint when mounted, app-wide in our own app)."""

    def _register_doc_blueprint(self) -> None:
        """flask_app.docs serves /openapi.json and /docs itself, behind the same guards as the rest."""


class ZartBlueprint(Blueprint):
    ARGUMENTS_PARSER = ArgumentsParser()

    def errors(self, responses: dict[int, str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Document error responses: status → the codes it carries and when."""

        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            for status, description in sorted(responses.items(), reverse=True):
                view = self.alt_response(status, schema=Error, description=description)(view)
            return view

        return decorate

    def requires(self, scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """The token scope a view needs: enforced by the guard, shown in OpenAPI (`x-zart-scope`, a 403)."""

        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            view = requires_scope(scope)(view)
            view = self.doc(**{SCOPE_EXTENSION: scope})(view)
            return self.alt_response(403, schema=Error, description=FORBIDDEN.format(scope=scope))(view)

        return decorate


FORBIDDEN = "`forbidden`: the token's scope does not cover this operation, which needs `{scope}`."
UNAUTHORIZED = "`unauthorized`: bearer tokens are configured and none valid was sent."
INVALID = "`invalid_data`: the request failed validation."
UNAVAILABLE = "`database_unavailable` or `service_unavailable`: try again shortly."
NOT_FOUND = "`execution_not_found`: no execution has this ID."
TOO_LARGE = "`payload_too_large`: the body exceeds the limit (ZART_MAX_BODY_BYTES, 1 MiB by default)."
# What any route behind the bearer check and the body limit may answer.
GUARDED = {401: UNAUTHORIZED, 413: TOO_LARGE, 503: UNAVAILABLE}


def respond(schema: type[ma.Schema], body: Any, status: int) -> Response:
    """A response documented by `alt_response` (Flask-Smorest dumps only the main response's schema)."""
    response = jsonify(schema().dump(body))
    response.status_code = status
    return response
