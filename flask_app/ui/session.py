"""The dashboard's browser session: one signed cookie carrying who signed in and the CSRF token.

The cookie is HttpOnly and SameSite=Strict, signed with a key derived from the configured tokens (so any
server process with the same tokens accepts it, and removing every token invalidates every session). It
names the token by a keyed fingerprint, never the secret itself, and is checked against the current token
list on every request: a token taken out of ZART_API_TOKENS signs its sessions out at once.
Without tokens the cookie still carries a CSRF token, so a page elsewhere cannot post to the dashboard; its key
then comes from the deployment's connection URLs, which every process of it shares (a key of each process's
own would refuse a form one gunicorn worker showed when the next one receives it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from flask_app.auth import Token

COOKIE = "zart_ui"
MAX_AGE_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    csrf: str
    fingerprint: str | None = None  # of the token signed in with, if any


def signing_key(tokens: tuple[Token, ...], deployment: str) -> bytes:
    """From the tokens; without any, from `deployment` (what every process of one deployment shares)."""
    if not tokens:
        return hashlib.sha256(b"zart-ui-open-session\0" + deployment.encode()).digest()
    digest = hashlib.sha256(b"zart-ui-session\0")
    for token in tokens:
        digest.update(hashlib.sha256(token.secret).digest())
    return digest.digest()


def fingerprint(key: bytes, token: Token) -> str:
    return hmac.new(key, b"token\0" + token.secret, hashlib.sha256).hexdigest()[:32]


class SessionCodec:
    """Turns a Session into a cookie value and back; a tampered, foreign or expired cookie reads as None."""

    def __init__(self, tokens: tuple[Token, ...], deployment: str) -> None:
        self.key = signing_key(tokens, deployment)
        self._serializer = URLSafeTimedSerializer(self.key, salt="zart-ui")

    def dumps(self, session: Session) -> str:
        return self._serializer.dumps({"c": session.csrf, "f": session.fingerprint})

    def loads(self, value: str | None) -> Session | None:
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=MAX_AGE_SECONDS)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        found = data.get("f")
        return Session(csrf=data["c"], fingerprint=found if isinstance(found, str) else None)

    def fresh(self, token: Token | None = None) -> Session:
        """A new session (a new CSRF token too: signing in never keeps a token an attacker may have planted)."""
        return Session(
            csrf=secrets.token_urlsafe(32), fingerprint=None if token is None else fingerprint(self.key, token)
        )

    def token_of(self, session: Session, tokens: tuple[Token, ...]) -> Token | None:
        """The configured token this session was signed in with, if it is still configured."""
        if session.fingerprint is None:
            return None
        matched = None
        for token in tokens:
            if hmac.compare_digest(fingerprint(self.key, token), session.fingerprint):
                matched = token
        return matched


def same_csrf(session: Session | None, presented: str | None) -> bool:
    return session is not None and bool(presented) and hmac.compare_digest(session.csrf, presented or "")
