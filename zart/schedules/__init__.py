"""Durable schedules: definitions (`spec`, `declare`), tick computation (`ticks`), the sweep's decisions
(`plan`), firing (`firing`), reconciliation of code declarations (`reconcile`) and Celery beat import (`beat`).

Only `spec`, `declare` and `ticks` are pure; `firing` and `reconcile` use the store.
"""
