"""/wait under a real waitress server: many held long-polls, woken by NOTIFY, while other requests flow."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from bench.wait_latency import Client
from flask_app import create_app
from tests.api.conftest import API, LiveServer, serve
from tests.harness import poll

WAITERS = 100


def raw_request(server: LiveServer, method: str, path: str, body: Any = None, timeout: float = 30) -> tuple[int, bytes]:
    """One request on its own connection, as independent clients would send it."""
    return Client(urlsplit(server.url).port or 80).call(method, path, body, timeout)


def request(server: LiveServer, method: str, path: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
    return Client(urlsplit(server.url).port or 80).json(method, path, body, timeout)


@pytest.fixture()
def live(env) -> Iterator[LiveServer]:
    server = serve(create_app(settings=env.settings(), max_waiters=WAITERS + 8), threads=WAITERS + 24)
    yield server
    server.stop()


def parked_executions(server: LiveServer, service, count: int, log_dir) -> list[str]:
    ids = []
    for n in range(count):
        status, body = request(
            server, "POST", f"{API}/executions", {"task": "t.event", "data": {"journal": str(log_dir / f"j{n}")}}
        )
        assert status == 201
        ids.append(body["execution_id"])
    poll(lambda: all(service.status(i)["status"] == "waiting" for i in ids), 60, what="executions to park")
    return ids


def test_held_waiters_are_woken_by_notify_while_other_requests_are_answered(live, service, api_worker, log_dir):
    ids = parked_executions(live, service, WAITERS, log_dir)
    answered: dict[str, tuple[float, int, Any]] = {}

    def wait_for(execution_id: str) -> None:
        status, body = request(live, "GET", f"{API}/executions/{execution_id}/wait?timeout=120", timeout=150)
        answered[execution_id] = (time.time(), status, body)

    threads = [threading.Thread(target=wait_for, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    slots = live.app.extensions["zart"].wait_slots
    poll(lambda: slots.in_flight == WAITERS, 30, what="every waiter to be held")

    for path in ("/healthz", f"{API}/executions/{ids[0]}", f"{API}/stats", "/metrics"):
        started = time.monotonic()
        status, data = raw_request(live, "GET", path, timeout=5)
        assert status == 200 and time.monotonic() - started < 2.0, path
    assert f"zart_wait_requests_in_flight {WAITERS}.0" in data.decode()
    assert not answered

    for execution_id in ids:
        service.send_event(execution_id, "approval", {"ok": execution_id})
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(answered) == sorted(ids)
    latencies = []
    for execution_id, (received_at, status, body) in answered.items():
        assert status == 200 and body["status"] == "completed"
        assert body["output"] == {"payload": {"ok": execution_id}}
        completed_at = service.status(execution_id)["completed_at"].timestamp()
        latencies.append(received_at - completed_at)
    # the fallback re-read is every 2 s: answers well inside it come from the notification
    assert statistics.median(latencies) < 0.5, sorted(latencies)
    assert max(latencies) < 1.5, sorted(latencies)
    print(f"wake latency over {WAITERS} waiters: p50 {statistics.median(latencies):.3f}s max {max(latencies):.3f}s")


def test_waiters_beyond_the_cap_are_refused_not_queued(env, service, api_worker, log_dir):
    server = serve(create_app(settings=env.settings(), max_waiters=2), threads=8)
    try:
        ids = parked_executions(server, service, 3, log_dir)
        held = [
            threading.Thread(target=request, args=(server, "GET", f"{API}/executions/{i}/wait?timeout=60"))
            for i in ids[:2]
        ]
        for thread in held:
            thread.start()
        poll(lambda: server.app.extensions["zart"].wait_slots.in_flight == 2, 30, what="two held waiters")
        status, body = request(server, "GET", f"{API}/executions/{ids[2]}/wait?timeout=60", timeout=5)
        assert status == 503 and body["error"]["code"] == "service_unavailable"
        assert request(server, "GET", "/healthz", timeout=5)[0] == 200
        for execution_id in ids:
            service.send_event(execution_id, "approval", {})
        for thread in held:
            thread.join(timeout=60)
        assert server.app.extensions["zart"].wait_slots.in_flight == 0
    finally:
        server.stop()


def test_a_finished_execution_answers_at_once_and_a_timeout_with_202(live, service, api_worker, log_dir):
    (execution_id,) = parked_executions(live, service, 1, log_dir)
    started = time.monotonic()
    status, body = request(live, "GET", f"{API}/executions/{execution_id}/wait?timeout=1")
    assert status == 202 and body["status"] == "waiting" and 0.9 < time.monotonic() - started < 5
    service.send_event(execution_id, "approval", {})
    poll(lambda: service.status(execution_id)["status"] == "completed", 30, what="completion")
    started = time.monotonic()
    status, body = request(live, "GET", f"{API}/executions/{execution_id}/wait?timeout=60")
    assert status == 200 and body["status"] == "completed" and time.monotonic() - started < 1


def test_a_waiter_whose_client_hangs_up_lets_go_of_its_thread(live, service, api_worker, log_dir):
    [execution_id] = parked_executions(live, service, 1, log_dir)
    slots = live.app.extensions["zart"].wait_slots
    port = urlsplit(live.url).port or 80
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    request_line = f"GET {API}/executions/{execution_id}/wait?timeout=120 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    connection.sendall(request_line.encode())
    poll(lambda: slots.in_flight == 1, 30, what="the long-poll to be held")
    connection.close()
    poll(lambda: slots.in_flight == 0, 10, what="the abandoned long-poll to let go")
    assert service.status(execution_id)["status"] == "waiting"  # the execution itself is untouched


def test_a_wait_hears_a_finish_soon_after_the_listening_connection_went_silent(env, unique, postgres):
    """A LISTEN connection that dies without a word (a NAT or load balancer dropping an idle connection, a
    failover): the listener kept waiting on it for notifications that never came, so each /wait learnt of a finish
    only from its half-minute re-read. Here its backend is stopped, which silences it the same way."""
    from sqlalchemy import text

    from zart.registry import Registry
    from zart.service import ZartService
    from zart.store import db, notifications

    with db.autocommit(env.database_url) as conn:
        began = conn.execute(text("SELECT now()")).scalar_one()
    url = f"{env.database_url}?connect_timeout=4"  # a listener of its own, not shared with the other tests
    settings = env.settings(DATABASE_URL=url)
    client = create_app(settings=settings).test_client()
    silent = ZartService(settings, publish=lambda _id: True, registry=Registry())  # no worker takes it
    execution_id = unique("silenced")
    silent.schedule("t.event", {"journal": "unused"}, execution_id=execution_id)
    assert client.get(f"{API}/executions/{execution_id}/wait?timeout=0").status_code == 202  # now listening
    with db.autocommit(env.database_url) as conn:
        listener = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND backend_start >= :began"),
            {"began": began},
        ).scalar_one()
    answers: list[Any] = []
    waiting = threading.Thread(
        target=lambda: answers.append(client.get(f"{API}/executions/{execution_id}/wait?timeout=60")), daemon=True
    )
    os.kill(listener, signal.SIGSTOP)
    try:
        waiting.start()
        poll(lambda: notifications.for_url(settings.libpq_url).waiter_count() == 1, 10, what="the waiter")
        started = time.monotonic()
        silent.cancel(execution_id)
        waiting.join(60)
        heard_after = time.monotonic() - started
    finally:
        os.kill(listener, signal.SIGCONT)
    assert answers and answers[0].status_code == 200, answers
    assert answers[0].get_json()["status"] == "cancelled"
    # a re-read alone comes 22 to 38 s later; a listener that checks its silent connection hears it sooner
    assert heard_after < 18, heard_after
    print(f"\nthe wait heard the finish after {heard_after:.1f}s")


class SwallowingProxy:
    """A TCP proxy to Postgres that, on the first connection to send `marker`, stops passing anything on while
    keeping the connection open: the database froze (or a partition fell) while the listener was setting up."""

    def __init__(self, upstream_port: int, marker: bytes) -> None:
        self._upstream = upstream_port
        self._marker = marker
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.swallowed = threading.Event()
        self._sockets: list[socket.socket] = [self._server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._server.accept()
                upstream = socket.create_connection(("127.0.0.1", self._upstream))
                self._sockets += [client, upstream]
                threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
                threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        swallowing = False
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if from_client and not self.swallowed.is_set() and self._marker in chunk:
                    self.swallowed.set()
                    swallowing = True
                if not swallowing:
                    target.sendall(chunk)

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.mark.parametrize("marker", [b"LISTEN", b"pg_notify"])
def test_the_listener_recovers_when_the_database_stops_answering_while_it_sets_up(env, postgres, marker):
    """The listener's LISTEN, and its probe's notification that checks it hears itself, waited forever on a
    database that stopped answering right after the connection was made: every later wait then learnt of finishes
    only from its half-minute re-reads, for as long as the connection seemed open. Each round trip of the set-up is
    now bounded, so the listener gives up on that connection and listens on a new one."""
    from zart.store import notifications

    proxy = SwallowingProxy(postgres.port, marker)
    try:
        database = env.database_url.rsplit("/", 1)[1]
        listener = notifications.FinishedNotifications(f"postgresql://postgres@127.0.0.1:{proxy.port}/{database}")
        waiter = listener.watch("exec-never-finishes", ready_timeout=0)
        try:
            assert proxy.swallowed.wait(10), f"the listener never sent {marker!r}"
            started = time.monotonic()
            poll(lambda: listener.listening, 30, what="the listener to listen on a new connection")
            print(f"\nlistening {time.monotonic() - started:.1f}s after {marker!r} went unanswered")
        finally:
            listener.unwatch("exec-never-finishes", waiter)
    finally:
        proxy.close()
