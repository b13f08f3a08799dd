"""Security headers on every zart response: nothing is sniffed, framed or allowed to run but zart's own page.

API responses are JSON and never meant to render, so their policy forbids everything; Swagger UI (/docs) sets
its own, narrower than a browser's default: its assets from this server, its one inline script by nonce.
"""

from __future__ import annotations

import secrets

from flask import Response, g

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def script_nonce() -> str:
    """A fresh nonce for the inline script of the page being rendered."""
    g.zart_script_nonce = secrets.token_urlsafe(16)
    return str(g.zart_script_nonce)


def page_policy(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def add_security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy", API_POLICY)
    return response
