"""The server's own limits: a body over the API's limit is refused before it is read (in the API's error shape),
a client that trickles its request is cut off, and no request can add time series to /metrics."""

from __future__ import annotations

import json
import socket
import time

import pytest

from flask_app import create_app
from tests.api.conftest import serve
from tests.harness import poll

LIMIT = 64 * 1024


@pytest.fixture()
def live(env):
    server = serve(create_app(settings=env.settings(ZART_MAX_BODY_BYTES=str(LIMIT))), threads=8, request_read_seconds=2)
    yield server
    server.stop()


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=10)
    return conn


def read_response(conn: socket.socket) -> tuple[int, dict]:
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < content_length(data):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def content_length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def post_headers(length: int) -> bytes:
    return (
        f"POST /api/v1/executions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_a_body_declared_over_the_limit_is_refused_before_a_byte_of_it_is_read(live):
    conn = connect(live.url)
    started = time.monotonic()
    conn.sendall(post_headers(1024**3))  # 1 GiB announced, nothing sent
    status, body = read_response(conn)
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert time.monotonic() - started < 5


def test_a_body_of_exactly_the_limit_reaches_the_api(live):
    document = json.dumps({"task": "t.typed", "data": {"pad": "x" * LIMIT}}).encode()[:LIMIT]
    conn = connect(live.url)
    conn.sendall(post_headers(len(document)) + document)
    status, body = read_response(conn)
    assert status == 422 and body["error"]["code"] == "invalid_data"  # the API read it (and it is cut short)


def test_a_client_trickling_its_headers_is_disconnected(live):
    conn = connect(live.url)
    conn.sendall(b"GET /healthz HTTP/1.1\r\n")
    started = time.monotonic()

    def closed() -> bool:
        try:
            conn.sendall(b"X-Slow: 1\r\n")
            conn.settimeout(0.3)
            return conn.recv(1) == b""
        except (TimeoutError, BlockingIOError):
            return False
        except OSError:
            return True

    poll(closed, timeout=10, interval=0.3, what="the server to drop the trickling client")
    assert time.monotonic() - started < 6
    fresh = connect(live.url)
    fresh.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert read_response(fresh)[0] == 200


def metrics_text(url: str) -> str:
    conn = connect(url)
    conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data.partition(b"\r\n\r\n")[2].decode()


def test_made_up_methods_and_paths_add_no_time_series(live):
    def hostile_round(offset: int) -> None:
        for index in range(offset, offset + 150):
            conn = connect(live.url)
            method, path = f"M{index:03d}{'X' * 10_000}", f"/no/such/{index}/{'p' * 1000}"
            conn.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            assert read_response(conn)[0] in (404, 405)
            conn.close()

    before = len(metrics_text(live.url))
    hostile_round(0)
    first = metrics_text(live.url)
    hostile_round(150)
    second = metrics_text(live.url)
    # the first round adds the `other`/`unmatched` series once; the second only changes their counts
    assert len(first) - before < 10_000 and abs(len(second) - len(first)) < 200
    assert 'method="other"' in second and 'url_rule="unmatched"' in second
    assert "XXXX" not in second and "pppp" not in second
