"""Click parameter types for JSON arguments and durations, so bad input is a usage error before anything is
written, and the options that several command groups share."""

from __future__ import annotations

import json
from typing import Any

import click

_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


class JsonValue(click.ParamType):
    """A JSON document given on the command line; `objects_only` refuses arrays, strings and numbers."""

    name = "json"

    def __init__(self, objects_only: bool = False) -> None:
        self.objects_only = objects_only

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value  # a default that is already parsed
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            self.fail(f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", param, ctx)
        if self.objects_only and not isinstance(parsed, dict):
            self.fail(f"must be a JSON object, not {_JSON_KINDS.get(type(parsed), 'null')}", param, ctx)
        return parsed


JSON_OBJECT = JsonValue(objects_only=True)
JSON_ANY = JsonValue()


class Duration(click.ParamType):
    """`90s`, `15m`, `12h`, `30d`, `2w`: seconds, refused as a usage error when malformed."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from zart.errors import InvalidData
        from zart.retention.policy import parse_duration

        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except InvalidData as exc:
            self.fail(exc.message, param, ctx)


DURATION = Duration()


triggered_by = click.option(
    "--triggered-by", default="cli", show_default=True, help="Who is acting, for the audit trail."
)
