"""The legacy app as an older fleet runs it: pickle as its default serializer, and no integration line."""

import os

from tests.legacy.app import app

app.conf.update(task_serializer="pickle", result_serializer="pickle", accept_content=["json", "pickle"])
os.environ.setdefault("C_FORCE_ROOT", "1")  # the tests run as root, and Celery refuses pickle as root otherwise

__all__ = ["app"]
