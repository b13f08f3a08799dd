"""The HTTP server `zart server` runs: waitress, with limits that match the API's and bounded slow clients.

Waitress on its own reads request bodies up to 1 GiB (spooled to disk) before the application can refuse
them, answers its own refusals as plain text, and keeps a connection that trickles its headers for as long as
bytes keep coming. Here its body limit is the API's (`ZART_MAX_BODY_BYTES`), its refusals carry the API's
error shape, and a request must have arrived whole (headers and body) within REQUEST_READ_SECONDS of its first
byte. That bounds what one slow client can hold; it does not make the server a match for a flood of them, which
is what a reverse proxy in front is for (see the README).
"""

from __future__ import annotations

import json
import time
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

REQUEST_READ_SECONDS = 15.0  # from a request's first byte to its last (headers and body)
IDLE_CONNECTION_SECONDS = 30  # a kept-alive connection with no request in flight
MAINTENANCE_INTERVAL = 1  # how often connections are checked against both bounds
MAX_HEADER_BYTES = 64 * 1024

_CODES = {400: "invalid_data", 413: "payload_too_large", 431: "request_header_fields_too_large"}


def waitress_options(threads: int, connection_limit: int | None = None, max_body_bytes: int = 1_048_576) -> dict:
    """How zart serves under waitress (shared with the tests' in-process server)."""
    return {
        "threads": threads,
        "connection_limit": connection_limit or threads + 256,
        "asyncore_use_poll": True,  # select() stops at 1024 descriptors
        "channel_timeout": IDLE_CONNECTION_SECONDS,
        "cleanup_interval": MAINTENANCE_INTERVAL,
        # waitress refuses a body whose length reaches its limit: one more byte lets the API's own limit through
        "max_request_body_size": max_body_bytes + 1,
        "max_request_header_size": MAX_HEADER_BYTES,
        # reading one request ahead is what lets waitress notice a client that hung up on a held /wait
        "channel_request_lookahead": 1,
        "ident": "zart",
        "clear_untrusted_proxy_headers": True,
    }


class JsonErrorTask(ErrorTask):
    """Waitress's own refusals (a body over the limit, oversized or malformed headers) in the API's shape."""

    def execute(self) -> None:
        error = self.request.error
        code = _CODES.get(error.code, "invalid_data" if 400 <= error.code < 500 else "internal_error")
        message = f"{error.reason}: {error.body}" if error.body else error.reason
        body = json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class TimedRequestParser(HTTPRequestParser):
    """Remembers when the request's first byte arrived."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.first_byte_at = time.time()


class BoundedChannel(HTTPChannel):
    error_task_class = JsonErrorTask
    parser_class = TimedRequestParser


class BoundedServer(TcpWSGIServer):
    """Closes a connection whose request is still arriving REQUEST_READ_SECONDS after its first byte."""

    channel_class = BoundedChannel
    request_read_seconds = REQUEST_READ_SECONDS

    def maintenance(self, now: float) -> None:
        super().maintenance(now)
        cutoff = now - self.request_read_seconds
        for channel in list(self.active_channels.values()):
            partial = channel.request
            if partial is not None and not partial.completed and partial.first_byte_at < cutoff:
                channel.will_close = True


def create_server(
    app: Any, *, host: str, port: int, request_read_seconds: float = REQUEST_READ_SECONDS, **options: Any
) -> TcpWSGIServer | MultiSocketServer:
    """A waitress server on every address `host` resolves to, with zart's bounds (see `waitress_options`)."""
    adj = Adjustments(host=host, port=port, **options)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    socket_map: dict[int, Any] = {}
    servers = [
        BoundedServer(app, socket_map, dispatcher=dispatcher, adj=adj, sockinfo=sockinfo) for sockinfo in adj.listen
    ]
    for server in servers:
        server.request_read_seconds = request_read_seconds
    if len(servers) == 1:
        return servers[0]
    listening = [(server.effective_host, server.effective_port) for server in servers]
    return MultiSocketServer(socket_map, adj, listening, dispatcher)
