"""The integrated legacy app whose worker looks over the zart tasks it holds once a second instead of every
50 ms: a quick task is then received, run and done between two looks, as one often is at the usual pace."""

import zart.celery.integration
from tests.legacy.integrated import app

zart.celery.integration.TICK_SECONDS = 1.0

__all__ = ["app"]
