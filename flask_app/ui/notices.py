"""What the dashboard says after an action succeeded (named by `?notice=`, so no text travels in a URL)."""

from __future__ import annotations

NOTICES = {
    "cancelled": "Cancelled. Running steps stop at their next checkpoint; active children are cancelled too.",
    "event": "Event delivered; the execution is ready to continue.",
    "retried": "The dead step gets a fresh retry budget; the execution is pending again.",
    "restarted": "A new run started from the top.",
    "rerun": "A new run started: the chosen steps run again, the kept checkpoints are reused.",
    "paused": "Pause rule created.",
    "resumed": "Pause rule resumed; what it held is released.",
    "deleted": "Pause rule deleted; what it held is released.",
    "schedule-paused": "Schedule paused: it fires nothing until resumed.",
    "schedule-resumed": "Schedule resumed from its next tick (ticks of the pause are not caught up).",
    "schedule-triggered": "Schedule fired once now.",
    "schedule-declined": "Nothing fired: a run of the schedule is still active and its overlap policy declines.",
}
