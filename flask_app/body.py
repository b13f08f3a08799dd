"""Reading JSON request bodies whatever their Content-Type, and refusing what PostgreSQL's jsonb cannot store.

Clients (curl, other languages) often forget the header; the body decides. A NUL character, a lone surrogate
or a non-finite number is valid to Python's parser but rejected by jsonb, so it is refused here as
`invalid_data` rather than failing deep in the store.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Request
from webargs import core
from webargs.flaskparser import FlaskParser

from zart.errors import InvalidData

NO_BODY = core.missing


def _reject_constant(name: str) -> Any:
    raise InvalidData(f"request body is not valid JSON: {name} is not a JSON number")


def read_json(request: Request) -> Any:
    """The parsed body, or NO_BODY when the request has none."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return NO_BODY
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidData(f"request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidData("request body is nested too deeply") from exc
    problem = _unstorable(value)
    if problem:
        raise InvalidData(f"request body cannot be stored: {problem}")
    return value


def _unstorable(value: Any) -> str | None:
    """The first thing jsonb would refuse, walking iteratively (no recursion limit on deep documents)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "strings must not contain the NUL character"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "strings must not contain unpaired surrogates"
        elif isinstance(item, float) and not math.isfinite(item):
            return "numbers must be finite"
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


class ArgumentsParser(FlaskParser):
    """webargs' Flask parser, reading the body with `read_json` instead of trusting the Content-Type, and
    leaving unknown query parameters to each schema (ours refuse them) instead of always ignoring them."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}

    def _raw_load_json(self, req: Request) -> Any:
        return read_json(req)
