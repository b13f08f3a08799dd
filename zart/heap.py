"""Keeping the garbage collector's full passes short in long-lived processes.

A server or worker allocates most of its heap at start-up (Flask, Celery, SQLAlchemy, the user's modules)
and keeps it forever. Without this, every full collection walks that heap again: a pause of tens of
milliseconds that lands on whichever request, step or notification is in flight at the time.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect once, then move every surviving object out of the collector's reach for good.

    Called before a prefork pool forks, it also keeps the children's copies of those pages shared.
    """
    gc.collect()
    gc.freeze()
