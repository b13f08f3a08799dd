"""`zart schedules …`: create, inspect and operate durable schedules (they replace `celery beat`).

Every command parses, calls the schedule service and renders; bad input exits 1 with nothing written, an
unknown schedule exits 3.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from zart import views
from zart.cli import render
from zart.cli.connect import service_for
from zart.cli.params import JSON_ANY, JSON_OBJECT
from zart.cli.state import CliState, global_options, with_state
from zart.limits import MAX_LIST_LIMIT


class IsoDateTime(click.ParamType):
    """An ISO 8601 date-time with its offset (`2026-04-04T10:00:00Z`): a naive one is ambiguous, so refused."""

    name = "datetime"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date-time such as 2026-04-04T10:00:00Z", param, ctx)
        if moment.tzinfo is None:
            self.fail(f"{value!r} needs a timezone offset or Z", param, ctx)
        return moment


ISO_DATETIME = IsoDateTime()


def _schedules(state: CliState) -> Any:
    from zart.schedule_service import ScheduleService

    return ScheduleService(service_for(state))


@click.group()
@global_options
def schedules() -> None:
    """Durable schedules, fired by the workers (no beat process): exactly once per tick."""


def _detail_lines(view: dict[str, Any]) -> list[str]:
    timing = f"cron {view['cron']} ({view['timezone']})" if view["cron"] else f"every {view['every']} s"
    state = "disabled" if not view["enabled"] else "paused" if view["paused"] else "active"
    lines = [
        f"schedule_id: {view['schedule_id']}",
        f"task: {view['task']}",
        f"timing: {timing}",
        f"state: {state} ({view['source']})",
        f"overlap: {view['overlap']}  catch-up: {view['catch_up']}  jitter: {view['jitter']} s",
        f"last fired: {render.text(view['last_tick'])} -> {render.text(view['last_execution_id'])} "
        f"({render.text(view['last_status'])})",
    ]
    if view["last_skip"]:
        lines.append(f"last skipped: {view['last_skip']['tick']} ({view['last_skip']['reason']})")
    if view.get("upcoming"):
        lines.append("next fires: " + ", ".join(view["upcoming"]))
    return lines


def _emit_schedule(state: CliState, row: dict[str, Any], headline: str) -> None:
    view = views.schedule_view(row)
    render.emit(state, view, [headline, *_detail_lines(view)])


@schedules.command("list")
@click.option("--task", metavar="TASK_NAME", help="Only schedules of this task.")
@click.option("--all", "include_disabled", is_flag=True, help="Include disabled schedules (removed from code).")
@click.option("--limit", type=click.IntRange(1, MAX_LIST_LIMIT), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@global_options
@with_state
def list_schedules(state: CliState, task: str | None, include_disabled: bool, limit: int, offset: int) -> None:
    """List schedules with their next fire time and last outcome."""
    page, total = _schedules(state).list(task=task, include_disabled=include_disabled, limit=limit, offset=offset)
    view = views.schedule_page_view(page, total, limit, offset)
    rows = []
    for s in view["schedules"]:
        when = s["cron"] or f"every {s['every']}s"
        state_word = "disabled" if not s["enabled"] else "paused" if s["paused"] else "active"
        outcome = s["last_status"] or (s["last_skip"] or {}).get("reason")
        rows.append((s["schedule_id"], s["task"], when, state_word, s["next_fire_at"], s["last_tick"], outcome))
    lines = render.table(("SCHEDULE", "TASK", "TIMING", "STATE", "NEXT FIRE", "LAST TICK", "LAST OUTCOME"), rows)
    render.emit(state, view, [*lines, f"({len(rows)} of {total})"] if rows else ["no schedules"])


@schedules.command("show")
@click.argument("schedule_id")
@global_options
@with_state
def show(state: CliState, schedule_id: str) -> None:
    """Show a schedule, its last outcome and its next fire times."""
    view = views.schedule_view(_schedules(state).get(schedule_id))
    render.emit(state, view, _detail_lines(view))


def definition_options(fn: Any) -> Any:
    """The options that define a schedule, shared by create and update (None means: not given)."""
    options = [
        click.option("--cron", default=None, help="Cron expression: 5 fields, or 6 with seconds first."),
        click.option("--every", type=float, default=None, metavar="SECONDS", help="Fixed interval in seconds."),
        click.option("--tz", "timezone", default=None, help="IANA timezone of the cron expression (default UTC)."),
        click.option("--data", type=JSON_OBJECT, default=None, help="Input of each execution, a JSON object."),
        click.option("--start", "start_at", type=ISO_DATETIME, default=None, help="No tick before this."),
        click.option("--end", "end_at", type=ISO_DATETIME, default=None, help="No tick after this."),
        click.option("--overlap", default=None, help="skip | buffer_one | allow_all | cancel_previous."),
        click.option("--catch-up", "catch_up", default=None, help="latest | all | none: for ticks missed."),
        click.option("--catch-up-window", type=float, default=None, metavar="SECONDS", help="How far back `all` goes."),
        click.option("--jitter", type=float, default=None, metavar="SECONDS", help="Random delay up to this."),
        click.option("--description", default=None),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _given(**values: Any) -> dict[str, Any]:
    from zart.schedules.spec import seconds_of

    given = {k: v for k, v in values.items() if v is not None}
    if "every" in given:
        given["every"] = seconds_of(given["every"])
    return given


@schedules.command("create")
@click.argument("schedule_id")
@click.option("--task", required=True, metavar="TASK_NAME", help="The zart task (or, with --celery, Celery task).")
@definition_options
@click.option("--celery", is_flag=True, help="TASK_NAME is a task of your Celery fleet, sent as a remote step.")
@click.option("--args", "celery_args", type=JSON_ANY, default=None, help="A Celery task's args, a JSON array.")
@click.option("--kwargs", "celery_kwargs", type=JSON_OBJECT, default=None, help="A Celery task's kwargs.")
@click.option("--queue", default=None, help="The queue a Celery task is sent to.")
@click.option("--paused", is_flag=True, help="Create it paused.")
@global_options
@with_state
def create(
    state: CliState,
    schedule_id: str,
    task: str,
    paused: bool,
    celery: bool,
    celery_args: Any,
    celery_kwargs: dict[str, Any] | None,
    queue: str | None,
    **definition: Any,
) -> None:
    """Create schedule SCHEDULE_ID firing TASK_NAME on --cron or --every."""
    from zart.schedules.spec import ScheduleSpec, target_options

    target = {"target_kind": "celery" if celery else "zart", "queue": queue}
    if celery_args is not None:
        target["args"] = celery_args
    if celery_kwargs is not None:
        target["kwargs"] = celery_kwargs
    spec = ScheduleSpec(id=schedule_id, task=task, **target_options({**_given(**definition), **target}))
    row = _schedules(state).create(spec, paused=paused, source="cli")
    _emit_schedule(state, row, f"Created schedule: {schedule_id}")


@schedules.command("update")
@click.argument("schedule_id")
@click.option("--task", default=None, metavar="TASK_NAME")
@definition_options
@global_options
@with_state
def update(state: CliState, schedule_id: str, **definition: Any) -> None:
    """Change some fields of a schedule (a new timing starts from the next tick after now)."""
    row = _schedules(state).update(schedule_id, _given(**definition))
    _emit_schedule(state, row, f"Updated schedule: {schedule_id}")


@schedules.command("pause")
@click.argument("schedule_id")
@global_options
@with_state
def pause(state: CliState, schedule_id: str) -> None:
    """Stop firing until resumed."""
    _emit_schedule(state, _schedules(state).pause(schedule_id), f"Paused schedule: {schedule_id}")


@schedules.command("resume")
@click.argument("schedule_id")
@global_options
@with_state
def resume(state: CliState, schedule_id: str) -> None:
    """Fire again from the next tick (ticks that fell in the pause are not caught up: backfill them)."""
    _emit_schedule(state, _schedules(state).resume(schedule_id), f"Resumed schedule: {schedule_id}")


def _emit_firing(state: CliState, schedule_id: str, outcome: Any, headline: str) -> None:
    view = views.firing_view(schedule_id, outcome)
    lines = [headline]
    lines += [f"fired: {f['execution_id']} ({f['scheduled_for']})" for f in view["fired"]]
    if view["already_fired"]:
        lines.append(f"already fired: {len(view['already_fired'])}")
    lines += [f"skipped: {s['tick']} ({s['reason']})" for s in view["skipped"]]
    if view["buffered"]:
        lines.append(f"buffered: {view['buffered']} (fires when the active run ends)")
    lines += [f"cancelled: {execution_id}" for execution_id in view["cancelled"]]
    render.emit(state, view, lines)


@schedules.command("trigger")
@click.argument("schedule_id")
@global_options
@with_state
def trigger(state: CliState, schedule_id: str) -> None:
    """Fire once now, under the schedule's overlap policy."""
    outcome = _schedules(state).trigger(schedule_id)
    _emit_firing(state, schedule_id, outcome, f"Triggered schedule: {schedule_id}")


@schedules.command("backfill")
@click.argument("schedule_id")
@click.option("--from", "start", type=ISO_DATETIME, required=True, help="First instant of the window.")
@click.option("--to", "end", type=ISO_DATETIME, required=True, help="Last instant of the window (not in the future).")
@click.option("--overlap", default=None, help="Policy for this backfill (default: the schedule's).")
@global_options
@with_state
def backfill(state: CliState, schedule_id: str, start: datetime, end: datetime, overlap: str | None) -> None:
    """Fire the ticks of a past window; ticks already fired are not fired again."""
    outcome = _schedules(state).backfill(schedule_id, start, end, overlap)
    _emit_firing(state, schedule_id, outcome, f"Backfilled schedule: {schedule_id}")


@schedules.command("delete")
@click.argument("schedule_id")
@global_options
@with_state
def delete(state: CliState, schedule_id: str) -> None:
    """Delete a schedule (its executions stay)."""
    result = _schedules(state).delete(schedule_id)
    render.emit(state, result, [f"Deleted schedule: {schedule_id}"])


@schedules.command("import-beat")
@click.option("-A", "--app", "app_path", required=True, help="The Celery app, as `celery -A` takes it.")
@click.option("--dry-run", is_flag=True, help="Show what would be created; create nothing.")
@click.option("--prefix", default="", help="Put this before every schedule id (e.g. beat-).")
@global_options
@with_state
def import_beat(state: CliState, app_path: str, dry_run: bool, prefix: str) -> None:
    """Create schedules from a Celery app's beat_schedule, so beat can be stopped. Exits 1 when an entry is
    refused (the others are still imported); an entry's options a schedule cannot carry (expires, priority,
    routing_key, ...) are named in a warning and in its `dropped_options`. A schedule an earlier import of this
    app (and prefix) created whose entry is gone is disabled, as beat stops firing it."""
    import sys

    results = _schedules(state).import_beat(app_path, dry_run=dry_run, prefix=prefix)
    rows = [(r["name"], r["schedule_id"], r["task"], r["timing"], r["result"], r.get("reason", "")) for r in results]
    lines = render.table(("ENTRY", "SCHEDULE", "TASK", "TIMING", "RESULT", "REASON"), rows) if rows else []
    render.emit(state, {"app": app_path, "dry_run": dry_run, "entries": results}, lines or ["no beat_schedule entries"])
    for r in results:
        if r.get("dropped_options"):
            render.warn(
                f"entry {r['name']!r}: its options {', '.join(r['dropped_options'])} are not carried over (the "
                "schedule sends the task to its queue and nothing more); keep beat for it if they matter"
            )
    refused = [r for r in results if r["result"] == "refused"]
    if refused:
        entries = [r for r in results if r["name"] is not None]  # not the schedules of entries that are gone
        click.echo(
            f"Error: {len(refused)} of {len(entries)} entries refused; keep beat for them or rewrite them", err=True
        )
        sys.exit(1)


COMMANDS: list[click.Command] = [schedules]
