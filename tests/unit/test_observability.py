"""Pure parts of observability: the log fields and formats, and tracing without OpenTelemetry installed."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from tests.harness import REPO
from zart.observability import logs


def record(message: str) -> logging.LogRecord:
    entry = logging.LogRecord("user", logging.INFO, __file__, 1, message, (), None)
    logs.ContextFilter().filter(entry)
    return entry


def test_fields_apply_inside_the_block_only_and_nest():
    with logs.fields(execution_id="e-1", task="t", run=0):
        with logs.fields(step="charge", attempt=2):
            inside = record("inside")
        between = record("between")
    outside = record("outside")
    text = logs.ContextTextFormatter(logging.Formatter("%(message)s"))
    assert text.format(inside) == "inside [execution_id=e-1 task=t run=0 step=charge attempt=2]"
    assert text.format(between) == "between [execution_id=e-1 task=t run=0]"
    assert text.format(outside) == "outside"
    entry = json.loads(logs.JsonFormatter().format(inside))
    assert (entry["message"], entry["execution_id"], entry["step"], entry["attempt"]) == ("inside", "e-1", "charge", 2)
    assert "step" not in json.loads(logs.JsonFormatter().format(between))


def test_tracing_is_a_no_op_without_opentelemetry():
    script = """
import sys
sys.modules["opentelemetry"] = None  # as if the optional extra were not installed
from zart.observability import hooks, tracing
assert not tracing.active()
with hooks.scheduling("t", "e-1") as carrier:
    assert carrier is None
claimed = {"id": "e-1", "task": "t", "run_index": 0, "attempt": 1, "trace_context": None}
assert hooks.run(claimed, lambda: "completed", lambda carrier: None) == "completed"
with hooks.step_attempt("t", "s", 1):
    hooks.waiting({"kind": "sleep", "step": "s"}, None)
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "OTEL_TRACES_EXPORTER": "console"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr


def test_while_tracing_is_off_a_call_does_not_read_the_configuration_again():
    """No provider and no exporter named (the default): every span of the step path (a run's, each step's, each
    park's event) re-read the whole configuration under a lock, three environment reads each (about 5 µs a call
    on the review machine); only whether a provider has been set since is asked again now, and one set late is
    still taken up."""
    script = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from zart.observability import tracing
calls = []
configure = tracing._configure
tracing._configure = lambda: (calls.append(1), configure())[1]
for _ in range(100):
    assert not tracing.active()
assert len(calls) == 1, len(calls)
trace.set_tracer_provider(TracerProvider())
assert tracing.active()
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
