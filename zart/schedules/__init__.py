"""Durable schedules: definitions (`spec`, `declare`, `celery_target`), tick computation (`ticks`), the
sweep's decisions (`plan`), firing (`firing`), reconciliation of code declarations (`reconcile`) and Celery
beat import (`beat`).

Only `spec`, `declare`, `celery_target` and `ticks` are pure; `firing` and `reconcile` use the store. What
the CLI and HTTP API call sits above them, in zart.schedule_service; the workflow that fires a Celery
target is zart.celery.target.
"""
