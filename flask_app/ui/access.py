"""Who is using the dashboard and what they may do: every action asks one question, `reader.may(scope)`.

Scopes are the tokens' (flask_app.auth): `read` sees every page, `write` may also cancel and deliver
events, `admin` may also retry, restart, rerun and manage pause rules. A page hides the buttons its reader
may not use, and the server refuses the action all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_app.auth import ADMIN, READ, WRITE, Token, token_allows

__all__ = ["ADMIN", "READ", "WRITE", "Reader"]

ANONYMOUS_ACTOR = "ui"


@dataclass(frozen=True)
class Reader:
    token: Token | None  # None when the dashboard is open (no tokens configured)

    @property
    def actor(self) -> str:
        """The name recorded in the audit trail for what this reader does."""
        return ANONYMOUS_ACTOR if self.token is None else self.token.name

    def may(self, scope: str) -> bool:
        return token_allows(self.token, scope)
