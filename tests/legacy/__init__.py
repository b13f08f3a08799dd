"""A small "legacy" Celery application of the kind a team already runs: its own tasks, routed to its own queue.

`app` is the plain application (`celery -A tests.legacy.app worker -Q legacy`); `integrated` is the same with
the one line zart asks for (`celery -A tests.legacy.integrated worker -Q legacy`).
"""
