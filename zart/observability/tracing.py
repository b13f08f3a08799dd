"""OpenTelemetry tracing, optional: with `opentelemetry-api` absent (or no tracer configured) every call here is
a cheap no-op.

One trace per execution: scheduling opens a span whose W3C context is stored with the execution
(`trace_context`), and every later run — on any worker, after any restart — starts its span as a child of it.
Child executions store the context of the run that scheduled them, so they join the parent's trace.

Configuration is OpenTelemetry's own: a tracer provider set by the host application is used as it is;
otherwise, when `OTEL_TRACES_EXPORTER` names an exporter (`console`, `otlp`, any registered in the
`opentelemetry_traces_exporter` entry-point group, or `zart_jsonl`, one JSON object per span appended to the
file named by `ZART_TRACES_FILE`), zart builds the SDK provider from the `OTEL_*` variables (service name,
resource attributes, sampler). `OTEL_SDK_DISABLED=true` turns it all off.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # the optional extra is not installed
    trace = None  # type: ignore[assignment]

TRACER_NAME = "zart"
FILE_EXPORTER = "zart_jsonl"
FILE_ENV = "ZART_TRACES_FILE"
_lock = threading.Lock()
_state: dict[str, Any] = {"checked": False, "tracer": None, "awaiting_provider": False}


def _tracer() -> Any:
    """The tracer, or None when tracing is off; decided once per process, except that "no provider yet and no
    exporter named" is asked again each time: an application may set its provider after zart's first call
    (after `init_zart`, in a worker's process-init hook), and its spans must then include zart's. Asked again is
    only whether a provider has been set since (this runs for every step): the rest of the configuration, read
    from the environment, stays as it was."""
    if _state["checked"]:
        return _state["tracer"]
    if _state.get("awaiting_provider") and not _provider_set(fast=True):
        return None
    with _lock:
        if not _state["checked"]:
            tracer, settled = _configure()
            _state["tracer"] = tracer
            _state["checked"] = settled
            _state["awaiting_provider"] = not settled
    return _state["tracer"]


def _provider_set(fast: bool = False) -> bool:
    """Whether the application has set a tracer provider of its own. `fast`, once the full question was asked:
    opentelemetry-api's global still unset answers no without its `OTEL_PYTHON_TRACER_PROVIDER` look-up in the
    environment (a missing key there costs microseconds, on every step); any other answer takes the full path."""
    if fast and getattr(trace, "_TRACER_PROVIDER", _UNKNOWN) is None:
        return False
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


_UNKNOWN = object()  # opentelemetry-api without the global the fast path reads: always ask in full


def active() -> bool:
    return _tracer() is not None


def _configure() -> tuple[Any, bool]:
    """The tracer (or None), and whether that answer is final."""
    if trace is None or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None, True
    if _provider_set():
        return trace.get_tracer_provider().get_tracer(TRACER_NAME), True  # the application configured its own
    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    names = [n for n in names if n != "none"]
    if not names:
        return None, False  # the application may still set a provider
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        log.warning("OTEL_TRACES_EXPORTER is set but opentelemetry-sdk is not installed; tracing is off")
        return None, True
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "zart")}))
    for name in names:
        processor = _processor(name)
        if processor is not None:
            provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return trace.get_tracer(TRACER_NAME), True


def _processor(name: str) -> Any:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if name == FILE_EXPORTER:
        path = os.environ.get(FILE_ENV)
        if not path:
            log.warning("OTEL_TRACES_EXPORTER=%s needs %s; no spans will be written", FILE_EXPORTER, FILE_ENV)
            return None
        return SimpleSpanProcessor(JsonLinesExporter(path))  # written as each span ends: a crash loses none
    from importlib.metadata import entry_points

    found = list(entry_points(group="opentelemetry_traces_exporter", name=name))
    if not found:
        log.warning("no OpenTelemetry trace exporter named %r is installed; it is ignored", name)
        return None
    exporter = found[0].load()()
    return SimpleSpanProcessor(exporter) if name == "console" else BatchSpanProcessor(exporter)


def flush() -> None:
    """Export what is buffered (a prefork child exits without running atexit handlers)."""
    tracer = _state["tracer"]
    if tracer is None:
        return
    provider = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush(5000)


# ------------------------------------------------------------------ carriers


def current_carrier() -> dict[str, str] | None:
    """The active span's context as W3C headers, to store with an execution (None when tracing is off)."""
    if not active():
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def _context_from(carrier: Mapping[str, str] | None) -> Any:
    return propagate.extract(dict(carrier)) if carrier else None


@contextmanager
def continued_from(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Make an incoming context (HTTP `traceparent`, the CLI's TRACEPARENT) the parent of spans in the block."""
    if not carrier or not active():
        yield
        return
    token = otel_context.attach(propagate.extract(dict(carrier)))
    try:
        yield
    finally:
        otel_context.detach(token)


def environment_carrier() -> dict[str, str]:
    """TRACEPARENT / TRACESTATE from the environment: how a calling script hands its trace to the CLI."""
    found = {"traceparent": os.environ.get("TRACEPARENT"), "tracestate": os.environ.get("TRACESTATE")}
    return {k: v for k, v in found.items() if v}


# ------------------------------------------------------------------ spans


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, Any],
    *,
    parent: Mapping[str, str] | None = None,
    kind: str = "internal",
    links: Sequence[Mapping[str, str]] = (),
) -> Iterator[Any]:
    """A span (a no-op object when tracing is off); an exception escaping the block marks it as an error."""
    tracer = _tracer()
    if tracer is None:
        yield _NO_SPAN
        return
    span_links = []
    for carrier in links:
        linked = trace.get_current_span(_context_from(carrier)).get_span_context()
        if linked.is_valid:
            span_links.append(trace.Link(linked))
    with tracer.start_as_current_span(
        name,
        context=_context_from(parent),
        kind=getattr(SpanKind, kind.upper()),
        attributes={k: v for k, v in attributes.items() if v is not None},
        links=span_links,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except Exception as exc:
            current.record_exception(exc)
            current.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise


def set_attributes(attributes: Mapping[str, Any]) -> None:
    """Set attributes on the current span (overwriting those it was started with)."""
    if not active():
        return
    trace.get_current_span().set_attributes({k: v for k, v in attributes.items() if v is not None})


def add_event(name: str, attributes: Mapping[str, Any]) -> None:
    if not active():
        return
    trace.get_current_span().add_event(name, {k: v for k, v in attributes.items() if v is not None})


def mark_error(current: Any, description: str) -> None:
    if active() and current is not _NO_SPAN:
        current.set_status(Status(StatusCode.ERROR, description))


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        return None


_NO_SPAN = _NoSpan()


# ------------------------------------------------------------------ file exporter


class JsonLinesExporter:
    """One JSON object per finished span, appended to a file: for tests and local debugging. Each line is one
    `write` on a file opened for appending, so processes sharing the file do not interleave lines."""

    def __init__(self, path: str) -> None:
        self._path = path

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        lines = "".join(json.dumps(_span_json(s), default=str) + "\n" for s in spans)
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _span_json(finished: Any) -> dict[str, Any]:
    context = finished.get_span_context()
    parent = finished.parent
    return {
        "name": finished.name,
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_span_id": format(parent.span_id, "016x") if parent is not None else None,
        "kind": finished.kind.name,
        "status": finished.status.status_code.name,
        "start": finished.start_time,
        "end": finished.end_time,
        "attributes": dict(finished.attributes or {}),
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in finished.events],
        "links": [format(link.context.span_id, "016x") for link in finished.links],
        "pid": os.getpid(),
    }


def attach_incoming(headers: Mapping[str, str]) -> Any:
    """Make a request's `traceparent` the current context, unless a span is already current (a host app's own
    instrumentation started one); returns the token for `detach`, or None."""
    if not active() or trace.get_current_span().get_span_context().is_valid:
        return None
    carrier = {k.lower(): v for k, v in headers.items() if k.lower() in ("traceparent", "tracestate")}
    return otel_context.attach(propagate.extract(carrier)) if carrier else None


def detach(token: Any) -> None:
    if token is not None:
        otel_context.detach(token)
