"""Celery canvases (chain, group, chord, nested, callbacks) run as one durable execution by the legacy fleet's
own workers, with Postgres as the join: the Celery canvas failures users know, built here, do not happen."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import chain, chord, group

import zart.canvas
import zart.canvas.workflow  # noqa: F401  (registers zart.canvas in this process, as a worker does)
from tests.celery.test_remote_steps import remote_rows
from tests.harness import poll
from tests.integration.test_core import finished
from tests.legacy.app import wait_for_file
from tests.legacy.canvas_tasks import collect, fail, fail_when_released, flaky, on_error, plus, total
from tests.workflows import entries
from zart.canvas.build import canvas_input
from zart.errors import InvalidData


@pytest.fixture()
def run(service, log_dir):
    """Start a canvas built by `build(journal)`; returns (execution id, journal)."""

    def start(build: Any, **options: Any) -> tuple[str, str]:
        journal = str(log_dir / f"canvas-{time.monotonic_ns()}.journal")
        data = canvas_input(build(journal), **options)
        return service.schedule(zart.canvas.CANVAS_TASK, data).execution["execution_id"], journal

    return start


def test_a_chain_passes_each_result_on_and_an_immutable_signature_ignores_it(service, zart_worker, legacy_worker, run):
    execution_id, journal = run(lambda j: chain(plus.s(1, j, 2), plus.s(j, 10), plus.si(100, j, 1), plus.s(j, 5)))
    assert finished(service, execution_id)["output"] == 106
    assert entries(journal, "plus") == 4
    names = [s["name"] for s in service.steps(execution_id)]
    assert names == ["0.0 legacy.plus", "0.1 legacy.plus", "0.2 legacy.plus", "0.3 legacy.plus"]


def test_a_failing_link_callback_stops_only_itself(service, zart_worker, legacy_worker, run):
    """As in Celery: a task's `link` runs with its result, but its failure neither fails the chain nor runs the
    task's own `link_error` (the task succeeded); the callback's own error callback runs."""

    def build(j: str) -> Any:
        first = plus.s(1, j, 2).set(
            link=fail.si(j, "audit is down").set(link_error=on_error.si("x", j, "audit-error")),
            link_error=on_error.si("x", j, "first-error"),
        )
        return chain(first, plus.s(j, 10))

    execution_id, journal = run(build)
    assert finished(service, execution_id)["output"] == 13
    assert (entries(journal, "plus"), entries(journal, "fail"), entries(journal, "audit-error")) == (2, 1, 1)
    assert entries(journal, "first-error") == 0


def test_a_group_and_a_chord_of_chains(service, zart_worker, legacy_worker, run):
    group_id, _ = run(lambda j: group(plus.s(n, j, 1) for n in range(4)))
    chord_id, journal = run(
        lambda j: chord([chain(plus.s(n, j, 1), plus.s(j, 10)) for n in range(3)], total.s(j))
    )
    assert finished(service, group_id)["output"] == [1, 2, 3, 4]
    assert finished(service, chord_id)["output"] == 11 + 12 + 13
    assert entries(journal, "total") == 1 and entries(journal, "plus") == 6


def test_a_failing_task_in_a_nested_chain_inside_a_chord_runs_the_error_callback_once(
    service, zart_worker, legacy_worker, run
):
    """Celery: the chord's error callback never runs when a chain inside it fails, or the chord hangs."""

    def build(j: str) -> Any:
        body = total.s(j).on_error(on_error.s(j, "chord-errback"))
        header = [plus.s(1, j, 1), chain(plus.s(2, j, 1), fail.si(j, "card declined"), plus.s(j, 1))]
        return chord(header, body)

    execution_id, journal = run(build)
    row = finished(service, execution_id)
    assert row["status"] == "failed"
    assert row["error"]["cause"] == "ValueError" and "card declined" in row["error"]["message"]
    assert entries(journal, "chord-errback") == 1
    assert entries(journal, "total") == 0 and entries(journal, "fail") == 1
    assert entries(journal, "plus") == 2  # the task after the failed one never started


def test_retry_step_resumes_a_failed_canvas_from_the_failed_task(
    env, service, zart_worker, legacy_worker, run, log_dir
):
    from tests.cli.cli import Cli
    from zart.admin import AdminService

    release = str(log_dir / "released")

    def build(j: str) -> Any:
        return chain(plus.s(1, j, 1), flaky.s(j, release), plus.s(j, 10)).on_error(on_error.s(j, "errback"))

    execution_id, journal = run(build)
    assert finished(service, execution_id)["status"] == "failed"
    assert entries(journal, "errback") == 1 and entries(journal, "plus") == 1
    assert service.status(execution_id)["error"]["step"] == "0.1 legacy.flaky"
    tree = Cli(env, log_dir)("status", execution_id, "--verbose").stdout
    assert "chain 0" in tree and "0.1 legacy.flaky: failed" in tree and "0.2 legacy.plus: not started" in tree
    assert_admin_detail_draws_the_tree(env, log_dir, execution_id)
    open(release, "w").close()
    AdminService(service).retry_step(execution_id, "0.1 legacy.flaky", triggered_by="test")
    row = finished(service, execution_id)
    assert row["output"] == 12, row["error"]
    assert entries(journal, "plus") == 2 and entries(journal, "flaky") == 2
    assert entries(journal, "errback") == 1


def test_retry_step_resumes_a_canvas_whose_failed_round_also_sent_a_link_callback(
    service, zart_worker, legacy_worker, run, log_dir
):
    """The failed task's round also sent a link callback of another member, entered after it: the error
    callback was recorded after both, and the replay looked for it right after the failed task only, did not
    re-enter it, and met it where the chord's body now goes (a NonDeterminismError instead of the result)."""
    from zart.admin import AdminService

    release = str(log_dir / "released-link-round")

    def build(j: str) -> Any:
        header = [chain(plus.s(1, j, 1), flaky.s(j, release)), plus.s(5, j, 0).set(link=collect.s(j, "linked"))]
        return chord(header, total.s(j).on_error(on_error.s(j, "errback")))

    execution_id, journal = run(build)
    assert finished(service, execution_id)["status"] == "failed"
    assert entries(journal, "errback") == 1 and entries(journal, "linked") == 1
    open(release, "w").close()
    AdminService(service).retry_step(execution_id, "0.0.1 legacy.flaky", triggered_by="test")
    row = finished(service, execution_id)
    assert row["status"] == "completed", row["error"]
    assert row["output"] == 2 + 5
    assert (entries(journal, "errback"), entries(journal, "linked"), entries(journal, "total")) == (1, 1, 1)


def assert_admin_detail_draws_the_tree(env: Any, log_dir: Any, execution_id: str) -> None:
    """`zart admin detail` and the admin API's detail show the same tree with each task's state."""
    import json

    from flask_app import create_app
    from tests.cli.cli import Cli

    cli = Cli(env, log_dir)
    text = cli("admin", "detail", execution_id).stdout
    assert "canvas:" in text and "  chain 0" in text
    assert "0.0 legacy.plus: completed" in text and "0.1 legacy.flaky: failed" in text
    assert "0.2 legacy.plus: not started" in text and "on error: 0.error0 legacy.on_error: completed" in text
    printed = json.loads(cli("admin", "detail", execution_id, "--json").stdout)["canvas"]
    response = create_app(settings=env.settings()).test_client().get(f"/zart/admin/v1/executions/{execution_id}/detail")
    assert response.status_code == 200
    served = response.get_json()["canvas"]
    assert served == printed
    chain = served["root"]
    assert (chain["kind"], [m["status"] for m in chain["members"]]) == ("chain", ["completed", "failed", "not started"])
    assert [m["step"] for m in chain["members"]] == ["0.0 legacy.plus", "0.1 legacy.flaky", "0.2 legacy.plus"]
    assert [(c["step"], c["status"]) for c in chain["link_error"]] == [("0.error0 legacy.on_error", "completed")]
    assert served["countdown"] is None and response.get_json()["steps"]  # the existing fields are still there
    page = create_app(settings=env.settings()).test_client().get(f"/ui/executions/{execution_id}")
    assert page.status_code == 200 and '<pre class="canvas-tree">chain 0\n' in page.text
    assert "  0.1 legacy.flaky: failed\n" in page.text and "  0.2 legacy.plus: not started" in page.text


def test_a_second_failure_seen_while_the_first_ones_error_callback_runs_changes_nothing(
    service, zart_worker, start_legacy, run, log_dir
):
    """A replay that sees an earlier group member failed too still re-enters the callbacks already recorded:
    no non-determinism, no second set of callbacks."""
    start_legacy(concurrency=3)
    late, callback_done = str(log_dir / "release-late"), str(log_dir / "release-callback")

    def build(j: str) -> Any:
        return group(
            fail_when_released.si(j, late).on_error(on_error.si("late", j, "late-errback")),
            fail.si(j, "early").on_error(wait_for_file.si(j, "early-errback", callback_done, "x")),
        )

    execution_id, journal = run(build)
    poll(lambda: entries(journal, "early-errback") == 1, what="the first failure's error callback to start")
    open(late, "w").close()
    late_step = "0.0 legacy.fail_when_released"
    poll(lambda: [r["state"] for r in remote_rows(service, execution_id) if r["step_name"] == late_step] == ["failed"],
         what="the second failure to be recorded")
    open(callback_done, "w").close()
    row = finished(service, execution_id)
    assert row["status"] == "failed" and row["error"]["type"] == "StepFailed", row["error"]
    assert entries(journal, "early-errback-end") == 1 and entries(journal, "late-errback") == 0


def test_a_nested_chord_runs_each_body_once(service, zart_worker, legacy_worker, run):

    def build(j: str) -> Any:
        inner = chord([plus.s(n, j, 0) for n in range(3)], total.s(j))
        return chord([inner, plus.s(10, j, 0)], collect.s(j, "outer-body").set(link=collect.s(j, "linked")))

    execution_id, journal = run(build)
    assert finished(service, execution_id)["output"] == [3, 10]
    assert entries(journal, "total") == 1 and entries(journal, "outer-body") == 1
    assert entries(journal, "linked") == 1


def test_a_worker_killed_mid_task_in_a_chords_header_is_replaced_and_the_body_runs_once(
    service, zart_worker, start_legacy, run, log_dir
):
    victim = start_legacy()
    release = str(log_dir / "release")

    def build(j: str) -> Any:
        header = [wait_for_file.si(j, "slow", release, "a"), plus.s(1, j, 1)]
        return chord(header, collect.s(j, "body"))

    execution_id, journal = run(build)
    slow = "0.0 legacy.wait_for_file"
    poll(lambda: [r["state"] for r in remote_rows(service, execution_id) if r["step_name"] == slow] == ["started"],
         what="the worker to report the slow header task started")
    # The other header task may still be in the worker's hands, received but not started: once the worker has
    # said it holds it, a kill must be noticed within about a lease either way (not after the dispatch timeout).
    poll(lambda: all(r["worker"] is not None for r in remote_rows(service, execution_id)),
         what="the worker to report every header task it holds")
    victim.kill()
    open(release, "w").close()
    start_legacy()
    done, row = service.wait(execution_id, 60)
    assert done, (row["status"], remote_rows(service, execution_id))
    assert row["output"] == ["a", 2]
    assert entries(journal, "slow") == 2 and entries(journal, "body") == 1


def test_cancelling_a_canvas_revokes_its_celery_tasks_still_queued(
    env, service, zart_worker, start_legacy, run, log_dir
):
    """A cancelled canvas left the tasks it had sent in the fleet's queue: each still ran on the fleet when its
    turn came (its result ignored). The sweeper now revokes the in-flight tasks of a cancelled run, so a task
    not started yet never runs; the cancel itself stays a write to the store, made here with no broker at hand."""
    from tests.cli.cli import Cli

    start_legacy("tests.legacy.integrated", 1)  # one task at a time: the other one waits in the queue
    release = str(log_dir / f"release-{time.monotonic_ns()}")
    execution_id, journal = run(
        lambda j: group(wait_for_file.si(j, "a", release, "a"), wait_for_file.si(j, "b", release, "b"))
    )
    poll(lambda: entries(journal, "a") + entries(journal, "b") == 1, what="one of the two tasks to start")
    cancelled = Cli(env, log_dir)("cancel", execution_id, ZART_BROKER_URL="redis://127.0.0.1:9/0")  # no broker
    assert cancelled.returncode == 0, cancelled
    in_flight = ("sent", "started", "retry")
    poll(lambda: not [r for r in remote_rows(service, execution_id) if r["state"] in in_flight],
         what="the cancelled run's tasks to be revoked")
    open(release, "w").close()
    # FIFO on one worker process: once a task sent after the revoked one has run, the revoked one had its turn
    marker_id, _ = run(lambda _: plus.s(0, journal, 1))
    assert finished(service, marker_id)["output"] == 1
    assert entries(journal, "a") + entries(journal, "b") == 1, "a revoked task ran"
    assert service.status(execution_id)["status"] == "cancelled"


def test_a_countdown_is_held_in_postgres_while_redis_is_flushed_and_workers_restart(
    service, env, start_zart, start_legacy, run
):
    zart_worker = start_zart()
    legacy = start_legacy()
    execution_id, journal = run(lambda j: chain(plus.s(1, j, 1), plus.s(j, 1)), countdown=4)
    poll(lambda: service.status(execution_id)["status"] == "waiting", what="the countdown to park")
    zart_worker.stop()
    legacy.stop()
    import redis

    redis.Redis.from_url(env.broker_url).flushall()
    assert entries(journal, "plus") == 0
    start_zart()
    start_legacy()
    row = finished(service, execution_id, timeout=40)
    assert row["output"] == 3 and entries(journal, "plus") == 2
    countdown = next(s for s in service.steps(execution_id) if s["name"] == "countdown")
    assert countdown["status"] == "completed"


def test_a_100_task_chord_and_a_50_task_chain(service, start_zart, start_legacy, run):
    start_zart(concurrency=2)
    start_legacy(concurrency=4)
    chord_id, chord_journal = run(lambda j: chord([plus.s(n, j, 0) for n in range(100)], total.s(j)))
    chain_id, _ = run(lambda j: chain(plus.s(0, j, 1), *[plus.s(j, 1) for _ in range(49)]))
    assert finished(service, chord_id, timeout=90)["output"] == sum(range(100))
    assert finished(service, chain_id, timeout=90)["output"] == 50
    assert entries(chord_journal, "total") == 1


class RecordedRun:
    """The context a walk replays against, for a run in which every task completed with 1: a stand-in for the
    engine (the walk asks it only to enter steps, for their results and for recorded positions)."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}

    def schedule(self, name: str, signature: Any) -> str:
        self.positions.setdefault(name, len(self.positions))
        return name

    def wait_all(self, handles: list[str]) -> list[int]:
        return [1] * len(handles)

    def recorded_position(self, name: str) -> int | None:
        return self.positions.get(name)


def widest_chord(size: int) -> Any:
    return chord([plus.s(n, "-", 1) for n in range(size - 1)], total.s("-"))


def longest_chain(size: int) -> Any:
    return chain(plus.s(0, "-", 1), *[plus.s("-", 1) for _ in range(size - 1)])


@pytest.mark.parametrize("build", [widest_chord, longest_chain])
def test_a_replay_of_a_canvas_of_the_most_tasks_allowed_takes_linear_time(build):
    """Each replay walks the canvas again, a round at a time. Finding a task's error callbacks scanned every
    sibling of its ancestors, so a round of a wide group cost the square of its width; and each round walked
    the chain from its first task, so a replay of a long chain cost the square of its length (a minute each
    for 10,000 tasks, on every replay)."""
    from zart.canvas.workflow import Walk
    from zart.celery.canvas import MAX_TASKS, parse

    root = parse(canvas_input(build(MAX_TASKS))["canvas"])
    started = time.monotonic()
    assert Walk(RecordedRun(), root).run() == 1
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "data, problem",
    [
        ({"canvas": "legacy.add"}, "must be a Celery signature"),
        ({"canvas": {"task": "celery.chain", "subtask_type": "chain", "kwargs": {"tasks": []}}}, "at least one"),
        ({"canvas": {"task": "x", "subtask_type": "xmap"}}, "not a canvas type"),
        ({"canvas": {"task": "legacy.add", "args": "1,2"}}, "args must be an array"),
        ({"canvas": {"task": "legacy.add"}, "start_at": "tomorrow"}, "start_at"),
        ({"canvas": {"task": "legacy." + "x" * 193}}, "task name of 1 to 198 characters"),
        ({}, "data.canvas is required"),
    ],
)
def test_bad_input_is_refused_and_nothing_starts(service, data, problem):
    _, before = service.list_executions(task=zart.canvas.CANVAS_TASK)
    with pytest.raises(InvalidData, match=problem):
        service.schedule(zart.canvas.CANVAS_TASK, data)
    assert service.list_executions(task=zart.canvas.CANVAS_TASK)[1] == before


def test_a_python_canvas_with_arguments_that_are_not_json_is_refused(log_dir):
    with pytest.raises(zart.canvas.CanvasError, match="JSON"):
        canvas_input(chain(plus.s(1, str(log_dir), 1), plus.s({1, 2}, 3)))
    with pytest.raises(zart.canvas.CanvasError, match="Celery signature"):
        canvas_input("legacy.plus")


def test_a_python_canvas_routed_to_a_queue_name_zart_cannot_use_is_refused_as_bad_input(log_dir):
    """The route's ValueError escaped as it was, not as the CanvasError `zart.canvas.apply` documents."""
    with pytest.raises(zart.canvas.CanvasError, match="queue name 'zart:ready'"):
        canvas_input(group(plus.s(1, str(log_dir), 1), plus.s(2, str(log_dir), 1).set(queue="zart:ready")))


@pytest.mark.parametrize("option", ["countdown", "eta", "expires", "priority"])
def test_a_countdown_eta_expires_or_priority_inside_a_canvas_is_refused_by_name(service, option):
    """`.set(countdown=60)` on a task of a canvas was silently dropped: the task ran at once (and eta, expires and
    priority likewise). Inside the round-by-round walk a per-task delay would hold up its whole round, and a
    Celery ETA or expiry would live in Redis and in worker memory, where the dispatch timeout mistakes it for a
    lost message; so they are refused when the canvas is started, naming the option (a whole canvas is delayed
    durably by `zart.canvas.apply(countdown=..., eta=...)`)."""
    value = {"countdown": 60, "eta": datetime.now(UTC) + timedelta(minutes=1), "expires": 60, "priority": 5}[option]
    inner = chain(plus.s(1, "-", 1), group(plus.s("-", 1).set(**{option: value}), plus.s("-", 2)))
    with pytest.raises(zart.canvas.CanvasError, match=f"'{option}'.*0.1.0 legacy.plus"):
        canvas_input(inner)
    with pytest.raises(zart.canvas.CanvasError, match=f"'{option}' of the chain at 0 "):
        canvas_input(chain(plus.s(1, "-", 1), plus.s("-", 1)).set(**{option: value}))
    _, before = service.list_executions(task=zart.canvas.CANVAS_TASK)
    data = {"canvas": {"task": "legacy.add", "args": [1, 2], "options": {option: 60}}}
    with pytest.raises(InvalidData, match=f"'{option}'"):
        service.schedule(zart.canvas.CANVAS_TASK, data)
    assert service.list_executions(task=zart.canvas.CANVAS_TASK)[1] == before


def test_a_queue_set_on_a_group_chord_or_chain_routes_its_tasks_as_celery_does():
    """Celery sends a group's options with each member (over the member's own queue), a chord's with its header
    and its body, and a chain's with its first task; zart kept only each task's own route, so a group set to a
    queue of its own had its tasks sent where the task routes put them instead."""
    from zart.celery.canvas import parse

    def queues(canvas: Any) -> list[tuple[str, str | None]]:
        return [(task.path, task.queue) for task in parse(canvas_input(canvas)["canvas"]).tasks()]

    members = (plus.s(1, "-", 1).set(queue="own"), chain(plus.s(2, "-", 1), plus.s("-", 1)))
    assert queues(group(*members).set(queue="gpu")) == [("0.0", "gpu"), ("0.1.0", "gpu"), ("0.1.1", "legacy")]
    assert queues(group(*members)) == [("0.0", "own"), ("0.1.0", "legacy"), ("0.1.1", "legacy")]
    header = [plus.s(1, "-", 1), group(plus.s(2, "-", 1), plus.s(3, "-", 1)).set(queue="inner")]
    body = total.s("-").set(queue="own")
    tasks = ("0.0", "0.1.0", "0.1.1", "0.body")
    assert queues(chord(header, body).set(queue="gpu")) == [(path, "gpu") for path in tasks]
    assert queues(chord(header, body)) == list(zip(tasks, ("legacy", "inner", "inner", "own"), strict=True))
    assert queues(chain(plus.s(1, "-", 1), plus.s("-", 1)).set(queue="gpu")) == [("0.0", "gpu"), ("0.1", "legacy")]


def test_the_cli_refuses_a_bad_canvas_with_exit_1(env, service, log_dir):
    from tests.cli.cli import Cli

    _, before = service.list_executions(task=zart.canvas.CANVAS_TASK)
    bad = '{"canvas": {"task": "celery.group", "subtask_type": "group", "kwargs": {"tasks": [42]}}}'
    result = Cli(env, log_dir)("schedule", zart.canvas.CANVAS_TASK, "--data", bad)
    assert result.returncode == 1
    assert "must be a Celery signature" in result.stderr + result.stdout
    assert service.list_executions(task=zart.canvas.CANVAS_TASK)[1] == before


def test_the_http_api_refuses_a_bad_canvas_with_422(env, service):
    from flask_app import create_app

    client = create_app(settings=env.settings()).test_client()
    _, before = service.list_executions(task=zart.canvas.CANVAS_TASK)
    bad = {"canvas": {"task": "legacy.add", "args": [1], "options": {"link_error": [{"task": "celery.chain",
           "subtask_type": "chain", "kwargs": {"tasks": [{"task": "legacy.add"}]}}]}}}
    response = client.post("/api/v1/executions", json={"task": zart.canvas.CANVAS_TASK, "data": bad})
    assert response.status_code == 422, response.get_json()
    assert "error callback must be a single task" in response.get_data(as_text=True)
    assert service.list_executions(task=zart.canvas.CANVAS_TASK)[1] == before
