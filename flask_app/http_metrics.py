"""Request counts and latencies for /metrics, labelled only from fixed vocabularies.

A label value taken from the request as sent (its method, its path) lets any client, with or without a token,
create new time series at will and grow /metrics and the server's memory without bound. Here a method is one
of the standard ones or `other`, a route is the URL rule that matched (never the path) or `unmatched`, and a
status is the number sent (a three-digit code, from the server itself).
"""

from __future__ import annotations

from timeit import default_timer

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "unmatched"


def method_label(method: str) -> str:
    return method if method in METHODS else OTHER_METHOD


def route_label() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED_ROUTE


def status_label(status: int) -> str:
    return str(status) if 100 <= status <= 599 else "other"


class HttpMetrics:
    """`flask_http_request_total{method,status}` and `flask_http_request_duration_seconds{method,url_rule,status}`."""

    def __init__(self, app: Flask, registry: CollectorRegistry) -> None:
        self._total = Counter(
            "flask_http_request_total", "Total number of HTTP requests", ("method", "status"), registry=registry
        )
        self._duration = Histogram(
            "flask_http_request_duration_seconds",
            "Flask HTTP request duration in seconds",
            ("method", "url_rule", "status"),
            registry=registry,
        )
        app.before_request(self._start)
        app.after_request(self._record)

    @staticmethod
    def _start() -> None:
        g.zart_request_started = default_timer()

    def _record(self, response: Response) -> Response:
        method, status = method_label(request.method), status_label(response.status_code)
        self._total.labels(method=method, status=status).inc()
        started = g.pop("zart_request_started", None)
        if started is not None:
            elapsed = max(default_timer() - started, 0.0)
            self._duration.labels(method=method, url_rule=route_label(), status=status).observe(elapsed)
        return response
