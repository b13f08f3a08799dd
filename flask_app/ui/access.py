"""Who is using the dashboard and what they may do: every action asks one question, `reader.may(scope)`.

The answer is the API's own (`flask_app.auth.may`): the dashboard puts the session's token where the bearer
check puts a request's token, so pages and routes share one rule. `read` sees every page, `write` may also
cancel and deliver events, `admin` may also retry, restart, rerun and manage pause rules. A page hides the
buttons its reader may not use, and the server refuses the action all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_app import auth
from flask_app.auth import Token

READ, WRITE, ADMIN = auth.SCOPES
ANONYMOUS_ACTOR = "ui"


@dataclass(frozen=True)
class Reader:
    token: Token | None  # None when the dashboard is open (no tokens configured)

    @property
    def actor(self) -> str:
        """The name recorded in the audit trail for what this reader does."""
        return ANONYMOUS_ACTOR if self.token is None else self.token.name

    def may(self, scope: str) -> bool:
        return self.token is None or auth.allows(self.token.scope, scope)
