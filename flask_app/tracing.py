"""Requests continue the caller's trace: an incoming `traceparent` becomes the parent of zart's spans (the
schedule span, an event delivery), so a trace runs from the client through the API into the workers."""

from __future__ import annotations

from flask import Flask, g, request

from zart.observability import tracing

_TOKEN = "zart_trace_token"


def init_tracing(app: Flask) -> None:
    """Always hooked: a host app may set its tracer provider after `init_zart` (each hook is a no-op while
    tracing is off)."""

    @app.before_request
    def continue_incoming_trace() -> None:
        setattr(g, _TOKEN, tracing.attach_incoming(request.headers))

    @app.teardown_request
    def end_incoming_trace(_: BaseException | None) -> None:
        tracing.detach(g.pop(_TOKEN, None))
