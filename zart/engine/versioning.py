"""Patching a workflow between deploys without breaking the executions already under way.

`ctx.patched("fix-tax")` is True for an execution reaching that point on the new code (and records a marker
there, so its own replays say True again), and False for one whose recorded run had already passed that point
on the old code (the marker is absent where the old code had its next step). `ctx.deprecate_patch` steps over
the marker old runs recorded once every run takes the new path, and records nothing for new runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zart.engine.clock import utcnow

if TYPE_CHECKING:
    from zart.engine.run import ClaimedRun

PATCH_KIND = "patch"


def marker_name(patch_id: str) -> str:
    if not isinstance(patch_id, str) or not patch_id or len(patch_id) > 150:
        raise ValueError("a patch id must be a string of 1 to 150 characters")
    return f"__patch:{patch_id}"


def patched(ctx: ClaimedRun, patch_id: str) -> bool:
    """Whether this execution takes the patched path; the same answer every time it is asked in a run."""
    name = marker_name(patch_id)
    decided = ctx._patches.get(name)
    if decided is not None:
        return decided
    recorded = ctx._names_by_position.get(ctx._position)
    if recorded is not None and recorded != name:
        decision = False  # this run went past here before the patch existed: keep to the old path
    else:
        position, checkpoint = ctx._enter(name, PATCH_KIND)
        if checkpoint is None:
            ctx._checkpoint(name, position, PATCH_KIND, True, 1, 0, utcnow())
        decision = True
    ctx._patches[name] = decision
    return decision


def deprecate_patch(ctx: ClaimedRun, patch_id: str) -> None:
    """Step over the marker an older run recorded here; new runs record nothing."""
    name = marker_name(patch_id)
    if name not in ctx._patches and ctx._names_by_position.get(ctx._position) == name:
        ctx._enter(name, PATCH_KIND)
    ctx._patches[name] = True
