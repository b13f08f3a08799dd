"""One error shape for every failure: `{"error": {"code", "message"}}`, never an HTML page or a traceback.

Service errors carry their own code and status; Flask's and webargs' HTTP errors are mapped onto the
contract's codes (a malformed body or a failed validation is always 422 `invalid_data`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from flask import Response, jsonify
from werkzeug.exceptions import HTTPException

from zart.errors import ZartError

log = logging.getLogger(__name__)

# status -> (status actually sent, code)
_HTTP_CODES: dict[int, tuple[int, str]] = {
    400: (422, "invalid_data"),
    401: (401, "unauthorized"),
    403: (403, "forbidden"),
    404: (404, "not_found"),
    405: (405, "method_not_allowed"),
    413: (413, "payload_too_large"),
    415: (415, "unsupported_media_type"),
    422: (422, "invalid_data"),
    429: (429, "too_many_requests"),
    500: (500, "internal_error"),
    503: (503, "service_unavailable"),
}

# headers of Werkzeug's own error response worth keeping (Allow on a 405, WWW-Authenticate on a 401 ...)
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")


class ErrorHandlerTarget(Protocol):
    def register_error_handler(self, code_or_exception: Any, f: Any) -> None: ...


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _validation_message(messages: Any, path: str = "") -> list[str]:
    """Flatten webargs' nested `{location: {field: [errors]}}` into `field: error` lines."""
    if isinstance(messages, Mapping):
        lines: list[str] = []
        for key, value in messages.items():
            location_level = not path and key in ("json", "query", "view_args", "path", "headers")
            lines += _validation_message(value, path if location_level else f"{path}.{key}" if path else str(key))
        return lines
    if isinstance(messages, list | tuple):
        if all(isinstance(item, str) for item in messages):
            return [f"{path}: {' '.join(messages)}" if path else " ".join(messages)]
        lines = []
        for item in messages:
            lines += _validation_message(item, path)
        return lines
    return [f"{path}: {messages}" if path else str(messages)]


def handle_zart_error(error: ZartError) -> Response:
    headers = dict(getattr(error, "headers", None) or {})
    if error.http_status == 503:
        headers.setdefault("Retry-After", "5")
    return error_response(error.http_status, error.code, error.message, headers)


def handle_http_exception(error: HTTPException) -> Response:
    status, code = _HTTP_CODES.get(error.code or 500, (error.code or 500, _snake(error.name)))
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") or data.get("errors")
    if messages:
        message = "; ".join(line.rstrip(".") for line in _validation_message(messages)) + "."
    else:
        message = error.description or error.name
    kept = {name: value for name, value in error.get_headers() if name in _KEPT_HEADERS}
    kept.update((data.get("headers") or {}) if isinstance(data, Mapping) else {})
    return error_response(status, code, message, kept)


def handle_unexpected(error: Exception) -> Response:
    log.exception("unhandled error while serving the zart API")
    return error_response(500, "internal_error", "Internal server error.")


def register_error_handlers(target: ErrorHandlerTarget) -> None:
    """Attach the handlers to an app (covers unmatched URLs too) or to a blueprint (its own views only)."""
    target.register_error_handler(ZartError, handle_zart_error)
    target.register_error_handler(HTTPException, handle_http_exception)
    target.register_error_handler(Exception, handle_unexpected)


def _snake(name: str) -> str:
    return "_".join(name.lower().replace("-", " ").split())
