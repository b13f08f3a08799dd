"""Schedules: the list with next fire and last outcome, and pause, resume and trigger, through the schedule
service like the API and the CLI."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for

from flask_app.extension import current_service
from flask_app.ui import nav
from flask_app.ui.access import ADMIN
from flask_app.ui.blueprint import blp, page, reader, require
from flask_app.ui.notices import NOTICES
from zart.schedule_service import ScheduleService

nav.add_page("Schedules", "zart_ui.schedules")
PAGE_SIZE = 500


def _schedules() -> ScheduleService:
    return ScheduleService(current_service())


@blp.route("/schedules")
def schedules() -> Any:
    show_all = request.args.get("all") == "1"
    rows, total = _schedules().list(include_disabled=show_all, limit=PAGE_SIZE)
    return page(
        "schedules.html",
        schedules=rows,
        total=total,
        show_all=show_all,
        notice=NOTICES.get(request.args.get("notice", "")),
    )


@blp.route("/schedules/<schedule_id>/<any(pause, resume, trigger):action>", methods=["POST"])
def change_schedule(schedule_id: str, action: str) -> Any:
    require(ADMIN)
    service = _schedules()
    if action == "trigger":
        outcome = service.trigger(schedule_id, triggered_by=reader().actor)
        notice = "schedule-triggered" if outcome.fired else "schedule-declined"
    else:
        (service.pause if action == "pause" else service.resume)(schedule_id, triggered_by=reader().actor)
        notice = f"schedule-{action}d"
    return redirect(url_for("zart_ui.schedules", notice=notice), code=303)
