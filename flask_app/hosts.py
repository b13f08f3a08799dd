"""The host names a token-less server answers to, against DNS rebinding.

Without tokens, anyone who can reach the API may use it, which is meant for a server on 127.0.0.1. But a web
page on an attacker's domain can have that domain resolve to 127.0.0.1 once loaded (DNS rebinding): its
requests then reach the local API as same-origin ones, free to read every answer and to send writes the
cross-site refusal lets through. They still carry the attacker's name in `Host`, so a token-less server
answers only the names it is known by: ZART_ALLOWED_HOSTS, by default the loopback names and the address
`zart server` is bound to. With tokens the check is off (a rebinding page holds no token).
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import request

from flask_app.auth import Forbidden
from flask_app.extension import current_zart

LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
ANY = "*"
WILDCARD_BINDS = ("", "0.0.0.0", "::", "[::]", "*")


def host_name(value: str) -> str:
    """`Host` (or a configured entry) without its port, lower-case, without a trailing dot; IPv6 in brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        closing = value.find("]")
        name = value[: closing + 1] if closing != -1 else value
    elif value.count(":") == 1:
        name = value.split(":", 1)[0]
    elif ":" in value:  # a bare IPv6 address, as an entry may be written
        name = f"[{value}]"
    else:
        name = value
    return name.rstrip(".")


def allowed_names(entries: Iterable[str]) -> frozenset[str]:
    return frozenset(host_name(entry) if entry.strip() != ANY else ANY for entry in entries if entry.strip())


def default_allowed_hosts(bound: str | None = None) -> tuple[str, ...]:
    """The loopback names, and the address a server listens on unless it is every interface's."""
    if bound is None or bound.strip() in WILDCARD_BINDS:
        return LOOPBACK
    return (*LOOPBACK, bound)


def check_host() -> None:
    """Refuse (403 forbidden) a token-less request whose `Host` is not one of the allowed names. A request
    without `Host` comes from no browser, so it cannot be a rebinding page's."""
    zart = current_zart()
    if zart.tokens or zart.allowed_hosts is None or ANY in zart.allowed_hosts:
        return
    sent = request.environ.get("HTTP_HOST")
    if sent is None or host_name(sent) in zart.allowed_hosts:
        return
    shown = sent if len(sent) <= 100 else sent[:100] + "…"
    raise Forbidden(
        f"This server does not answer to the host name {shown!r} without tokens: add it to ZART_ALLOWED_HOSTS, "
        "or set ZART_API_TOKENS."
    )
