"""The seam between the engine and Celery: the worker task and its lifecycle (`worker`), publishing and the
questions asked of the broker (`broker`), and the sweeper that re-derives doorbells from Postgres (`sweeper`).
"""

from zart.dispatch.broker import RUN_TASK, BrokerProbe, BrokerState, Publisher
from zart.dispatch.worker import create_celery_app, record_catalog, run_worker

__all__ = ["RUN_TASK", "BrokerProbe", "BrokerState", "Publisher", "create_celery_app", "record_catalog", "run_worker"]
