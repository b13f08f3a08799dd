"""A canvas drawn as a tree with each task's state, for `zart status --verbose` and the admin detail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zart.celery.canvas import CanvasError, Node, parse, step_name


def tree_lines(data: Any, statuses: Mapping[str, str]) -> list[str]:
    """One line per node of the canvas in `data` (the execution's input); tasks carry their step's status."""
    canvas = data.get("canvas") if isinstance(data, dict) else None
    try:
        root = parse(canvas)
    except CanvasError:
        return []
    lines = ["", "canvas:"]
    if isinstance(data, dict) and data.get("start_at"):
        lines.append(f"  countdown until {data['start_at']}: {statuses.get('countdown', 'not started')}")
    _draw(root, statuses, "  ", "", lines)
    return lines


def _draw(node: Node, statuses: Mapping[str, str], indent: str, label: str, lines: list[str]) -> None:
    if node.kind == "task":
        name = step_name(node)
        immutable = " (immutable)" if node.immutable else ""
        lines.append(f"{indent}{label}{name}{immutable}: {statuses.get(name, 'not started')}")
    else:
        lines.append(f"{indent}{label}{node.kind} {node.path}")
        for member in node.members:
            _draw(member, statuses, indent + "  ", "header: " if node.kind == "chord" else "", lines)
        if node.body is not None:
            _draw(node.body, statuses, indent + "  ", "body: ", lines)
    if node.kind != "chord":  # a chord's error callbacks are drawn on its body
        for callback in node.link_error:
            _draw(callback, statuses, indent + "  ", "on error: ", lines)
    for callback in node.link:
        _draw(callback, statuses, indent + "  ", "link: ", lines)
