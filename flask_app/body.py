"""Reading JSON request bodies whatever their Content-Type, and refusing what PostgreSQL's jsonb cannot store.

Clients (curl, other languages) often forget the header; the body decides. A NUL character, a lone surrogate
or a non-finite number is valid to Python's parser but rejected by jsonb, so it is refused here as
`invalid_data` rather than failing deep in the store.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Request
from webargs import core
from webargs.flaskparser import FlaskParser

from zart.errors import InvalidData
from zart.schema import MAX_JSON_DEPTH, storage_problem

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
    # the body wraps the input it carries (`{"data": …}`) in at most two levels of its own
    problem = storage_problem(value, MAX_JSON_DEPTH + 2)
    if problem:
        raise InvalidData(f"request body cannot be stored: {problem}")
    return value


class ArgumentsParser(FlaskParser):
    """webargs' Flask parser, reading the body with `read_json` instead of trusting the Content-Type,
    leaving unknown query parameters to each schema (ours refuse them) instead of always ignoring them, and
    refusing a query parameter given twice."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}

    def _raw_load_json(self, req: Request) -> Any:
        return read_json(req)

    def load_querystring(self, req: Request, schema: Any) -> Any:
        """Refuse a parameter given twice: every one of ours takes a single value, and webargs would use the
        first and drop the rest (`status=running&status=failed` listing the running ones only)."""
        repeated = sorted(key for key, values in req.args.lists() if len(values) > 1)
        if repeated:
            raise InvalidData(f"query parameter given more than once: {', '.join(repeated)}")
        return super().load_querystring(req, schema)
