"""Tick computation: the instants a schedule is due, as aware UTC datetimes.

Cron expressions are evaluated by cronsim (a well-kept evaluator that follows Debian cron, DST quirks included)
in the schedule's timezone; intervals are fixed durations counted from `start_at` (or the Unix epoch), so
every process computes the same ticks without shared state.

Daylight saving time, for a cron expression in a zone that has it (Debian cron's rules, from cronsim):
- a 5-field expression with a fixed minute and hour (`30 2 * * *`) fires once per matching local day: a time
  skipped when the clocks go forward fires at the first minute after the gap (02:30 → 03:00 on that day); a
  time repeated when they go back fires once, at its first occurrence (summer time);
- expressions that fire every hour or more often (`*/15 * * * *`, `0 * * * *`), and 6-field ones, follow
  real elapsed time: none fires in the skipped hour, and the repeated hour fires twice, once per offset.
Intervals ignore the timezone: every 3600 seconds is every hour of elapsed time, through any transition.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from zart.schedules.spec import ScheduleSpec, zone

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


def next_tick(spec: ScheduleSpec, after: datetime) -> datetime | None:
    """The first tick strictly after `after` within the schedule's bounds; None when there is none."""
    if spec.start_at is not None and after < spec.start_at:
        after = spec.start_at - ONE_MICROSECOND
    tick = _next_interval(spec.every, spec.start_at or EPOCH, after) if spec.every else _next_cron(spec, after)
    if tick is None or (spec.end_at is not None and tick > spec.end_at):
        return None
    return tick


def ticks(spec: ScheduleSpec, after: datetime, until: datetime, limit: int) -> Iterator[datetime]:
    """Up to `limit` ticks in (after, until], in order."""
    count = 0
    tick = next_tick(spec, after)
    while tick is not None and tick <= until and count < limit:
        yield tick
        count += 1
        tick = next_tick(spec, tick)


def latest_tick(spec: ScheduleSpec, at_or_before: datetime, not_before: datetime) -> datetime | None:
    """The last tick in [not_before, at_or_before], found without walking every tick of a long stretch."""
    if spec.end_at is not None:
        at_or_before = min(at_or_before, spec.end_at)  # a schedule that has ended: its last tick
    if at_or_before < not_before:
        return None
    if spec.every:
        anchor = spec.start_at or EPOCH
        steps = math.floor((at_or_before - anchor).total_seconds() / spec.every)
        candidate = anchor + timedelta(seconds=steps * spec.every)
        candidate = candidate if candidate >= anchor else None
    else:
        candidate = _previous_cron(spec, at_or_before)
    # the reverse estimate is checked against forward iteration, which is the definition
    if candidate is None or candidate < not_before:
        candidate = None
        probe = next_tick(spec, not_before - ONE_MICROSECOND)
        if probe is None or probe > at_or_before:
            return None
        candidate = probe
    while (following := next_tick(spec, candidate)) is not None and following <= at_or_before:
        candidate = following
    if spec.end_at is not None and candidate > spec.end_at:
        return None
    return candidate


def jitter_offset(schedule_id: str, tick: datetime, jitter: float) -> float:
    """A delay in [0, jitter) derived from the schedule and tick, so every sweeper agrees on it. The tick is
    taken in UTC: the same instant read from the database (in the session's zone) or computed from a start given
    with another offset must get the same delay."""
    if jitter <= 0:
        return 0.0
    digest = hashlib.blake2b(f"{schedule_id}@{tick.astimezone(UTC).isoformat()}".encode(), digest_size=8).digest()
    return jitter * int.from_bytes(digest, "big") / 2**64


def tick_label(tick: datetime) -> str:
    """`20260329T013000Z`: a tick as it appears in execution ids."""
    return tick.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _next_interval(every: int, anchor: datetime, after: datetime) -> datetime:
    if after < anchor:
        return anchor
    steps = math.floor((after - anchor).total_seconds() / every) + 1
    tick = anchor + timedelta(seconds=steps * every)
    while tick <= after:  # float rounding on the division
        tick += timedelta(seconds=every)
    return tick


def _next_cron(spec: ScheduleSpec, after: datetime) -> datetime | None:
    from cronsim import CronSim

    assert spec.cron is not None
    tz = zone(spec.timezone)
    iterator = CronSim(spec.cron, after.astimezone(tz))
    try:
        for candidate in iterator:
            tick = candidate.astimezone(UTC)
            # a local start time inside a repeated hour loses its fold: skip what is not really after
            if tick > after:
                return tick
    except StopIteration:
        return None
    return None


def _previous_cron(spec: ScheduleSpec, at_or_before: datetime) -> datetime | None:
    """The last match at or before the instant. cronsim's reverse search yields matches strictly before its start,
    fractions of a second included: starting one microsecond later makes it inclusive (starting a whole second
    later, an instant with a fraction found the tick in the following second, too late, and the caller walked
    every tick of the stretch instead)."""
    from cronsim import CronSim

    assert spec.cron is not None
    tz = zone(spec.timezone)
    try:
        candidate = next(CronSim(spec.cron, (at_or_before + ONE_MICROSECOND).astimezone(tz), reverse=True))
    except StopIteration:
        return None
    tick = candidate.astimezone(UTC)
    return tick if tick <= at_or_before else None
