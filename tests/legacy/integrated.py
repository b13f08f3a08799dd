"""The legacy app with the one line a fleet worker adds to report zart's remote steps."""

import zart.celery
from tests.legacy import canvas_tasks  # noqa: F401  (the canvas tests' tasks)
from tests.legacy.app import app

zart.celery.integrate(app)

__all__ = ["app"]
