"""Deciding what a sweep does with a due schedule: which ticks fire, which are skipped and why, and where the
schedule goes on from. Pure functions of the schedule's state and the clock, so every rule is unit-tested.

Catch-up: a tick is on time while its lateness (now minus its fire time, jitter included) is within the grace
(ZART_SCHEDULE_GRACE, 60 s by default); on-time ticks always fire. A tick later than that was missed (no worker
was sweeping): `all` fires each missed tick within `catch_up_window`, `latest` fires only the newest missed one,
`none` fires none of them.

Overlap, when a run of the schedule is still active: `skip` drops the tick; `buffer_one` keeps one tick (the
first) and fires it as soon as the active run ends, dropping later ones meanwhile; `allow_all` fires anyway;
`cancel_previous` cancels the active runs and fires. When several ticks fire in one sweep (a catch-up or a
backfill), each fired tick counts as active for the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from zart.schedules.spec import ScheduleSpec
from zart.schedules.ticks import ONE_MICROSECOND, jitter_offset, latest_tick, next_tick, ticks

MAX_TICKS_PER_SWEEP = 1000  # a long catch-up goes on in the next sweeps


@dataclass(frozen=True)
class Candidates:
    """Ticks a sweep considers, those it passes over, and the schedule's next tick after them."""

    due: list[datetime]
    passed_over: bool  # missed ticks the catch-up policy did not fire
    next_tick: datetime | None


@dataclass
class Decision:
    fire: list[datetime] = field(default_factory=list)
    skipped: list[tuple[datetime, str]] = field(default_factory=list)
    buffered: datetime | None = None
    cancel_active: bool = False


def fire_time(spec: ScheduleSpec, tick: datetime) -> datetime:
    return tick + timedelta(seconds=jitter_offset(spec.id, tick, spec.jitter))


def due_ticks(spec: ScheduleSpec, first: datetime | None, now: datetime, grace: float) -> Candidates:
    """The ticks from `first` (the schedule's stored next tick) whose fire time has come, after catch-up."""
    if first is None or fire_time(spec, first) > now:
        return Candidates([], False, first)
    on_time_from = now - timedelta(seconds=grace)
    due: list[datetime] = []
    passed_over = False
    if spec.catch_up == "all":
        window_start = now - timedelta(seconds=spec.catch_up_window)
        start = first
        if fire_time(spec, first) < window_start:
            passed_over = True
            in_window = next_tick(spec, window_start - ONE_MICROSECOND)
            if in_window is None:  # the schedule ended before the window: nothing left to fire
                return Candidates([], passed_over, None)
            start = in_window
    else:
        start = first
        newest_missed = latest_tick(spec, on_time_from - ONE_MICROSECOND, first)
        if newest_missed is not None and fire_time(spec, newest_missed) >= on_time_from:
            # its jitter puts it on time: the walk takes it, and the missed ticks are those before it (a jitter is
            # shorter than the gap between ticks, so none of those is on time)
            start = newest_missed
            newest_missed = latest_tick(spec, newest_missed - ONE_MICROSECOND, first)
        if newest_missed is not None:
            passed_over = spec.catch_up == "none" or newest_missed != first
            if spec.catch_up == "latest":
                due.append(newest_missed)
            if start <= newest_missed:
                following = next_tick(spec, newest_missed)
                if following is None:  # it was the last one
                    return Candidates(due, passed_over, None)
                start = following
    # the walk: every tick from `start` whose fire time has come, up to the per-sweep cap
    last = None
    for tick in ticks(spec, start - ONE_MICROSECOND, now, MAX_TICKS_PER_SWEEP - len(due)):
        if fire_time(spec, tick) > now:
            return Candidates(due, passed_over, tick)
        due.append(tick)
        last = tick
    following = next_tick(spec, last or (due[-1] if due else start - ONE_MICROSECOND))
    return Candidates(due, passed_over, following)


def decide(overlap: str, candidates: Sequence[datetime], active: bool, buffered: datetime | None) -> Decision:
    """Apply the overlap policy to the ticks due now (and a tick buffered earlier)."""
    decision = Decision(buffered=buffered)
    if overlap in ("cancel_previous", "allow_all") and buffered is not None:
        # kept by buffer_one before the policy changed: these policies keep nothing back, so it is due with the rest
        candidates, decision.buffered = [buffered, *candidates], None
    if overlap == "cancel_previous":
        if candidates:
            decision.skipped = [(tick, "superseded") for tick in candidates[:-1]]
            decision.fire = [candidates[-1]]
            decision.cancel_active = active
        return decision
    if overlap == "allow_all":
        decision.fire = list(candidates)
        return decision
    if decision.buffered is not None and not active:
        decision.fire.append(decision.buffered)
        decision.buffered = None
        active = True
    for tick in candidates:
        if not active:
            decision.fire.append(tick)
            active = True
        elif overlap == "buffer_one" and decision.buffered is None:
            decision.buffered = tick
        else:
            decision.skipped.append((tick, "overlap"))
    return decision
