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


def test_dev_stops_everything_it_started_on_sigterm(env, tmp_path, unique):
    """A process manager stops `zart dev` with SIGTERM: its worker and API server must go with it."""
    import contextlib
    import signal
    import socket
    import subprocess

    from tests.harness import poll

    port = free_port()
    output = tmp_path / "dev.out"
    variables = {**env.variables(), "ZART_QUEUE": unique("dev-queue"), "PYTHONPATH": str(REPO)}
    with output.open("wb") as sink:
        dev = subprocess.Popen(
            [str(ZART), "dev", "--port", str(port)],
            cwd=tmp_path,
            env=variables,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )
        try:
            poll(lambda: b"Press Ctrl-C to stop." in output.read_bytes() or dev.poll() is not None, 120, what="dev")
            assert dev.poll() is None, output.read_text()
            socket.create_connection(("127.0.0.1", port), timeout=5).close()  # the API is up
            dev.send_signal(signal.SIGTERM)
            assert dev.wait(timeout=60) == 0, output.read_text()
        finally:
            with contextlib.suppress(ProcessLookupError):  # whatever it left behind, if the test failed
                os.killpg(dev.pid, signal.SIGKILL)
    assert "Stopping ..." in output.read_text()
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        raise AssertionError("the API server outlived zart dev")
    except OSError:
        pass
