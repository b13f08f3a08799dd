"""Schedules at scale: 10,000 schedules firing about 167 ticks a second, swept the way a worker's sweeper does
(the schedule duty every sweep interval, publishing to Redis), with the firing lag of every tick and what the
sweeps cost.

Half the schedules are 6-field cron expressions (`S * * * * *`, one second of the minute each, so each second
starts with a burst of ~83 ticks evaluated by cronsim), half are 60-second intervals whose phases are spread
over the minute. Nothing consumes the executions: the figure is the firing, not the running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.context import BenchContext
from bench.cpu import CpuMeter
from bench.measure import Summary
from bench.report import Row, verdict
from zart.celery.doorbell import Publisher
from zart.dispatch import create_celery_app
from zart.schedules import firing
from zart.schedules.reconcile import first_tick
from zart.schedules.spec import ScheduleSpec
from zart.store import catalog, db, schedules

DATABASE = "zart_schedules"
TASK = "bench.scheduled"
SWEEP_INTERVAL = 1.0  # the default ZART_SWEEP_INTERVAL
LAG_TARGET = 2.0


def create_schedules(url: str, count: int, lead: float) -> datetime:
    """`count` schedules (even ones cron, odd ones intervals with spread phases) whose first ticks come `lead`
    seconds from now, inserted in one pipelined statement; returns that first instant."""
    start = datetime.now(UTC) + timedelta(seconds=lead)
    rows = []
    for i in range(count):
        if i % 2:
            offset = timedelta(seconds=60 * (i // 2) / (count // 2))
            spec = ScheduleSpec(id=f"bench-{i}", task=TASK, every=60, start_at=start + offset, overlap="allow_all")
        else:
            spec = ScheduleSpec(id=f"bench-{i}", task=TASK, cron=f"{(i // 2) % 60} * * * * *", overlap="allow_all")
        tick, fire_at = first_tick(spec, start)
        rows.append(
            {
                **spec.as_row(),
                "source": "api",
                "declared_in": None,
                "paused": False,
                "next_tick": tick,
                "next_fire_at": fire_at,
            }
        )
    with db.transaction(url) as conn:
        catalog.record_tasks(conn, [{"name": TASK, "schema": None, "timeout_seconds": None}], "bench")
        schedules.insert_many(conn, rows)
    if datetime.now(UTC) >= start:
        raise RuntimeError(f"creating {count:,} schedules took longer than the {lead:.0f} s lead; raise it")
    return start


@dataclass
class Sweeps:
    committed: list[float] = field(default_factory=list)  # fire time → the sweep's commit (the execution exists)
    published: list[float] = field(default_factory=list)  # fire time → its doorbell sent
    durations: list[float] = field(default_factory=list)
    fired: int = 0


def sweep_for(url: str, publish: Callable[[list[str]], Any], seconds: float) -> Sweeps:
    """Run the schedule duty as a sweeper does for `seconds`, timing each tick to its commit and its doorbell."""
    result = Sweeps()
    committed_at: list[datetime] = []

    def timed_publish(ids: list[str]) -> Any:
        committed_at.append(datetime.now(UTC))  # fire_due publishes right after its commit
        return publish(ids)

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        committed_at.clear()
        started = time.perf_counter()
        outcome = firing.fire_due(url, timed_publish, grace=60.0)
        result.durations.append(time.perf_counter() - started)
        published = datetime.now(UTC)
        committed = committed_at[0] if committed_at else published
        result.committed += [(committed - f.fire_at).total_seconds() for f in outcome.fired]
        result.published += [(published - f.fire_at).total_seconds() for f in outcome.fired]
        result.fired += len(outcome.fired)
        time.sleep(SWEEP_INTERVAL)
    return result


def run(ctx: BenchContext) -> list[Row]:
    count, seconds = ctx.size(10_000, 1_000), ctx.size(60.0, 8.0)
    url = ctx.services.zart_database(DATABASE)
    begun = time.monotonic()
    start = create_schedules(url, count, lead=ctx.size(30.0, 10.0))
    ctx.note(f"Schedules: {count:,} created in {time.monotonic() - begun:.1f} s (bench/workloads/schedules.py).")
    publish = Publisher(create_celery_app(ctx.services.settings(DATABASE))).publish_many
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
    with CpuMeter(ctx.services.postgres.data_dir) as meter:
        measured = time.monotonic()
        sweeps = sweep_for(url, publish, seconds)
        elapsed = time.monotonic() - measured
    fired, lag, doorbell = sweeps.fired, Summary.of(sweeps.committed), Summary.of(sweeps.published)
    sweep = Summary.of(sweeps.durations)
    busy = sum(sweeps.durations) / elapsed
    ctx.note(
        "Schedules: one sweeper runs the schedule duty every second (the default sweep interval) against Redis; "
        "firing lag is from a tick's fire time to the commit that created its execution (then durable and "
        "claimable), so it includes the wait for the next sweep (up to the interval); the doorbell figure runs to "
        "the end of the sweep's publishing. CPU sums this process, Postgres and Redis."
    )
    per_second = fired / elapsed
    return [
        Row(
            "schedules",
            f"firing lag, {count:,} schedules, {per_second:,.0f} ticks/s (n={lag.n:,})",
            f"p50 {lag.p50:.2f} s · p99 {lag.p99:.2f} s",
            target=f"p99 ≤ {LAG_TARGET:.0f} s",
            verdict=verdict(lag.p99 <= LAG_TARGET),
        ),
        Row(
            "schedules",
            "fire time → doorbell published",
            f"p50 {doorbell.p50:.2f} s · p99 {doorbell.p99:.2f} s",
        ),
        Row(
            "schedules",
            f"sweep duty duration per sweep (n={sweep.n})",
            f"p50 {sweep.p50 * 1000:.0f} ms · p99 {sweep.p99 * 1000:.0f} ms",
            baseline=f"sweep interval {SWEEP_INTERVAL * 1000:.0f} ms",
            ratio=f"{busy:.0%} busy",
            target="busy ≤ 50%",
            verdict=verdict(busy <= 0.5),
        ),
        Row(
            "schedules",
            "CPU per second of sweeping (sweeper, Postgres, Redis)",
            f"{meter.seconds / elapsed * 1000:.0f} ms/s",
            baseline=f"{meter.seconds / max(fired, 1) * 1000:.2f} ms per tick",
        ),
    ]
