"""The pytest fixtures: one migrated PostgreSQL per test session, one workflow harness per test."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from zart.engine import clock
from zart.testing.runner import WorkflowHarness


@pytest.fixture(scope="session")
def zart_database_url() -> Iterator[str]:
    """A migrated database: `ZART_TEST_DATABASE_URL` when set, else a private server started for the session
    (the PostgreSQL server binaries must be installed, as for zart's own tests)."""
    from zart.config import normalise_database_url
    from zart.migrate import upgrade
    from zart.store import db

    given = os.environ.get("ZART_TEST_DATABASE_URL")
    if given:
        url = normalise_database_url(given)
        upgrade(url)
        yield url
        return
    from zart.localservices import LocalPostgres, free_port

    directory = Path(tempfile.mkdtemp(prefix="zart-testing-"))
    directory.chmod(0o755)  # the server may run as the postgres user
    server = LocalPostgres(directory / "pg", free_port())
    try:
        url = server.start(fsync=False)
        upgrade(url)
        yield url
    finally:
        db.dispose_all()
        server.stop(mode="immediate")
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture()
def zart_workflows(zart_database_url: str) -> Iterator[WorkflowHarness]:
    """Start workflows with `.start(task, data, events=…, stubs=…)` or `.run(…)`; the clock is reset after."""
    harness = WorkflowHarness(zart_database_url)
    try:
        yield harness
    finally:
        clock.reset()
