"""Bearer tokens: when any are configured, every protected route needs `Authorization: Bearer <token>`.

Several tokens may be valid at once so they can be rotated without downtime. Every configured token is
compared in constant time, so neither the match nor its position leaks through timing.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from flask import Request

from zart.errors import ZartError

SCHEME_NAME = "bearerAuth"
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "One of the tokens in ZART_API_TOKENS (comma-separated, to allow rotation).",
}


class Unauthorized(ZartError):
    code = "unauthorized"
    http_status = 401
    headers = {"WWW-Authenticate": 'Bearer realm="zart"'}


def encode_tokens(tokens: Iterable[str]) -> tuple[bytes, ...]:
    return tuple(token.encode("utf-8") for token in tokens if token)


def presented_token(request: Request) -> bytes | None:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip().encode("utf-8")


def token_is_valid(presented: bytes, accepted: tuple[bytes, ...]) -> bool:
    """Compare against every token without stopping early."""
    matched = False
    for token in accepted:
        matched |= hmac.compare_digest(presented, token)
    return matched


def check_request(request: Request, accepted: tuple[bytes, ...]) -> None:
    """Raise Unauthorized unless auth is off or the request carries an accepted token."""
    if not accepted:
        return
    presented = presented_token(request)
    if presented is None:
        raise Unauthorized("Missing bearer token: send 'Authorization: Bearer <token>'.")
    if not token_is_valid(presented, accepted):
        raise Unauthorized("Invalid bearer token.")
