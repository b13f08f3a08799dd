"""The CLI group loads each command's module on demand; its name-to-module table must match the modules."""

from __future__ import annotations

import importlib
import subprocess
import sys

from click.testing import CliRunner

from tests.harness import REPO
from zart.cli.app import COMMAND_MODULES, cli


def test_every_command_is_found_in_the_module_the_table_names() -> None:
    declared: dict[str, str] = {}
    for module_name in set(COMMAND_MODULES.values()):
        module = importlib.import_module(f"zart.cli.{module_name}")
        declared.update({command.name: module_name for command in module.COMMANDS})
    assert declared == COMMAND_MODULES


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(COMMAND_MODULES)


def test_the_worker_supervisor_loads_neither_the_store_nor_celery() -> None:
    """`zart worker` restarts its Celery child from a small process: it must not pay for SQLAlchemy or Celery."""
    probe = (
        "import sys; from zart.cli.app import cli; cli.get_command(None, 'worker'); "
        "print(sorted(m for m in ('sqlalchemy', 'celery', 'zart.store.db') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
