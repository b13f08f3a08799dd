"""The dashboard's navigation: pages add themselves here, so a new capability's page appears in every menu.

A page module (schedules, limits, remote Celery steps …) adds its routes to the dashboard blueprint and calls
`add_page("Schedules", "zart_ui.schedules")` at import; the menu shows entries in the order they were added.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str  # the Flask endpoint of the page, e.g. "zart_ui.executions"


_ITEMS: list[NavItem] = []


def add_page(label: str, endpoint: str) -> None:
    if all(item.endpoint != endpoint for item in _ITEMS):
        _ITEMS.append(NavItem(label, endpoint))


def items() -> tuple[NavItem, ...]:
    return tuple(_ITEMS)
