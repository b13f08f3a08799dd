"""`zart dev --once`: the one-command local stack runs the sample end to end and stops."""

from __future__ import annotations

import os
import re

from tests.cli.cli import ZART, run_script
from tests.harness import REPO
from zart.localservices import free_port


def test_dev_once_runs_the_sample_on_the_database_the_flag_names(env, service, tmp_path, unique):
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/zart"
    variables = {
        **env.variables(),
        "DATABASE_URL": unreachable,  # the flag must win over it
        "ZART_QUEUE": unique("dev-queue"),  # keeps the stack's worker off the other tests' queue
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    argv = [str(ZART), "--database-url", env.database_url, "dev", "--once", "--port", str(free_port())]
    done = run_script(argv, tmp_path, variables)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"^Sample execution (\S+): completed ", done.stdout, re.MULTILINE)
    assert found, done.stdout
    assert service.status(found[1])["status"] == "completed"  # it ran on the flag's database
    assert (tmp_path / ".zart" / "worker.log").is_file()  # its state and logs live in the working directory
