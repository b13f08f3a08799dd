"""A small JSON-Schema subset a task may declare for its input (`@zart.task(..., schema=...)`).

Supported: `type` (object, array, string, integer, number, boolean, null, or a list of them), `required`,
`properties`, `items`, `enum`, `additionalProperties: false`. Enough to refuse malformed input at the door
without importing user code in the API process.
"""

from __future__ import annotations

import json
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def validation_errors(schema: dict[str, Any] | None, value: Any, path: str = "data") -> list[str]:
    """Every way `value` breaks `schema`; empty when it conforms."""
    if not schema:
        return []
    errors: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_is_type(value, name) for name in names):
            return [f"{path} must be of type {' or '.join(names)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path} must be one of {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}.{key} is required")
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                errors.extend(validation_errors(properties[key], item, f"{path}.{key}"))
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}.{key} is not allowed")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            errors.extend(validation_errors(schema["items"], item, f"{path}[{index}]"))
    return errors


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES.get(name, (object,)))


MAX_JSON_DEPTH = 64  # arrays and objects nested deeper than this are refused wherever input enters


def nesting_depth(value: Any, stop_above: int = MAX_JSON_DEPTH) -> int:
    """How deeply arrays and objects nest in `value` (a scalar is 0), counted without recursion; counting
    stops once it passes `stop_above`, so a hostile document costs no more than a legal one."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > stop_above:
            return deepest
        pending.extend((child, depth) for child in children)
    return deepest


def storage_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why `value` may not be stored: nested deeper than `max_depth`, or something PostgreSQL's jsonb
    refuses (NaN/Infinity, U+0000, a lone surrogate); None when it may."""
    if nesting_depth(value, max_depth) > max_depth:
        return f"arrays and objects may be nested at most {max_depth} deep"
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except ValueError as exc:  # NaN/Infinity, or an int past Python's limit on digits converted to text
        return "NaN and Infinity are not JSON" if "float" in str(exc) else f"not JSON: {exc}"
    except TypeError as exc:
        return f"not JSON: {exc}"
    if "\\u0000" in text or "\x00" in text:
        return "strings may not contain U+0000"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "strings may not contain unpaired surrogates"
    return None
