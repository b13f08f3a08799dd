"""The benchmark fleet's Celery app module: the team's app plus zart's one integration line."""

import zart.celery
from bench.remote_app import app

zart.celery.integrate(app)

__all__ = ["app"]
