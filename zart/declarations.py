"""Which of a worker's declarations in code are the newest: shared by the schedules it reconciles and by the task
catalog and limits it records when it starts.

Each declaring unit (a module's schedules; a module's tasks and limits) is recorded, when first seen, with a
fingerprint (ZART_CODE_VERSION, the module's source and what it declares) and a generation from one counter in
Postgres. A worker writes a unit's declarations only when its set is new or is the latest recorded: in a rolling
deploy an old worker that restarts after a new one presents a set seen before and superseded, and leaves what the
newer code declared. Callers hold `store.serialise_reconciliation` for the whole transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from typing import Any

from sqlalchemy import Connection

from zart.store import schedules as store

log = logging.getLogger(__name__)


def module_source(name: str) -> bytes:
    """The source of an imported module (empty when it has no readable file): two releases whose declarations
    of a module are alike but whose code differs still count as two sets."""
    path = getattr(sys.modules.get(name), "__file__", None)
    if not path:
        return b""
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return b""


def fingerprint(declarations: Any, source: bytes, code_version: str | None, kind: str = "schedules") -> str:
    """What identifies one release's declarations of one kind in a module (`declarations` as JSON-able data)."""
    payload = {
        "code_version": code_version or "",
        "source": hashlib.sha256(source).hexdigest(),
        kind: declarations,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def latest_sets(
    conn: Connection, found: dict[str, str], code_version: str | None
) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
    """Record each unit's set (unit → fingerprint) if new; return the units whose set is the latest (with its
    generation) and those superseded by newer code (with the latest set recorded)."""
    generation = store.next_declaration_generation(conn)
    current: dict[str, int] = {}
    superseded: dict[str, dict[str, Any]] = {}
    for unit, mark in sorted(found.items()):
        latest = store.record_declarations(conn, unit, mark, code_version, generation)
        if latest["fingerprint"] == mark:
            current[unit] = latest["generation"]
        else:
            superseded[unit] = latest
    return current, superseded


def warn_superseded(what: str, module: str, code_version: str | None, latest: dict[str, Any]) -> None:
    log.warning(
        "the %s this worker's code declares in %s were superseded by newer code, which is left as it declared "
        "them; to roll back to this code's %s, start it with a ZART_CODE_VERSION not used before",
        what,
        module,
        what,
        extra={
            "declaring_module": module,
            "code_version": code_version,
            "latest_code_version": latest["code_version"],
            "latest_first_seen_at": latest["first_seen_at"].isoformat(),
        },
    )
