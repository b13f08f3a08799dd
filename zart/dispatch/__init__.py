"""The seam between the engine and Celery: the worker task and its lifecycle (`worker`), publishing and the
questions asked of the broker (`broker`), and the sweeper that re-derives doorbells from Postgres (`sweeper`).
"""

from zart.celery.doorbell import RUN_TASK, Publisher
from zart.dispatch.broker import BrokerProbe, BrokerState
from zart.dispatch.worker import create_celery_app, record_catalog, run_worker

__all__ = ["RUN_TASK", "BrokerProbe", "BrokerState", "Publisher", "create_celery_app", "record_catalog", "run_worker"]
