"""Logs, worker metrics and traces from real worker processes (and a real API server for the trace)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.harness import REPO, Worker, poll
from tests.workflows import entries
from zart.localservices import free_port


def worker_lines(worker: Worker) -> list[str]:
    return worker.log_path.read_text(errors="replace").splitlines()


def test_log_lines_from_inside_a_step_carry_the_execution(service, start_worker, log_dir, unique):
    worker = start_worker()
    execution_id = unique("logs")
    service.schedule("t.logs", {"journal": str(log_dir / "j")}, execution_id=execution_id)
    assert service.wait(execution_id, 30)[0]
    line = poll(
        lambda: next((x for x in worker_lines(worker) if "charging card for charge" in x), None),
        what="the step's own log line",
    )
    assert line.endswith(f"[execution_id={execution_id} task=t.logs run=0 step=charge attempt=1]"), line


def test_an_app_that_configures_logging_itself_still_gets_the_execution_fields(
    env, service, start_worker, log_dir, unique
):
    worker = start_worker(ZART_IMPORTS=f"{env.imports},tests.own_logging")
    execution_id = unique("own-logs")
    service.schedule("t.logs", {"journal": str(log_dir / "j")}, execution_id=execution_id)
    assert service.wait(execution_id, 30)[0]
    line = poll(
        lambda: next((x for x in worker_lines(worker) if "charging card for charge" in x), None),
        what="the step's own log line",
    )
    assert line.startswith("OWN WARNING tests.user-code"), line  # the app's own format is kept
    assert line.endswith(f"[execution_id={execution_id} task=t.logs run=0 step=charge attempt=1]"), line


def test_json_log_format_gives_one_object_per_line(service, start_worker, log_dir, unique):
    worker = start_worker(ZART_LOG_FORMAT="json")
    execution_id = unique("json-logs")
    service.schedule("t.logs", {"journal": str(log_dir / "j")}, execution_id=execution_id)
    assert service.wait(execution_id, 30)[0]

    def the_line() -> dict | None:
        for line in worker_lines(worker):
            if line.startswith("{") and "charging card" in line:
                return json.loads(line)
        return None

    entry = poll(the_line, what="the step's JSON log line")
    assert entry["message"] == "charging card for charge" and entry["level"] == "WARNING"
    assert entry["logger"] == "tests.user-code"
    assert (entry["execution_id"], entry["task"], entry["run"], entry["step"]) == (execution_id, "t.logs", 0, "charge")
    # every line the worker's logging wrote is JSON, not just those inside a run
    logged = [line for line in worker_lines(worker) if line.startswith("{")]
    assert len(logged) > 1 and all(json.loads(line)["level"] for line in logged)


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_worker_metrics_sum_every_prefork_child(service, start_worker, log_dir, unique):
    port = free_port()
    start_worker(concurrency=3, args=("--metrics-port", str(port)))
    journal = log_dir / "bodies.journal"
    busy = [  # three one-second steps at once occupy three pool children, whatever the scheduling order
        service.schedule("t.long-step", {"journal": str(journal), "seconds": 1.0}, execution_id=unique("busy"))
        .execution["execution_id"]
        for _ in range(3)
    ]
    ids = [
        service.schedule("t.three-steps", {"journal": str(journal)}, execution_id=unique("metrics")).execution[
            "execution_id"
        ]
        for _ in range(12)
    ]
    for execution_id in busy + ids:
        assert service.wait(execution_id, 30)[0]
    pids = {line.split(" ")[1] for line in journal.read_text().splitlines()}
    assert len(pids) > 1, "every execution ran in one pool child; the sum across children is not shown"

    step = 'zart_step_duration_seconds_count{step="b",task="t.three-steps"}'
    finished = 'zart_runs_finished_total{status="completed",task="t.three-steps"}'
    samples = poll(
        lambda: (s := scrape(port)).get(step) == 12
        and s.get(finished) == 12
        and s.get("zart_sweep_duration_seconds_count", 0) > 0  # the sweeper, in the worker's main process
        and s,
        timeout=45,
        what="all twelve runs and a sweeper pass to be counted (a run is counted just after it commits)",
    )
    assert samples['zart_step_duration_seconds_bucket{le="+Inf",step="b",task="t.three-steps"}'] == 12
    assert samples['zart_step_attempts_total{step="a",task="t.three-steps"}'] == 12
    assert samples['zart_runs_claimed_total{task="t.three-steps"}'] >= 12
    assert samples["zart_sweep_duration_seconds_count"] > 0


def test_worker_metrics_count_failures_and_lease_losses(service, start_worker, log_dir, unique):
    port = free_port()
    start_worker(ZART_METRICS_PORT=str(port))  # the variable does what --metrics-port does
    journal, release = str(log_dir / "j"), str(log_dir / "release")
    flaky = service.schedule("t.retry-fixed", {"journal": journal}, execution_id=unique("flaky")).execution
    failed = service.schedule("t.fails", {}, execution_id=unique("fails")).execution
    blocked = service.schedule("t.blocking", {"journal": journal, "release": release}, execution_id=unique("cut"))
    for execution in (flaky, failed):
        assert service.wait(execution["execution_id"], 30)[0]
    poll(lambda: entries(journal, "b") == 1, what="the blocking step to start")
    service.cancel(blocked.execution["execution_id"])  # the running worker loses its lease at its next write
    Path(release).touch()

    lost = 'zart_lease_losses_total{task="t.blocking"}'
    samples = poll(lambda: (s := scrape(port)).get(lost) == 1 and s, what="the lease loss")
    assert samples['zart_step_attempts_total{step="flaky",task="t.retry-fixed"}'] == 3
    assert samples['zart_step_failures_total{step="flaky",task="t.retry-fixed"}'] == 2
    assert samples['zart_runs_finished_total{status="failed",task="t.fails"}'] == 1
    assert samples['zart_runs_suspended_total{task="t.retry-fixed"}'] >= 1  # parked for the retry back-off


# ------------------------------------------------------------------ tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def spans_of(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture()
def traced(env, tmp_path):
    spans = tmp_path / "spans.jsonl"
    return spans, {"OTEL_TRACES_EXPORTER": "zart_jsonl", "ZART_TRACES_FILE": str(spans), "OTEL_SERVICE_NAME": "t"}


def test_one_trace_follows_an_execution_from_http_through_a_crash_to_the_end(env, traced, tmp_path, service):
    spans_file, otel = traced
    first = Worker(env, tmp_path, 2, **otel)
    second = None
    try:
        first.wait_ready()
        journal, release = tmp_path / "j", tmp_path / "release"
        with api_server(env, otel, tmp_path) as base:
            execution_id = post(
                f"{base}/api/v1/executions",
                {"task": "t.traced", "data": {"journal": str(journal), "release": str(release)}},
            )["execution_id"]
        poll(lambda: entries(str(journal), "held") == 1, what="the held step to start on the first worker")
        # the child's run span is written after its finish commits, which may let the parent resume first
        poll(
            lambda: any(s["name"] == "zart.run zart.child-function" for s in spans_of(spans_file)),
            what="the child's run span",
        )
        first.kill()
        second = Worker(env, tmp_path, 2, **otel).wait_ready()
        release.touch()
        done, row = service.wait(execution_id, 60)
        assert done and row["status"] == "completed", row
        spans = poll(lambda: [s for s in spans_of(spans_file) if s["trace_id"] == TRACE_ID] or None, what="spans")
        poll(
            lambda: len([s for s in spans_of(spans_file) if s["name"] == "zart.run t.traced"]) >= 2,
            what="the recovered run's span",
        )
        spans = [s for s in spans_of(spans_file) if s["trace_id"] == TRACE_ID]
        survivors = {pid for pid in _pids(second)}
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()

    by_id = {s["span_id"]: s for s in spans}
    naming = [s for s in spans_of(spans_file) if s["attributes"].get("zart.execution_id") == execution_id]
    assert {s["trace_id"] for s in naming} == {TRACE_ID}  # every span naming the execution is in the caller's trace
    (schedule,) = [s for s in spans if s["name"] == "zart.schedule t.traced"]
    assert schedule["parent_span_id"] == CALLER_SPAN  # the HTTP caller's traceparent was continued
    assert schedule["attributes"]["zart.execution_id"] == execution_id

    runs = [s for s in spans if s["name"] == "zart.run t.traced"]
    assert all(run["parent_span_id"] == schedule["span_id"] for run in runs)
    assert all(run["attributes"]["zart.execution_id"] == execution_id for run in runs)
    suspended = [r for r in runs if r["attributes"]["zart.outcome"] == "suspended"]
    (recovered,) = [r for r in runs if r["attributes"]["zart.outcome"] == "completed"]
    assert recovered["pid"] in survivors  # finished by the second worker, after the first was killed
    assert all(r["pid"] not in survivors for r in suspended)
    waits = [e for r in suspended for e in r["events"] if e["name"] == "zart.wait"]
    assert waits and waits[0]["attributes"]["zart.wait.kind"] == "children"

    steps = {(s["attributes"]["zart.step"], s["parent_span_id"]) for s in spans if s["name"].startswith("zart.step")}
    assert ("first", suspended[0]["span_id"]) in steps
    assert ("held", recovered["span_id"]) in steps
    held = [s for s in spans if s["name"] == "zart.step held" and s["parent_span_id"] == recovered["span_id"]]
    assert held[0]["attributes"]["zart.step.attempt"] == 1  # the killed attempt was never checkpointed

    child_runs = [s for s in spans if s["name"] == "zart.run zart.child-function"]
    assert child_runs and by_id[child_runs[0]["parent_span_id"]]["name"] == "zart.run t.traced"
    assert child_runs[0]["attributes"]["zart.parent_id"] == execution_id
    assert any(s["name"] == "zart.step child" and s["parent_span_id"] == child_runs[0]["span_id"] for s in spans)


@contextmanager
def api_server(env, otel: dict[str, str], directory: Path) -> Iterator[str]:
    """`zart server` with tracing on, in its own process; yields its base URL."""
    port = free_port()
    with open(directory / "server.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "zart", "server", "--port", str(port), "--threads", "16"],
            cwd=REPO,
            env=env.variables(**otel),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        poll(lambda: _status(f"{base}/healthz") == 200 or server.poll() is not None, what="the server")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=15)


def post(url: str, body: object) -> dict:
    """A POST from a caller whose own trace is TRACE_ID (its span CALLER_SPAN)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def test_an_event_delivery_joins_the_trace_of_the_execution(env, traced, tmp_path, start_worker, service):
    spans_file, otel = traced
    start_worker(**otel)
    with api_server(env, otel, tmp_path) as base:
        execution_id = post(f"{base}/api/v1/executions", {"task": "t.event", "data": {"journal": str(tmp_path / "j")}})[
            "execution_id"
        ]
        poll(lambda: service.status(execution_id)["status"] == "waiting", what="the execution to wait for its event")
        post(f"{base}/api/v1/events/{execution_id}/approval", {"ok": True})
    assert service.wait(execution_id, 30)[0]
    spans = poll(
        lambda: (
            (found := [s for s in spans_of(spans_file) if s["trace_id"] == TRACE_ID])
            and any(s["attributes"].get("zart.outcome") == "completed" for s in found)
            and found
        ),
        what="the spans of the execution's last run",
    )
    (schedule,) = [s for s in spans if s["name"] == "zart.schedule t.event"]
    (event,) = [s for s in spans if s["name"] == "zart.event approval"]
    assert event["parent_span_id"] == schedule["span_id"]  # in the execution's trace, under its schedule
    assert event["links"] == [CALLER_SPAN]  # and linked to the caller that delivered it
    assert event["attributes"]["zart.execution_id"] == execution_id
    waited = [e for s in spans if s["name"] == "zart.run t.event" for e in s["events"] if e["name"] == "zart.wait"]
    assert waited and waited[0]["attributes"]["zart.event"] == "approval"


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except OSError:
        return 0


def _pids(worker: Worker) -> list[int]:
    """The worker's processes: its session (it was started in a session of its own)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == worker.process.pid:
                    found.append(int(entry))
            except OSError:
                continue
    return found


HOST_APP_CONFIGURES_TRACING_LATER = """
import json, sys
from flask import Flask
from flask_app import init_zart

app = Flask("host")
init_zart(app)  # before the app sets up OpenTelemetry, as a factory that wires extensions first does

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

response = app.test_client().post(
    "/api/v1/executions",
    json={"task": "t.typed", "data": {"amount": 1}},
    headers={"traceparent": sys.argv[1]},
)
assert response.status_code == 201, response.get_json()
spans = [
    {"name": s.name, "trace_id": format(s.context.trace_id, "032x"), "parent": format(s.parent.span_id, "016x")}
    for s in exporter.get_finished_spans() if s.parent is not None
]
print(json.dumps(spans))
"""


def test_a_provider_the_host_app_sets_after_init_zart_is_used(env):
    """OpenTelemetry is often configured after the app's extensions: zart must not have decided for good that
    tracing is off when init_zart ran."""
    done = subprocess.run(
        [sys.executable, "-c", HOST_APP_CONFIGURES_TRACING_LATER, f"00-{TRACE_ID}-{CALLER_SPAN}-01"],
        cwd=REPO,
        env=env.variables(OTEL_TRACES_EXPORTER=""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    spans = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"name": "zart.schedule t.typed", "trace_id": TRACE_ID, "parent": CALLER_SPAN} in spans


REFUSED_AND_REPEATED = """
import sys
from zart.config import load_settings
from zart.errors import NotWaitingForEvent
from zart.service import ZartService

service = ZartService(load_settings())
first = service.schedule("t.typed", {"amount": 1}, idempotency_key=sys.argv[1]).execution["execution_id"]
again = service.schedule("t.typed", {"amount": 1}, idempotency_key=sys.argv[1])
assert not again.created and again.execution["execution_id"] == first
try:
    service.send_event(first, "approval", {"ok": True})  # pending, not waiting: refused
except NotWaitingForEvent:
    pass
else:
    raise AssertionError("the event was accepted")
print(first)
"""


def test_a_refused_event_and_a_repeated_schedule_are_told_truly_by_their_spans(env, traced, unique):
    spans_file, otel = traced
    done = subprocess.run(
        [sys.executable, "-c", REFUSED_AND_REPEATED, unique("repeat-key")],
        cwd=REPO,
        env=env.variables(**otel),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    execution_id = done.stdout.strip().splitlines()[-1]
    spans = spans_of(spans_file)
    (event,) = [s for s in spans if s["name"] == "zart.event approval"]
    assert event["status"] == "ERROR"  # nothing was delivered
    schedules = [s for s in spans if s["name"] == "zart.schedule t.typed"]
    assert len(schedules) == 2
    assert [s["attributes"]["zart.execution_id"] for s in schedules] == [execution_id, execution_id]
