"""A database that stops answering without closing its connections (a stopped server, a partition) must not hold a
`zart` command forever: psycopg has no read timeout and the kernel keeps acknowledging for a stopped process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg

from tests.cli.cli import ZART, scheduled_id


def _local_ports(pid: int) -> set[int]:
    """The local TCP ports of process `pid`'s sockets (its connections to Postgres, as pg_stat_activity's
    client_port shows them)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_a_frozen_database_fails_a_waiting_cli_command_within_the_bound_instead_of_hanging(
    zart, env, postgres, journal
):
    """`zart wait` re-reads the status from a pooled connection; once the database froze, that read (its
    checkout's ping) waited forever, whatever --timeout said. Here the command's own backends (its pooled and its
    LISTEN connection) and the postmaster are stopped while it waits."""
    execution_id = scheduled_id(zart("schedule", "t.event", "--data", journal()))
    admin_url = f"postgresql://postgres@127.0.0.1:{postgres.port}/{env.database_url.rsplit('/', 1)[1]}"
    waiting = subprocess.Popen(
        [str(ZART), "wait", execution_id, "--timeout", "600"],
        cwd=zart.cwd,
        env=env.variables(ZART_CLI_DATABASE_TIMEOUT="3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    postmaster = int((postgres.data_dir / "postmaster.pid").read_text().split()[0])
    stopped: list[int] = []
    try:
        backends = _waits_listening_and_read(waiting, admin_url)
        for pid in (postmaster, *backends):
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        started = time.monotonic()
        try:
            stdout, stderr = waiting.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            waiting.kill()
            stdout, stderr = waiting.communicate()
            raise AssertionError("`zart wait` was still waiting on the stopped database after 60 s") from None
        elapsed = time.monotonic() - started
    finally:
        for pid in reversed(stopped):
            os.kill(pid, signal.SIGCONT)
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 1, (waiting.returncode, stdout, stderr)
    assert stdout == ""
    assert stderr == "Error: database unavailable: no answer within 3s\n", stderr
    # the listener notices its silent connection within ~10 s, the re-read is cut after 3 s, and the connection
    # attempt that replaces it gives up after 5 s
    assert elapsed < 40, elapsed
    print(f"\n`zart wait` failed after {elapsed:.1f}s: {stderr.strip()}")
    assert zart("cancel", execution_id).returncode == 0


def _waits_listening_and_read(waiting: subprocess.Popen[str], admin_url: str) -> list[int]:
    """The backends of the waiting command once it listens and has read the status (pooled connection idle)."""
    deadline = time.monotonic() + 30
    with psycopg.connect(admin_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            assert waiting.poll() is None, waiting.communicate()
            ports = _local_ports(waiting.pid)
            rows = conn.execute(
                "SELECT pid, query, state FROM pg_stat_activity WHERE client_port = ANY(%s)", (list(ports),)
            ).fetchall()
            listening = [pid for pid, query, _ in rows if query.startswith("LISTEN")]
            read = [pid for pid, query, state in rows if "pg_notify" not in query and not query.startswith("LISTEN")]
            if listening and read and all(state == "idle" for _, _, state in rows):
                return [pid for pid, _, _ in rows]
            time.sleep(0.1)
    raise AssertionError("the waiting command never listened and read its execution")


def test_the_database_bound_does_not_cut_a_wait_longer_than_it(zart, journal):
    """The bound covers each database round trip, not the wait's own sleeping and listening."""
    execution_id = scheduled_id(zart("schedule", "t.event", "--data", journal()))
    started = time.monotonic()
    waited = zart("wait", execution_id, "--timeout", "4", ZART_CLI_DATABASE_TIMEOUT="1")
    assert waited.returncode == 2, waited.stderr
    assert waited.stderr == f"Timeout reached: execution {execution_id} is still pending.\n"
    assert time.monotonic() - started >= 4
    assert zart("cancel", execution_id).returncode == 0
