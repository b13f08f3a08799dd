"""The dashboard blueprint with every page registered (importing the page modules adds their routes)."""

from __future__ import annotations

from flask import Blueprint

from flask_app.ui import actions, pages, pauses, schedules, signin  # noqa: F401  (each module adds its routes)
from flask_app.ui.blueprint import blp


def blueprint() -> Blueprint:
    return blp
