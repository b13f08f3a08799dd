"""How fast held `/wait` long-polls are answered once their executions finish, with 200 of them at once.

Starts private Postgres and Redis, a `zart worker` and a `zart server` (waitress, default threads), parks
200 `bench.event` executions, holds one `/wait` per execution, checks that /healthz and GET status are still
answered meanwhile, then delivers the events over HTTP and reports, per waiter, the delay between the
execution's `completed_at` (Postgres clock, same machine) and the moment its answer arrived: for the first
half of the events sent 30 ms apart, and for the second half sent back to back.

Run: `python -m bench.wait_latency [--waiters 200]`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if not __package__:  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.processes import WorkerProcess, zart_worker  # noqa: E402
from bench.services import running_services  # noqa: E402
from bench.workflows import EVENT, EVENT_NAME  # noqa: E402
from zart.localservices import free_port  # noqa: E402
from zart.service import ZartService  # noqa: E402

API = "/api/v1"
PROBES = 50
EVENT_SPACING = 0.03


class Client:
    """One connection per request, as independent clients would open them."""

    def __init__(self, port: int) -> None:
        self.port = port

    def call(self, method: str, path: str, body: Any = None, timeout: float = 30) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            payload = None if body is None else json.dumps(body)
            connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def json(self, method: str, path: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
        status, data = self.call(method, path, body, timeout)
        return status, json.loads(data or b"null")


def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return value


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def describe(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name:<44} n={len(ms):<4} p50 {statistics.median(ms):7.1f} ms   p99 {percentile(ms, 0.99):7.1f} ms"
        f"   max {max(ms):7.1f} ms"
    )


def answers(client: Client, path: str) -> bool:
    try:
        return client.call("GET", path, timeout=5)[0] == 200
    except OSError:  # not listening yet
        return False


def timed(client: Client, path: str) -> float:
    started = time.perf_counter()
    status, _ = client.call("GET", path, timeout=10)
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}")
    return time.perf_counter() - started


def waiters_in_flight(client: Client) -> int:
    _, text = client.call("GET", "/metrics")
    found = re.search(rb"^zart_wait_requests_in_flight (\S+)$", text, re.MULTILINE)
    return int(float(found.group(1))) if found else -1


def run(waiters: int) -> None:
    with running_services() as services, tempfile.TemporaryDirectory(prefix="zart-wait-bench-") as logs:
        log_dir = Path(logs)
        settings = services.settings()
        service = ZartService(settings)
        port = free_port()
        env = {"DATABASE_URL": settings.database_url, "ZART_BROKER_URL": settings.broker_url}
        server_argv = [sys.executable, "-m", "zart", "server", "--port", str(port), "--quiet"]
        with zart_worker(settings.database_url, settings.broker_url, log_dir):
            server = WorkerProcess("zart-server", server_argv, env, log_dir)
            try:
                measure(Client(port), service, waiters)
            finally:
                server.stop()


def measure(client: Client, service: ZartService, waiters: int) -> None:
    until(lambda: answers(client, "/readyz"), 60, "the server to be ready")
    until(lambda: any(t["name"] == EVENT for t in service.tasks()), 60, "the worker to register its tasks")
    ids = []
    for _ in range(waiters):
        status, body = client.json("POST", f"{API}/executions", {"task": EVENT, "data": {}})
        assert status == 201, body
        ids.append(body["execution_id"])
    until(
        lambda: client.json("GET", f"{API}/executions?task={EVENT}&status=waiting&limit=1")[1]["total"] == waiters,
        120,
        "every execution to park on its event",
    )

    answered: dict[str, tuple[float, int]] = {}

    def hold(execution_id: str) -> None:
        status, _ = client.call("GET", f"{API}/executions/{execution_id}/wait?timeout=600", timeout=700)
        answered[execution_id] = (time.time(), status)

    threads = [threading.Thread(target=hold, args=(i,), daemon=True) for i in ids]
    for thread in threads:
        thread.start()
    until(lambda: waiters_in_flight(client) == waiters, 60, f"{waiters} held long-polls")

    healthz = [timed(client, "/healthz") for _ in range(PROBES)]
    status_reads = [timed(client, f"{API}/executions/{ids[n % len(ids)]}") for n in range(PROBES)]
    held_throughout = not answered

    # The first half of the events go out EVENT_SPACING apart, as the other latency figures are taken (one at a
    # time, on a machine that is not saturated), while the rest stay held; the second half go back to back,
    # which on a small machine measures CPU saturation as much as latency, and is reported beside it.
    paced, burst = ids[: len(ids) // 2], ids[len(ids) // 2 :]
    deliveries = []
    for group, spacing in ((paced, EVENT_SPACING), (burst, 0.0)):
        for execution_id in group:
            started = time.perf_counter()
            status, _ = client.call("POST", f"{API}/events/{execution_id}/{EVENT_NAME}", {"approved": True})
            assert status == 200, status
            deliveries.append(time.perf_counter() - started)
            time.sleep(max(0.0, spacing - (time.perf_counter() - started)))
    for thread in threads:
        thread.join(timeout=120)

    def latencies(group: list[str]) -> list[float]:
        found = []
        for execution_id in group:
            received_at, status = answered[execution_id]
            assert status == 200, (execution_id, status)
            found.append(received_at - service.status(execution_id)["completed_at"].timestamp())
        return found

    print(f"{waiters} concurrent /wait long-polls on one `zart server` (default threads), one `zart worker`")
    print(f"all {waiters} held while the probes ran: {held_throughout}")
    print(describe("completion → /wait answered", latencies(paced)))
    print(describe("completion → /wait answered, back to back", latencies(burst)))
    print(describe("GET /healthz while held", healthz))
    print(describe("GET /executions/{id} while held", status_reads))
    print(describe("POST /events/{id}/{name} while held", deliveries))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", type=int, default=200)
    run(parser.parse_args(argv).waiters)


if __name__ == "__main__":
    main()
