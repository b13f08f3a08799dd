"""Bearer tokens: when any are configured, every protected route needs `Authorization: Bearer <token>`.

Several tokens may be valid at once so they can be rotated without downtime. An entry may be named
(`ops-team:s3cret`) so admin actions record who acted; a plain entry acts as "api". A named entry may carry a
scope (`viewer[read]:s3cret`): `read` may look, `write` may also act on executions (cancel, events), `admin`
may do everything; an entry without a scope keeps full rights. Every configured token is compared in
constant time, so neither the match nor its position leaks through timing.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Request, g

from zart.errors import ZartError

SCHEME_NAME = "bearerAuth"
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "One of the tokens in ZART_API_TOKENS (comma-separated, to allow rotation).",
}
ANONYMOUS = "api"
READ, WRITE, ADMIN = "read", "write", "admin"
SCOPES = (READ, WRITE, ADMIN)  # each includes the ones before it
_NAMED = re.compile(r"^(?P<name>[A-Za-z0-9_.@-]{1,64})(?:\[(?P<scope>read|write|admin)\])?:(?P<secret>.+)$")


class Unauthorized(ZartError):
    code = "unauthorized"
    http_status = 401
    headers = {"WWW-Authenticate": 'Bearer realm="zart"'}


@dataclass(frozen=True)
class Token:
    name: str
    secret: bytes
    scope: str = ADMIN


def token_allows(token: Token | None, needed: str) -> bool:
    """May this token do what needs `needed` (read, write or admin)? No token means auth is off: yes."""
    if token is None:
        return True
    return SCOPES.index(token.scope) >= SCOPES.index(needed)


def encode_tokens(entries: Iterable[str]) -> tuple[Token, ...]:
    """`name:secret` entries are named; any other entry is a secret acting as "api"."""
    tokens = []
    for entry in entries:
        if not entry:
            continue
        named = _NAMED.match(entry)
        if named:
            tokens.append(Token(named["name"], named["secret"].encode("utf-8"), named["scope"] or ADMIN))
        else:
            tokens.append(Token(ANONYMOUS, entry.encode("utf-8")))
    return tuple(tokens)


def presented_token(request: Request) -> bytes | None:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip().encode("utf-8")


def matching_token(presented: bytes, accepted: tuple[Token, ...]) -> Token | None:
    """Compare against every token without stopping early."""
    matched = None
    for token in accepted:
        if hmac.compare_digest(presented, token.secret):
            matched = token
    return matched


def check_request(request: Request, accepted: tuple[Token, ...]) -> None:
    """Raise Unauthorized unless auth is off or the request carries an accepted token; remember its name."""
    g.zart_actor = ANONYMOUS
    if not accepted:
        return
    presented = presented_token(request)
    if presented is None:
        raise Unauthorized("Missing bearer token: send 'Authorization: Bearer <token>'.")
    token = matching_token(presented, accepted)
    if token is None:
        raise Unauthorized("Invalid bearer token.")
    g.zart_actor = token.name


def current_actor() -> str:
    """Who the current request acts as: the matched token's name, else "api"."""
    return str(g.get("zart_actor", ANONYMOUS))
