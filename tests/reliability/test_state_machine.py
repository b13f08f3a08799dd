"""A state machine searches for interleavings that strand an execution, against the real store and engine.

Hypothesis drives schedules, in-process runs of the real engine, event deliveries, cancels (parents and
children), pause rules, restarts, reruns, dead-step retries, workers that die holding a lease, and sweeps.
After every rule: nothing is stranded, a terminal execution stays terminal unless an operator reopened it,
no checkpoint is written twice, and the maintained counts equal a recount.

ZART_STATE_MACHINE_EXAMPLES sets how many programs are tried (a few in the everyday suite, 200 in
`make reliability`); ZART_STATE_MACHINE_STEPS how many rules each runs.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import text

import zart
from zart.admin import AdminService
from zart.dispatch.sweeper import Sweeper
from zart.engine.runner import RunnerConfig, run_execution
from zart.errors import StepFailed, ZartError
from zart.limits import TERMINAL_STATUSES
from zart.registry import Registry
from zart.retry import RetryPolicy
from zart.service import ZartService
from zart.store import counts, db, executions, liveness

EXAMPLES = int(os.environ.get("ZART_STATE_MACHINE_EXAMPLES", "12"))
STEPS = int(os.environ.get("ZART_STATE_MACHINE_STEPS", "50"))

INDEX = st.integers(0, 31)

registry = Registry()
_b_attempts: Counter[str] = Counter()


def flaky_b(key: str) -> int:
    """Fails the first time for each execution and run: a dead step, until an operator retries it."""
    _b_attempts[key] += 1
    if _b_attempts[key] == 1:
        raise RuntimeError("b is down")
    return 2


@zart.task("sm.kid", registry=registry)
def kid(ctx: zart.Context, data: dict) -> Any:
    ctx.step("k", int, 3)
    ctx.sleep("nap", 0.05)
    return ctx.wait_for_event("go")


@zart.task("sm.flow", registry=registry)
def flow(ctx: zart.Context, data: dict) -> dict:
    a = ctx.step("a", int, 1)
    ctx.wait_for_event("go")
    handles = [ctx.schedule(f"kid-{i}", kid, {}) for i in range(2)]
    try:
        kids: Any = ctx.wait_all(handles)
    except StepFailed as failure:
        kids = failure.error_type
    b = ctx.step("b", flaky_b, f"{ctx.execution_id}:{ctx.run_index}", retry=RetryPolicy.none())
    return {"a": a, "b": b, "kids": kids}


class _Doorbells:
    """Stands in for the broker: the machine decides when a rung execution runs."""

    def publish(self, execution_id: str, countdown: float | None = None) -> bool:
        return True


class _NoBroker:
    def inspect(self, now: Any, routed: Any = ()) -> None:
        return None  # an unreachable broker: the sweeper re-publishes nothing, everything else runs

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def machine_settings(env):
    return env.settings(ZART_LEASE_SECONDS="30")


@pytest.mark.timeout(120 + EXAMPLES * 15)
def test_no_interleaving_strands_an_execution(machine_settings):
    run_state_machine(machine_settings)


def run_state_machine(settings_: Any) -> None:
    class LivenessMachine(RuleBasedStateMachine):
        @initialize(prelude=st.integers(0, 3))
        def start(self, prelude: int) -> None:
            self.prefix = f"sm-{uuid.uuid4().hex[:8]}-"
            self.url = settings_.database_url
            self.service = ZartService(settings_, publish=lambda _id: True, registry=registry)
            self.admin = AdminService(self.service)
            self.config = RunnerConfig(self.url, 30.0, 0.0, "sm-worker", max_recoveries=5)
            self.sweeper = Sweeper(settings_, _Doorbells(), _NoBroker())  # type: ignore[arg-type]
            self.rules: list[str] = []
            self.terminal: dict[str, tuple[int, str]] = {}
            self.reopened: set[str] = set()
            self.scheduled = 0
            self.schedule()
            for _ in range(prelude):  # start some programs deep in the workflow: parked on events, on children
                self.run_everything_ready()
                self.deliver_to_everyone_waiting()

        # ------------------------------------------------------------ reading the store

        def _ids(self, statuses: tuple[str, ...] | None = None) -> list[str]:
            with db.autocommit(self.url) as conn:
                rows = conn.execute(
                    text("SELECT id, status FROM executions WHERE id LIKE :p ORDER BY id"), {"p": self.prefix + "%"}
                ).all()
            return [r.id for r in rows if statuses is None or r.status in statuses]

        def _pick(self, index: int, statuses: tuple[str, ...] | None = None) -> str | None:
            """The index-th matching execution (modulo): what is drawn never depends on the store's state, so
            Hypothesis can replay and shrink a program even though timers make the store's state vary."""
            ids = self._ids(statuses)
            return ids[index % len(ids)] if ids else None

        # ------------------------------------------------------------ rules

        @precondition(lambda self: self.scheduled < 3)
        @rule()
        def schedule(self) -> None:
            self.scheduled += 1
            self.service.schedule("sm.flow", {}, execution_id=f"{self.prefix}{self.scheduled}")

        @rule(index=INDEX)
        def run(self, index: int) -> None:
            execution_id = self._pick(index, ("pending", "waiting", "running"))
            if execution_id is not None:
                run_execution(execution_id, self.config, _Doorbells().publish, registry)

        @rule()
        def run_everything_ready(self) -> None:
            """A worker draining its queue: every active execution gets a doorbell once."""
            for execution_id in self._ids(("pending", "waiting", "running")):
                run_execution(execution_id, self.config, _Doorbells().publish, registry)

        @rule(index=INDEX)
        def deliver_event(self, index: int) -> None:
            execution_id = self._pick(index, ("waiting",))
            if execution_id is not None:
                try:
                    self.service.send_event(execution_id, "go", {"n": 1})
                except ZartError:
                    pass  # not waiting for it: refused, nothing changes

        @rule()
        def deliver_to_everyone_waiting(self) -> None:
            for execution_id in self._ids(("waiting",)):
                try:
                    self.service.send_event(execution_id, "go", {"n": 2})
                except ZartError:
                    pass

        @rule(index=INDEX)
        def cancel(self, index: int) -> None:
            execution_id = self._pick(index, ("pending", "running", "waiting"))
            if execution_id is not None:
                self.service.cancel(execution_id)

        @precondition(lambda self: len(self.rules) < 3)
        @rule(
            scope=st.sampled_from(["execution", "task", "step-a", "step-b", "step-k", "step-kid"]),
            index=INDEX,
        )
        def create_pause_rule(self, scope: str, index: int) -> None:
            target = self._pick(index)
            if scope == "execution" and target is None:
                return
            rule_row = self.admin.create_pause(
                execution_id=target if scope == "execution" else None,
                task="sm.flow" if scope == "task" else None,
                step_pattern={"step-a": "a", "step-b": "b", "step-k": "k", "step-kid": "kid-*"}.get(scope),
                reason="state machine",
                expires_at=None,
                applies_to_all=False,
                triggered_by="sm",
            )
            self.rules.append(rule_row["rule_id"])

        @precondition(lambda self: bool(self.rules))
        @rule(index=INDEX, delete=st.booleans())
        def lift_pause_rule(self, index: int, delete: bool) -> None:
            rule_id = self.rules[index % len(self.rules)]
            if delete:
                self.admin.delete_pause(rule_id, "sm")
                self.rules.remove(rule_id)
            else:
                try:
                    self.admin.resume_pause(rule_id, "sm")
                except ZartError:
                    pass  # already resumed: refused, nothing changes

        @rule(index=INDEX, how=st.sampled_from(["restart", "rerun-a", "rerun-b", "retry-b"]))
        def operator_action(self, index: int, how: str) -> None:
            execution_id = self._pick(index)
            if execution_id is None:
                return
            try:
                if how == "restart":
                    self.admin.restart(execution_id, None, True, "sm")
                elif how.startswith("rerun"):
                    self.admin.rerun(execution_id, [how[-1]], [], True, "sm")
                else:
                    self.admin.retry_step(execution_id, "b", "sm")
            except ZartError:
                return  # refused (no such step, not dead, a child's input): nothing changed
            self.reopened.add(execution_id)

        @rule(index=INDEX)
        def worker_dies_holding_the_lease(self, index: int) -> None:
            execution_id = self._pick(index, ("pending", "waiting", "running"))
            if execution_id is None:
                return
            with db.transaction(self.url) as conn:
                if executions.claim(conn, execution_id, "ghost-" + uuid.uuid4().hex, "ghost", 30.0):
                    conn.execute(
                        text("UPDATE executions SET lease_expires_at = now() - interval '1 second' WHERE id = :id"),
                        {"id": execution_id},
                    )

        @rule()
        def sweep(self) -> None:
            self.sweeper.sweep_once()

        # ------------------------------------------------------------ invariants

        @invariant()
        def nothing_is_stranded(self) -> None:
            if not hasattr(self, "url"):
                return
            with db.autocommit(self.url) as conn:
                found = [
                    r
                    for r in liveness.stranded(conn, 500)
                    # a dead worker's expired lease is the sweeper's next round (a live reason wherever one runs)
                    if r["execution_id"].startswith(self.prefix) and r["cause"] != "lease_expired"
                ]
            assert found == [], found

        def teardown(self) -> None:
            """Rules outlive a program otherwise (a task-wide one would hold the next program's executions)."""
            for rule_id in getattr(self, "rules", []):
                try:
                    self.admin.delete_pause(rule_id, "sm")
                except ZartError:
                    pass
            if hasattr(self, "sweeper"):
                self.sweeper.sweep_once()  # a live fleet's sweeper takes back what dead workers left running

        @invariant()
        def terminal_is_final(self) -> None:
            if not hasattr(self, "url"):
                return
            with db.autocommit(self.url) as conn:
                rows = conn.execute(
                    text("SELECT id, status, run_index FROM executions WHERE id LIKE :p"), {"p": self.prefix + "%"}
                ).all()
            for row in rows:
                before = self.terminal.get(row.id)
                if before is not None and row.id not in self.reopened:
                    assert (row.run_index, row.status) == before, (row.id, before, row.status)
                if row.status in TERMINAL_STATUSES:
                    self.terminal[row.id] = (row.run_index, row.status)
                else:
                    self.terminal.pop(row.id, None)
            self.reopened.clear()

        @invariant()
        def no_checkpoint_written_twice(self) -> None:
            if not hasattr(self, "url"):
                return
            with db.autocommit(self.url) as conn:
                twice = conn.execute(
                    text(
                        "SELECT execution_id, run_index, step_name FROM step_attempts "
                        "WHERE execution_id LIKE :p AND outcome = 'completed' "
                        "GROUP BY 1, 2, 3 HAVING count(*) > 1"
                    ),
                    {"p": self.prefix + "%"},
                ).all()
            assert twice == []

        @invariant()
        def counts_equal_a_recount(self) -> None:
            if not hasattr(self, "url"):
                return
            engine = db.get_engine(self.url)
            with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
                raw = dict(conn.execute(text("SELECT status, count(*) FROM executions GROUP BY status")).all())
                assert {s: n for s, n in counts.by_status(conn).items() if n} == raw

    LivenessMachine.TestCase.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        print_blob=True,
    )
    LivenessMachine.TestCase().runTest()
