"""The reading pages: overview, executions list and execution detail (each also as a live fragment)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import redirect, request, url_for

from flask_app.extension import current_service
from flask_app.ui import forms, nav
from flask_app.ui.blueprint import blp, page
from flask_app.ui.chart import throughput_svg
from flask_app.ui.memo import Memo
from flask_app.ui.notices import NOTICES
from zart.admin import AdminService
from zart.browsing import BrowseService, Filters
from zart.canvas.tree import draw
from zart.errors import ExecutionNotFound, InvalidData
from zart.limits import ACTIVE_STATUSES, EXECUTION_STATUSES, TERMINAL_STATUSES

PAGE_SIZE = 50
STRANDED_SHOWN = 20
STRANDED = Memo(10.0)  # the count scans every active execution: at most once per 10 s per database

nav.add_page("Overview", "zart_ui.overview")
nav.add_page("Executions", "zart_ui.executions")
nav.add_page("Pause rules", "zart_ui.pauses")


def fragment() -> bool:
    """The page script asks for the live part of a page only (`?part=live`)."""
    return request.args.get("part") == "live"


@blp.route("/")
def overview() -> Any:
    service = current_service()
    browse = BrowseService(service)
    counts = service.stats()
    admin = AdminService(service)
    stranded = STRANDED.get(service.settings.database_url, service.count_stranded)
    context = {
        "counts": counts,
        "active": sum(counts[s] for s in ACTIVE_STATUSES),
        "chart": throughput_svg(browse.finished_per_minute()),
        "oldest_pending": service.oldest_pending_age(),
        "rules": admin.list_pauses(),
        "stranded": stranded,
        "stranded_rows": admin.stranded(STRANDED_SHOWN) if stranded else [],
        "workers": browse.workers_seen(),
        "now": datetime.now(UTC),
    }
    return page("_overview_live.html" if fragment() else "overview.html", **context)


def _filters(args: Any) -> Filters:
    status = forms.text(args, "status")
    task = forms.text(args, "task")
    return Filters(
        status=status,
        task=task,
        created_from=forms.utc_time(args, "from", "the start of the time range"),
        created_before=forms.utc_time(args, "to", "the end of the time range"),
        id_prefix=forms.text(args, "q"),
    )


@blp.route("/executions")
def executions() -> Any:
    service = current_service()
    args = request.args
    filters = _filters(args)
    query = forms.text(args, "q")
    if query and not fragment() and "older" not in args and "newer" not in args:
        try:
            service.status(query)
        except ExecutionNotFound:
            pass  # not an exact id: list the ids it starts
        else:
            return redirect(url_for("zart_ui.execution", execution_id=query))
    older, newer = forms.text(args, "older"), forms.text(args, "newer")
    result = BrowseService(service).page(filters, older=older, newer=newer, limit=PAGE_SIZE)
    kept = {k: v for k, v in args.items() if k in ("status", "task", "from", "to", "q") and v}
    context = {
        "page": result,
        "filters": filters,
        "kept": kept,
        "first_page": older is None and newer is None,
        "statuses": EXECUTION_STATUSES,
        "tasks": [t["name"] for t in service.tasks()],
        "local_input": forms.local_input,
    }
    return page("_executions_live.html" if fragment() else "executions.html", **context)


@blp.route("/executions/<execution_id>")
def execution(execution_id: str) -> Any:
    run = request.args.get("run")
    try:
        run_index = None if run is None else int(run)
    except ValueError as exc:
        raise InvalidData("run must be a number") from exc
    detail = AdminService(current_service()).detail(execution_id, run_index)
    context = timeline_context(detail)
    context["notice"] = NOTICES.get(request.args.get("notice", ""))
    return page("_detail_live.html" if fragment() else "detail.html", **context)


def timeline_context(detail: dict[str, Any]) -> dict[str, Any]:
    """The detail plus where each step sits on the run's time axis (percent offsets for the bars)."""
    execution = detail["execution"]
    steps = detail["steps"]
    now = datetime.now(UTC)
    starts = [s["started_at"] for s in steps if s.get("started_at")]
    ends = [s.get("completed_at") or now for s in steps if s.get("started_at")]
    origin = min(starts, default=None)
    span = (max(ends) - origin).total_seconds() if origin and ends else 0.0
    bars = {}
    for step in steps:
        started = step.get("started_at")
        if origin is None or started is None or span <= 0:
            bars[step["name"]] = (0.0, 100.0 if started else 0.0)
            continue
        ended = step.get("completed_at") or now
        left = (started - origin).total_seconds() / span * 100
        width = max((ended - started).total_seconds() / span * 100, 0.5)
        bars[step["name"]] = (round(left, 2), round(min(width, 100 - left), 2))
    return {
        **detail,
        "execution": execution,
        "bars": bars,
        "terminal": execution["status"] in TERMINAL_STATUSES,
        "active": execution["status"] in ACTIVE_STATUSES,
        "current": detail["run_index"] == execution["run_index"],
        "canvas_lines": [line[2:] for line in draw(detail["canvas"])[2:]] if detail.get("canvas") else [],
    }
