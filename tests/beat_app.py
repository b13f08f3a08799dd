"""A Celery project as a team runs it with `celery beat`: the import-beat tests read its beat_schedule."""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from celery.schedules import crontab, solar

app = Celery("beatproj", broker="memory://")
app.conf.timezone = "Europe/Berlin"
app.conf.task_routes = {"beatproj.*": {"queue": "beatproj"}}
app.conf.beat_schedule = {
    "nightly report": {"task": "t.scheduled", "schedule": crontab(minute=30, hour=2), "kwargs": {"seconds": 0}},
    "weekday-mornings": {
        "task": "t.scheduled",
        "schedule": crontab(minute="*/15", hour="9-17", day_of_week="mon-fri"),
    },
    "every-two-seconds": {"task": "t.scheduled", "schedule": 2.0},
    "every-five-minutes": {"task": "t.scheduled", "schedule": timedelta(minutes=5)},
    "sunrise": {"task": "t.scheduled", "schedule": solar("sunrise", 52.52, 13.40)},
    "half-second": {"task": "t.scheduled", "schedule": 0.5},
    # a task of this app: a Celery target (yearly, so it never fires while the tests run)
    "cleanup": {"task": "beatproj.cleanup", "schedule": crontab(minute=0, hour=4, day_of_month=1, month_of_year=1)},
    "not-a-task": {"task": "beatproj.no-such-task", "schedule": 60.0},
}


@app.task(name="beatproj.cleanup")
def cleanup() -> str:
    return "clean"
