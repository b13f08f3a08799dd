"""A canvas drawn as a tree with each task's state, for `zart status --verbose` and the admin detail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zart.celery.canvas import CanvasError, Node, parse, step_name

NOT_STARTED = "not started"


def canvas_tree(data: Any, statuses: Mapping[str, str]) -> dict[str, Any] | None:
    """The canvas in `data` (the execution's input) as nested nodes with each task's step and state, for the
    admin detail; None when `data` holds no canvas."""
    canvas = data.get("canvas") if isinstance(data, dict) else None
    try:
        root = parse(canvas)
    except CanvasError:
        return None
    start_at = data.get("start_at") if isinstance(data, dict) else None
    return {
        "start_at": start_at,
        "countdown": statuses.get("countdown", NOT_STARTED) if start_at else None,
        "root": _node(root, statuses),
    }


def _node(node: Node, statuses: Mapping[str, str]) -> dict[str, Any]:
    if node.kind == "task":
        name = step_name(node)
        return {
            "kind": "task", "path": node.path, "task": node.task, "step": name, "immutable": node.immutable,
            "status": statuses.get(name, NOT_STARTED), "members": [], "body": None,
            "link": [_node(c, statuses) for c in node.link],
            "link_error": [_node(c, statuses) for c in node.link_error],
        }
    return {
        "kind": node.kind, "path": node.path, "task": None, "step": None, "immutable": False, "status": None,
        "members": [_node(m, statuses) for m in node.members],
        "body": None if node.body is None else _node(node.body, statuses),
        "link": [_node(c, statuses) for c in node.link],
        "link_error": [] if node.kind == "chord" else [_node(c, statuses) for c in node.link_error],
    }


def tree_lines(data: Any, statuses: Mapping[str, str]) -> list[str]:
    """One line per node of the canvas in `data` (the execution's input); tasks carry their step's status."""
    tree = canvas_tree(data, statuses)
    return [] if tree is None else draw(tree)


def draw(tree: Mapping[str, Any]) -> list[str]:
    """The lines of a tree made by `canvas_tree`."""
    lines = ["", "canvas:"]
    if tree["start_at"]:
        lines.append(f"  countdown until {tree['start_at']}: {tree['countdown']}")
    _draw(tree["root"], "  ", "", lines)
    return lines


def _draw(node: Mapping[str, Any], indent: str, label: str, lines: list[str]) -> None:
    if node["kind"] == "task":
        immutable = " (immutable)" if node["immutable"] else ""
        lines.append(f"{indent}{label}{node['step']}{immutable}: {node['status']}")
    else:
        lines.append(f"{indent}{label}{node['kind']} {node['path']}")
        for member in node["members"]:
            _draw(member, indent + "  ", "header: " if node["kind"] == "chord" else "", lines)
        if node["body"] is not None:
            _draw(node["body"], indent + "  ", "body: ", lines)
    for callback in node["link_error"]:  # a chord's error callbacks are drawn on its body
        _draw(callback, indent + "  ", "on error: ", lines)
    for callback in node["link"]:
        _draw(callback, indent + "  ", "link: ", lines)
