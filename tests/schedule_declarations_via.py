"""Imports tests.schedule_declarations, as a package's `tasks` module imports the modules that declare its tasks:
a worker given only this module in ZART_IMPORTS still runs (and reconciles) the declarations made there."""

from __future__ import annotations

import tests.schedule_declarations  # noqa: F401
