"""Paths that once stranded an execution or looped it forever, each driven through real worker processes."""

from __future__ import annotations

import pytest

from tests.harness import poll


@pytest.mark.parametrize("kind", ["custom", "exit", "cancelled"])
def test_a_base_exception_in_a_step_fails_the_attempt_and_the_retry_policy_applies(service, worker, kind):
    execution_id = service.schedule("l.base-step", {"kind": kind}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "failed", row
    assert row["error"]["type"] == "StepFailed" and row["error"]["step"] == "boom"
    steps = {s["name"]: s for s in service.steps(execution_id)}
    assert steps["boom"]["attempts"] == 2  # the retry policy applied: one retry after the first failure


@pytest.mark.parametrize("kind", ["custom", "exit", "cancelled"])
def test_a_base_exception_from_the_handler_fails_the_execution(service, worker, kind):
    execution_id = service.schedule("l.base-handler", {"kind": kind}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "failed", row
    assert row["error"]["type"] in ("Interrupt", "SystemExit", "CancelledError")


def test_a_step_exception_whose_str_fails_is_recorded_as_the_attempts_failure(service, worker):
    execution_id = service.schedule("l.unprintable-step", {}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "completed", row
    assert row["output"]["caught"] == "UnprintableError", row["output"]
    assert "str() of this UnprintableError raised RuntimeError" in row["output"]["message"]
    steps = {s["name"]: s for s in service.steps(execution_id)}
    assert steps["boom"]["attempts"] == 2  # recorded as a failure, so the retry policy applied


def test_a_handler_exception_whose_str_fails_fails_the_execution_at_once(service, worker):
    """It once escaped the worker task holding the lease: recovered as a dead worker's run, again and again,
    until RecoveriesExhausted."""
    execution_id = service.schedule("l.unprintable-handler", {}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "failed", row
    assert row["error"]["type"] == "UnprintableError", row["error"]


UNSTORABLE_MESSAGES = {"nul": "bad byte \\x00 in frame", "surrogate": "no file /tmp/\\udcff"}


@pytest.mark.parametrize("kind", ["nul", "surrogate"])
def test_a_step_error_message_postgres_cannot_store_is_recorded_escaped(service, worker, kind):
    """Its failure's write was refused: the execution failed with the driver's DataError (quoting the SQL and
    its parameters) and the step's retry policy never applied."""
    execution_id = service.schedule("l.unstorable-message-step", {"kind": kind}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "completed", row
    assert row["output"] == {"caught": "ValueError", "message": UNSTORABLE_MESSAGES[kind]}
    assert {s["name"]: s["attempts"] for s in service.steps(execution_id)} == {"boom": 2}


@pytest.mark.parametrize("kind", ["nul", "surrogate"])
def test_a_handler_error_message_postgres_cannot_store_fails_the_execution_at_once(service, worker, kind):
    """Its finish was refused and escaped the worker task holding the lease: recovered as a dead worker's run
    again and again, until RecoveriesExhausted."""
    execution_id = service.schedule("l.unstorable-message-handler", {"kind": kind}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "failed", row
    assert row["error"] == {"type": "ValueError", "message": UNSTORABLE_MESSAGES[kind]}


@pytest.mark.parametrize("kind", ["nan", "inf", "nul", "surrogate"])
def test_a_step_result_postgres_cannot_store_is_a_clean_step_failure(service, worker, kind):
    execution_id = service.schedule("l.unstorable-step", {"kind": kind}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "completed", row
    assert row["output"]["caught"] == "UnstorableValue", row["output"]
    assert "cannot be stored" in row["output"]["message"]


@pytest.mark.parametrize("kind", ["nan", "nul"])
def test_an_output_postgres_cannot_store_fails_the_execution_clearly(service, worker, kind):
    execution_id = service.schedule("l.unstorable-output", {"kind": kind}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "failed", row
    assert row["error"]["type"] == "UnstorableValue" and "output cannot be stored" in row["error"]["message"]


def test_a_step_result_reads_the_same_in_the_run_that_checkpoints_it_as_in_every_replay(service, worker):
    """It was returned as the body built it the first time ({1: (9.5, 'EUR')}) but from its JSON checkpoint
    on every replay ({'1': [9.5, 'EUR']}): code like prices[1] worked until the execution's first replay."""
    execution_id = service.schedule("l.json-shaped-result", {}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "completed", row
    assert row["output"] == {"before": "{'1': [9.5, 'EUR']}", "after": "{'1': [9.5, 'EUR']}"}


def test_a_context_kept_past_its_run_runs_no_step(service, start_worker, log_dir):
    """The step's body ran, for an execution that had completed, before its write failed on the run's
    returned connection."""
    start_worker(concurrency=1)  # one pool process: the second execution runs where the first kept its context
    journal = log_dir / "late"
    first = service.schedule("l.keep-context", {}).execution["execution_id"]
    assert service.wait(first, 30)[1]["status"] == "completed"
    second = service.schedule("l.use-kept-context", {"journal": str(journal)}).execution["execution_id"]
    assert service.wait(second, 30)[1]["status"] == "completed"
    assert journal.read_text() == "MisplacedCall\n"
    assert service.steps(first) == []


def test_a_handler_catching_base_exception_runs_no_step_while_its_execution_waits(service, worker, log_dir):
    """The sleep's suspend signal was caught and the alert step's body ran (only its checkpoint was refused)."""
    journal = log_dir / "alerts"
    execution_id = service.schedule("l.alert-on-any-failure", {"journal": str(journal)}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "completed" and row["output"] == {"done": True}, row
    assert not journal.exists(), journal.read_text()
    assert [s["name"] for s in service.steps(execution_id)] == ["nap"]


def test_a_cleanup_step_in_a_finally_block_runs_once_when_the_handler_ends_not_at_each_park(service, worker, log_dir):
    """The release step's body ran as the event wait parked, while the reservation was still needed."""
    journal = log_dir / "journal"
    execution_id = service.schedule("l.cleanup-in-finally", {"journal": str(journal)}).execution["execution_id"]
    poll(lambda: service.status(execution_id)["waiting_for_event"] == "approval", what="the event wait")
    assert journal.read_text() == "reserve\n"
    service.send_event(execution_id, "approval", {"ok": True})
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "completed" and row["output"] == {"payload": {"ok": True}}, row
    assert journal.read_text() == "reserve\nrelease\n"


def test_a_handler_catching_base_exception_runs_no_step_after_a_cancel(service, start_worker, log_dir):
    worker = start_worker(concurrency=1)
    journal, go = log_dir / "alerts", log_dir / "go"
    data = {"journal": str(journal), "wait_for": str(go)}
    execution_id = service.schedule("l.alert-on-any-failure", data).execution["execution_id"]
    poll(lambda: _status(service, execution_id) == "running", what="the slow step to start")
    service.cancel(execution_id)
    go.touch()  # the slow step returns; its checkpoint is refused
    poll(lambda: "'lease-lost'" in worker.log_path.read_text(), what="the run to end, fenced out")
    assert not journal.exists(), journal.read_text()
    assert service.status(execution_id)["status"] == "cancelled"


@pytest.mark.parametrize("call", ["step", "sleep", "event"])
@pytest.mark.parametrize("kind", ["nul", "surrogate"])
def test_a_name_postgres_cannot_store_fails_the_execution_saying_why(service, worker, log_dir, kind, call):
    """It failed with the driver's error (a DataError quoting the SQL and its parameters, or a
    UnicodeEncodeError), after running the step's body."""
    journal = log_dir / "ran"
    data = {"kind": kind, "call": call, "journal": str(journal)}
    execution_id = service.schedule("l.unstorable-name", data).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "failed", row
    assert row["error"]["type"] == "ValueError", row["error"]
    assert "without U+0000 or unpaired surrogates" in row["error"]["message"], row["error"]
    assert not journal.exists()


def test_steps_called_from_other_threads_fail_the_execution_saying_why(service, worker):
    """They were recorded in whatever order the threads ran, some not at all, and the first replay failed
    with a NonDeterminismError that blamed the code outside steps."""
    execution_id = service.schedule("l.steps-from-threads", {}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "failed", row
    assert row["error"]["type"] == "MisplacedCall", row["error"]
    assert "thread other than the handler's" in row["error"]["message"]
    assert service.steps(execution_id) == []


def test_a_step_called_after_the_handler_returned_does_not_run(service, worker, log_dir):
    journal, go = log_dir / "late", log_dir / "go"
    data = {"journal": str(journal), "go": str(go)}
    execution_id = service.schedule("l.step-after-return", data).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "completed", row
    go.touch()
    poll(journal.exists, what="the late call to end")
    assert journal.read_text() == "MisplacedCall\n"  # it was "ran", then an error from the closed connection


@pytest.mark.parametrize(
    ("task", "limit"),
    [
        ("l.poison", 2),
        # each run after the first parks for its rate limit's token before it dies: a park is not progress
        ("l.rated-poison", 1),
    ],
)
def test_an_execution_whose_runs_keep_killing_the_worker_fails_after_the_recovery_limit(
    service, start_worker, log_dir, task, limit
):
    start_worker(concurrency=1, ZART_MAX_RECOVERIES=str(limit))
    flag = log_dir / "never"
    execution_id = service.schedule(task, {"flag": str(flag)}).execution["execution_id"]
    done, row = service.wait(execution_id, 60)
    assert done and row["status"] == "failed", row
    assert row["error"]["type"] == "RecoveriesExhausted", row["error"]
    assert f"{limit} times" in row["error"]["message"]
    assert (log_dir / "never.count").read_text() == "x" * (limit + 1)  # the first run and `limit` recoveries


def test_progress_resets_the_recovery_count(service, start_worker, log_dir):
    start_worker(concurrency=1, ZART_MAX_RECOVERIES="1")
    execution_id = service.schedule("l.progressing-poison", {"steps": 3, "dir": str(log_dir)}).execution["execution_id"]
    done, row = service.wait(execution_id, 60)
    assert done and row["status"] == "completed", row
    assert row["output"] == {"results": [0, 0, 1, 1, 2, 2]}
    assert len(list(log_dir.glob("died-*"))) == 3  # three deaths in all, one per run, each after progress


def test_cancelling_a_child_through_the_cli_fails_the_parents_wait_instead_of_stranding_it(
    env, service, worker, tmp_path
):
    from tests.cli.cli import Cli

    parent_id = service.schedule("l.parent-of-task", {}).execution["execution_id"]
    child_id = f"{parent_id}~child"
    poll(lambda: _status(service, child_id) == "waiting", what="the child to wait for its event")
    cancelled = Cli(env, tmp_path)("cancel", child_id)
    assert cancelled.returncode == 0, cancelled.stderr
    done, row = service.wait(parent_id, 30)
    assert done and row["status"] == "completed", row
    assert row["output"] == {"failed_step": "child", "type": "Cancelled"}


def _status(service, execution_id: str) -> str | None:
    from zart.errors import ExecutionNotFound

    try:
        return service.status(execution_id)["status"]
    except ExecutionNotFound:
        return None


def test_a_new_run_cancels_only_the_children_of_earlier_runs(service, worker):
    from zart.admin import AdminService

    parent_id = service.schedule("l.parent-of-task", {}).execution["execution_id"]
    poll(lambda: _status(service, f"{parent_id}~child") == "waiting", what="run 0's child")
    AdminService(service).restart(parent_id, None, force=True, triggered_by="test")
    assert _status(service, f"{parent_id}~child") == "cancelled"
    poll(lambda: _status(service, f"{parent_id}~r1~child") == "waiting", what="run 1's child")
    service.cancel_descendants(parent_id, before_run=1)  # a late sweep of run 0's children, say
    assert _status(service, f"{parent_id}~r1~child") == "waiting"
    service.send_event(f"{parent_id}~r1~child", "go", {"n": 1})
    done, row = service.wait(parent_id, 30)
    assert done and row["output"] == {"results": [{"payload": {"n": 1}}]}, row


def test_the_task_timeout_bounds_a_hung_step_and_fences_its_worker(service, start_worker, log_dir):
    import time

    worker = start_worker(concurrency=1)
    journal = log_dir / "hang.journal"
    execution_id = service.schedule("l.hang", {"seconds": 6, "journal": str(journal)}).execution["execution_id"]
    started = time.monotonic()
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "failed" and row["error"]["type"] == "ExecutionTimeout", row
    assert time.monotonic() - started < 5  # the 1.5 s timeout plus about a sweep, not the step's 6 s
    poll(lambda: journal.exists(), 15, what="the hung step to come back")
    poll(lambda: "'lease-lost'" in worker.log_path.read_text(), what="its late checkpoint to be fenced out")
    after = service.status(execution_id)
    assert after["status"] == "failed" and after["error"]["type"] == "ExecutionTimeout"
    assert {s["name"]: s["status"] for s in service.steps(execution_id)}.get("hang") != "completed"


def test_a_restart_gets_a_fresh_deadline_from_the_task_timeout(service, start_worker, log_dir):
    from zart.admin import AdminService

    start_worker(concurrency=2)
    journal = log_dir / "hang.journal"
    execution_id = service.schedule("l.hang", {"seconds": 4, "journal": str(journal)}).execution["execution_id"]
    assert service.wait(execution_id, 30)[1]["error"]["type"] == "ExecutionTimeout"
    AdminService(service).restart(execution_id, None, force=False, triggered_by="test")
    done, row = service.wait(execution_id, 30)
    assert done and row["run_index"] == 1, row
    assert row["status"] == "failed" and row["error"]["type"] == "ExecutionTimeout", row


def test_now_and_uuid_inside_a_step_body_are_plain_calls_and_replay_cleanly(service, worker):
    execution_id = service.schedule("l.recorded-in-step", {}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "completed", row
    names = [s["name"] for s in service.steps(execution_id)]
    assert names == ["stamp", "nap", "again", "__uuid_1"]  # nothing recorded from inside the bodies


@pytest.mark.parametrize("call", ["sleep", "event", "schedule", "schedule-task"])
def test_a_durable_call_inside_a_step_body_fails_the_execution_saying_why(service, worker, call):
    execution_id = service.schedule("l.durable-call-in-step", {"call": call}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "failed", row
    assert row["error"]["type"] == "MisplacedCall" and "inside a step body" in row["error"]["message"], row
    assert {s["name"]: s["attempts"] for s in service.steps(execution_id)}.get("outer", 1) == 1  # not retried


def test_a_patch_checked_inside_a_step_body_records_nothing_and_replays_cleanly(service, worker):
    """Its marker took a position inside the body, which the next replay (returning the step's checkpoint)
    never reached: the sleep after it failed with a NonDeterminismError."""
    execution_id = service.schedule("l.patch-in-step", {}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "completed", row
    assert row["output"] == {"path": "new", "after": 1}
    assert [s["name"] for s in service.steps(execution_id)] == ["charge", "nap", "after"]


@pytest.mark.parametrize("timeout", [0, -1])
def test_a_step_timeout_that_is_not_positive_is_refused_at_the_call(service, worker, log_dir, timeout):
    """0 ran the step with no time limit at all (SIGALRM's timer takes 0 for "none"); a negative one failed
    each attempt with the timer's 'Invalid argument'."""
    journal = log_dir / "ran"
    data = {"journal": str(journal), "timeout": timeout}
    execution_id = service.schedule("l.step-timeout", data).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "failed", row
    assert row["error"]["type"] == "ValueError" and "a step timeout must be positive" in row["error"]["message"]
    assert not journal.exists()


@pytest.mark.parametrize("kind", ["async", "generator"])
def test_an_async_or_generator_step_function_is_refused_with_a_clear_message(service, worker, kind):
    execution_id = service.schedule("l.async-step", {"kind": kind}).execution["execution_id"]
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "failed", row
    assert row["error"]["type"] == "WorkflowDefinitionError"
    assert ("async def is not supported" if kind == "async" else "generators are not supported") in row["error"][
        "message"
    ]


def test_an_async_handler_is_refused_at_registration():
    import zart
    from zart.registry import Registry

    with pytest.raises(TypeError, match="async def is not supported"):

        @zart.task("l.async-handler", registry=Registry())
        async def handler(ctx, data):  # pragma: no cover - never registered
            return {}


def test_a_user_id_in_a_child_ids_shape_is_refused_not_waited_on(service, start_worker, unique):
    parent_id = unique("collide")
    service.schedule("l.event-child", {}, execution_id=f"{parent_id}~child")  # a stranger takes the child's id
    start_worker()
    service.schedule("l.parent-of-task", {}, execution_id=parent_id)
    done, row = service.wait(parent_id, 30)
    assert done and row["status"] == "failed", row
    assert "already taken" in row["error"]["message"], row["error"]


def test_a_step_pattern_rule_holds_only_steps_that_would_start_not_replays_of_completed_ones(service, start_worker):
    from zart.admin import AdminService

    admin = AdminService(service)
    start_worker()
    execution_id = service.schedule("l.replay-past-paused-step", {}).execution["execution_id"]
    poll(lambda: service.status(execution_id)["waiting_for_event"] == "go", what="the event wait")
    rule = admin.create_pause(
        execution_id=execution_id,
        task=None,
        step_pattern="first",
        reason="hold first",
        expires_at=None,
        applies_to_all=False,
        triggered_by="test",
    )
    try:
        service.send_event(execution_id, "go", {})
        done, row = service.wait(execution_id, 30)
        assert done and row["output"] == {"first": 1, "second": 2}, row
    finally:
        admin.delete_pause(rule["rule_id"], "test")


def test_a_worker_cannot_park_on_a_rule_resumed_after_it_read_the_rules(service, log_dir):
    """The interleaving that stranded executions: read the active rules, the rule is resumed (its release finds
    nothing parked), then park. The park is conditional on the rule, so it does not happen."""
    from zart.admin import AdminService
    from zart.store import db, executions, liveness, pause

    admin = AdminService(service)
    execution_id = service.schedule("t.three-steps", {"journal": str(log_dir / "j")}).execution["execution_id"]
    rule = admin.create_pause(
        execution_id=execution_id,
        task=None,
        step_pattern="b",
        reason="race",
        expires_at=None,
        applies_to_all=False,
        triggered_by="test",
    )
    url = service.settings.database_url
    try:
        with db.autocommit(url) as conn:  # a worker claims the execution and reads the rules ...
            assert executions.claim(conn, execution_id, "token", "test-worker", 30.0) is not None
            assert [r["id"] for r in pause.active_rules_for(conn, execution_id)] == [rule["rule_id"]]
        admin.resume_pause(rule["rule_id"], "test")  # ... the operator resumes the rule meanwhile ...
        with db.autocommit(url) as conn:  # ... and then the worker parks on it
            outcome = executions.park_on_rule(
                conn, execution_id, "token", rule_id=rule["rule_id"], wake_at=None, step="b", attempt=1
            )
            stranded = [r["execution_id"] for r in liveness.stranded(conn, 500)]
        assert outcome == "lifted"
        assert service.status(execution_id)["status"] == "running"  # still its worker's, which goes on
        assert execution_id not in stranded
    finally:
        service.cancel(execution_id)


def test_an_event_delivered_as_its_timeout_falls_due_is_not_taken_for_a_lost_lease(service, log_dir):
    """The claim reads the step as due while the delivery commits: the delivered payload wins, at once."""
    import threading

    from sqlalchemy import text

    from tests.harness import poll
    from zart.engine.runner import RunnerConfig, run_execution
    from zart.registry import default_registry
    from zart.store import db, events

    url = service.settings.database_url
    config = RunnerConfig(url, 30.0, 0.0, "test-worker")
    execution_id = service.schedule("t.event", {"journal": str(log_dir / "j"), "timeout": 0.3}).execution[
        "execution_id"
    ]
    assert run_execution(execution_id, config, lambda *_: True, default_registry) == "suspended"

    def due() -> bool:
        with db.autocommit(url) as conn:
            return bool(
                conn.execute(
                    text("SELECT wake_at <= now() FROM executions WHERE id = :id"), {"id": execution_id}
                ).scalar()
            )

    poll(due, what="the event timeout to fall due")
    outcome: list[str] = []
    delivery = db.get_engine(url).connect()
    transaction = delivery.begin()
    try:
        assert events.deliver(delivery, execution_id, "approval", {"ok": True})  # holds the row until commit
        worker = threading.Thread(
            target=lambda: outcome.append(run_execution(execution_id, config, lambda *_: True, default_registry))
        )
        worker.start()

        def claim_blocked() -> bool:
            with db.autocommit(url) as conn:
                return bool(
                    conn.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            # the claim as it is written, or the server-side function it is installed as
                            "AND (query LIKE '%claimed%' OR query LIKE '%zart_hot_claim%')"
                        )
                    ).scalar()
                )

        poll(claim_blocked, what="the claim to wait for the delivery")
        transaction.commit()
    finally:
        delivery.close()
    worker.join(30)
    assert outcome == ["completed"], outcome
    assert service.status(execution_id)["output"] == {"payload": {"ok": True}}

