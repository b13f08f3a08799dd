"""Run the installed `zart` command in a subprocess, as a user or an agent script would."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import Environment

ZART = Path(sys.executable).parent / "zart"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def json(self) -> Any:
        assert self.stdout.count("\n") == 1, f"expected one line of JSON, got {self.stdout!r}"
        return json.loads(self.stdout)


@dataclass
class Cli:
    env: Environment
    cwd: Path

    def __call__(
        self, *args: str, drop: tuple[str, ...] = (), cwd: Path | None = None, timeout: float = 60, **env: str
    ) -> Result:
        """`zart ARGS`; `drop` removes variables (say DATABASE_URL) and keywords override them."""
        variables = {k: v for k, v in self.env.variables(**env).items() if k not in drop}
        done = subprocess.run(
            [str(ZART), *args],
            cwd=cwd or self.cwd,
            env=variables,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def on_terminal(self, *args: str, timeout: float = 60) -> str:
        """`zart ARGS` with stdout on a pseudo-terminal, as a person at a shell sees it."""
        leader, follower = pty.openpty()
        try:
            done = subprocess.run(
                [str(ZART), *args], cwd=self.cwd, env=self.env.variables(), stdout=follower, timeout=timeout
            )
        finally:
            os.close(follower)
        output = b""
        try:
            while chunk := os.read(leader, 4096):
                output += chunk
        except OSError:  # EIO: the terminal's other end is closed and drained
            pass
        finally:
            os.close(leader)
        assert done.returncode == 0, output
        return output.decode()


def run_script(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> Result:
    """A whole command line (a script, a long-running `zart` command) with its output captured."""
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return Result(done.returncode, done.stdout, done.stderr)


def scheduled_id(result: Result) -> str:
    """The id from `Scheduled execution: <id>`, the first of the three scheduling lines."""
    assert result.returncode == 0, result.stderr
    first = result.lines[0]
    assert first.startswith("Scheduled execution: "), result.stdout
    return first.removeprefix("Scheduled execution: ")


def status_of(zart: Cli, execution_id: str) -> str:
    result = zart("status", execution_id, "--json")
    assert result.returncode == 0, result.stderr
    return str(result.json()["status"])
