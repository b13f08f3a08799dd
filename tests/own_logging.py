"""A Celery app that configures logging itself, as many teams do: a `setup_logging` receiver means Celery sets up
no handler of its own (and sends no `after_setup_logger`). Workers import this module for the receiver."""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import signals


@signals.setup_logging.connect
def own_logging(**_: Any) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="OWN %(levelname)s %(name)s: %(message)s")
