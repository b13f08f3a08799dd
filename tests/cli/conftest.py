"""Fixtures for driving the real `zart` command against the session's Postgres and Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.cli import Cli
from tests.harness import Environment


@pytest.fixture()
def zart(env: Environment, tmp_path: Path) -> Cli:
    """The CLI, run from an empty working directory (so no stray `.env` is read)."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    return Cli(env, workdir)


@pytest.fixture()
def journal(log_dir: Path, unique: Callable[[str], str]) -> Callable[[], str]:
    """A JSON `--data` argument naming a fresh journal file, which the test workflows require."""
    return lambda: json.dumps({"journal": str(log_dir / f"{unique('j')}.journal")})
