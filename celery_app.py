"""Celery entry point: `celery -A celery_app worker`. Builds the app from settings, nothing else."""

from zart.config import load_settings
from zart.dispatch import create_celery_app

app = create_celery_app(load_settings())
