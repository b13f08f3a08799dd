"""Opaque list cursors: the key of the last row a page showed (creation time and id) and the page's order.

A cursor page starts right after its key (a keyset seek on the list indexes), so page ten thousand costs what
page one does, and rows inserted meanwhile never shift it. The cursor is opaque to clients: its encoding may
change; only "pass `next_cursor` back as `cursor`" is promised.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from zart.errors import InvalidData

MAX_CURSOR_LENGTH = 1024
NOT_ISSUED = "cursor is not one this API returned (pass next_cursor back unchanged)"


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    execution_id: str
    order: str


def encode(cursor: Cursor) -> str:
    raw = json.dumps([cursor.created_at.isoformat(), cursor.execution_id, cursor.order], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, order: str) -> Cursor:
    """The cursor a previous page returned; anything else, or one issued for the other order, is invalid data."""
    try:
        if len(token) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        moment, execution_id, issued_for = json.loads(raw)
        created_at = datetime.fromisoformat(moment)
        if created_at.tzinfo is None or not isinstance(execution_id, str) or issued_for not in ("asc", "desc"):
            raise ValueError("malformed")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidData(NOT_ISSUED) from None
    if issued_for != order:
        raise InvalidData(f"this cursor pages in {issued_for} order; repeat order={issued_for} with it")
    return Cursor(created_at, execution_id, issued_for)


def after_last(rows: list[dict], order: str) -> str:
    """The cursor for the page after `rows` (the caller knows there is one)."""
    last = rows[-1]
    return encode(Cursor(last["created_at"], last["execution_id"], order))
