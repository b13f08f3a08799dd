"""Bearer tokens and their scopes: who a request is, and whether it may do what it asks.

When any token is configured, every protected route needs `Authorization: Bearer <token>`. Several tokens may
be valid at once so they can be rotated without downtime. Each has a name (recorded in the audit trail) and a
scope: `read` < `write` < `admin`, each allowing everything the ones before it do. `ZART_API_TOKENS` entries:

    name:scope:secret   a named token with that scope (the recommended form)
    name:secret         a named token with every right (the form before scopes existed; kept for upgrades)
    secret              an unnamed token with every right, recorded as "api"

A secret may not contain `:`; an entry that could be read two ways (a name that is a scope word, a middle part
that is not one, an empty part, a secret given twice) is refused at start-up rather than guessed at. Every
configured secret is compared in constant time, so neither the match nor its position leaks through timing.

`may(scope)` is the one answer to "may this request's token do X"; views, guards and pages ask it.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Request, current_app, g, request

from zart.errors import ConfigurationError, ZartError

SCHEME_NAME = "bearerAuth"
SCOPES = ("read", "write", "admin")  # each includes the ones before it
SCOPE_EXTENSION = "x-zart-scope"  # how each operation documents the scope it needs, in /openapi.json
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": (
        "One of the tokens in ZART_API_TOKENS (comma-separated, to allow rotation). A token's scope is `read` "
        "(status, list, wait, stats, tasks, admin detail and runs, pause rules' list), `write` (also schedule, "
        "cancel, events) or `admin` (also restart, rerun, retry-step, pause rules); each operation names the "
        f"scope it needs in `{SCOPE_EXTENSION}`. Entries: `name:scope:secret`; `name:secret` and a bare "
        "`secret` have every right."
    ),
}
ANONYMOUS = "api"
FULL_RIGHTS = "admin"
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")

F = TypeVar("F", bound=Callable[..., Any])


class Unauthorized(ZartError):
    code = "unauthorized"
    http_status = 401
    headers = {"WWW-Authenticate": 'Bearer realm="zart"'}


class Forbidden(ZartError):
    code = "forbidden"
    http_status = 403


@dataclass(frozen=True)
class Token:
    name: str
    secret: bytes
    scope: str = FULL_RIGHTS


def allows(held: str, needed: str) -> bool:
    """Whether a token of scope `held` may do what needs `needed`."""
    return held in SCOPES and needed in SCOPES and SCOPES.index(held) >= SCOPES.index(needed)


def parse_token(entry: str, position: int) -> Token:
    """One `ZART_API_TOKENS` entry; ConfigurationError (naming its position, never the secret) if ambiguous."""

    def refuse(why: str) -> ConfigurationError:
        return ConfigurationError(
            f"ZART_API_TOKENS entry {position} {why}; write it as name:scope:secret "
            f"(scope one of {', '.join(SCOPES)}; a secret may not contain ':')"
        )

    parts = entry.split(":")
    if any(not part for part in parts):
        raise refuse("has an empty part")
    if len(parts) == 1:
        return Token(ANONYMOUS, entry.encode("utf-8"))
    name = parts[0]
    if not _NAME.fullmatch(name):
        raise refuse("has a name that is not 1 to 64 letters, digits or . _ @ -")
    if len(parts) == 2:
        if name in SCOPES:
            raise refuse(f"could be a name or the scope '{name}'")
        return Token(name, parts[1].encode("utf-8"))
    if len(parts) == 3:
        if parts[1] not in SCOPES:
            raise refuse("has a middle part that is not a scope")
        return Token(name, parts[2].encode("utf-8"), parts[1])
    raise refuse("has more than three ':'-separated parts")


def encode_tokens(entries: Iterable[str]) -> tuple[Token, ...]:
    """Every configured token, parsed; a secret given twice is refused (which scope would it have?)."""
    tokens = [parse_token(entry, position) for position, entry in enumerate(entries, start=1) if entry]
    secrets = [token.secret for token in tokens]
    if len(set(secrets)) != len(secrets):
        raise ConfigurationError("ZART_API_TOKENS lists the same secret more than once")
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
    """Raise Unauthorized unless auth is off or the request carries an accepted token; remember which."""
    g.zart_token = None
    if not accepted:
        return
    presented = presented_token(request)
    if presented is None:
        raise Unauthorized("Missing bearer token: send 'Authorization: Bearer <token>'.")
    token = matching_token(presented, accepted)
    if token is None:
        raise Unauthorized("Invalid bearer token.")
    g.zart_token = token


def current_token() -> Token | None:
    """The token the current request authenticated with (None when tokens are off)."""
    return g.get("zart_token")


def current_actor() -> str:
    """Who the current request acts as: the matched token's name, else "api". Nothing in a body changes it."""
    token = current_token()
    return token.name if token is not None else ANONYMOUS


def may(needed: str) -> bool:
    """Whether the current request may do what needs scope `needed` (always, when tokens are off)."""
    token = current_token()
    return token is None or allows(token.scope, needed)


def requires_scope(needed: str) -> Callable[[F], F]:
    """Mark a view (or a MethodView method) with the scope it needs; `enforce_scope` reads the mark."""
    if needed not in SCOPES:
        raise ValueError(f"unknown scope {needed!r}")

    def mark(view: F) -> F:
        view.zart_scope = needed  # type: ignore[attr-defined]
        return view

    return mark


def needed_scope(view: Any, method: str) -> str:
    """The scope a view needs for `method`; an unmarked view needs every right (closed by default)."""
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        handler = getattr(view_class, method.lower(), None)
        if handler is None and method in ("HEAD", "OPTIONS"):
            handler = getattr(view_class, "get", None)
        view = handler
    if view is None and method == "OPTIONS":
        return SCOPES[0]
    return str(getattr(view, "zart_scope", FULL_RIGHTS))


def enforce_scope() -> None:
    """Refuse (403 forbidden) a request whose token's scope does not cover the view it asks for."""
    token = current_token()
    if token is None:
        return
    needed = needed_scope(current_app.view_functions.get(request.endpoint or ""), request.method)
    if not allows(token.scope, needed):
        raise Forbidden(f"This token's scope is '{token.scope}'; this operation needs '{needed}'.")
