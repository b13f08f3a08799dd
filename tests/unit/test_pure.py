"""Pure logic: retry arithmetic, input schemas, settings, naming. No I/O."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from zart.config import load_settings, normalise_database_url
from zart.engine.context import _child_id
from zart.errors import StepFailed
from zart.failures import error_json
from zart.registry import Registry, seconds, task
from zart.retry import RetryPolicy
from zart.schema import validation_errors


def test_none_policy_never_retries():
    assert not RetryPolicy.none().allows_retry(1)


def test_fixed_policy_counts_retries_after_the_first_attempt():
    policy = RetryPolicy.fixed(max_retries=2, delay=0.5)
    assert [policy.allows_retry(n) for n in (1, 2, 3)] == [True, True, False]
    assert policy.delay_before_retry(1) == policy.delay_before_retry(2) == 0.5


def test_exponential_policy_doubles_and_caps():
    policy = RetryPolicy.exponential(max_retries=5, base_delay=0.5, max_delay=3, jitter=False)
    assert [policy.delay_before_retry(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_exponential_jitter_stays_within_half_to_full_delay():
    policy = RetryPolicy.exponential(max_retries=5, base_delay=1.0)
    for _ in range(200):
        assert 1.0 <= policy.delay_before_retry(2) <= 2.0


def test_negative_policy_values_are_refused():
    with pytest.raises(ValueError):
        RetryPolicy.fixed(max_retries=-1, delay=1)
    with pytest.raises(ValueError):
        RetryPolicy.exponential(max_retries=1, base_delay=-1)


def test_policy_round_trips_through_json():
    policy = RetryPolicy.exponential(max_retries=3, base_delay=0.5, max_delay=4)
    assert RetryPolicy(**policy.to_json()) == policy


def test_schema_reports_each_problem():
    schema = {
        "type": "object",
        "required": ["email", "total"],
        "properties": {
            "email": {"type": "string"},
            "total": {"type": "integer"},
            "tags": {"items": {"type": "string"}},
        },
        "additionalProperties": False,
    }
    assert validation_errors(schema, {"email": "a@b.c", "total": 3}) == []
    problems = validation_errors(schema, {"total": True, "tags": ["x", 1], "extra": 1})
    assert problems == [
        "data.email is required",
        "data.total must be of type integer",
        "data.tags[1] must be of type string",
        "data.extra is not allowed",
    ]
    assert validation_errors(schema, []) == ["data must be of type object"]
    assert validation_errors(None, "anything") == []


def test_database_url_schemes_are_normalised():
    expected = "postgresql+psycopg://u:p@h/db"
    for url in ("postgres://u:p@h/db", "postgresql://u:p@h/db", expected):
        assert normalise_database_url(url) == expected


def test_environment_beats_dotenv(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("DATABASE_URL=postgres://from-file/db\nZART_IMPORTS=a, b\nZART_LEASE_SECONDS=7\n")
    settings = load_settings(environ={"DATABASE_URL": "postgres://from-env/db"}, env_file=env_file)
    assert settings.database_url == "postgresql+psycopg://from-env/db"
    assert settings.imports == ("a", "b")
    assert settings.lease_seconds == 7.0
    assert settings.with_database_url("postgres://flag/db").database_url == "postgresql+psycopg://flag/db"


def test_child_ids_are_url_safe_and_distinct():
    assert _child_id("exec-1", 0, "provision-eu") == "exec-1~provision-eu"
    assert _child_id("exec-1", 2, "provision-eu") == "exec-1~r2~provision-eu"
    odd_a, odd_b = _child_id("exec-1", 0, "a/b"), _child_id("exec-1", 0, "a?b")
    assert odd_a != odd_b and "/" not in odd_a and "?" not in odd_b


def test_a_child_of_a_long_id_still_has_an_id_that_can_be_looked_up():
    from zart.service import ID_PATTERN

    parent = "p" * 200
    child, sibling = _child_id(parent, 3, "provision-" + "x" * 80), _child_id(parent, 3, "provision-" + "y" * 80)
    grandchild = _child_id(child, 0, "n" * 80)
    for derived in (child, sibling, grandchild):
        assert len(derived) == 200 and ID_PATTERN.match(derived), derived
    assert child != sibling and child == _child_id(parent, 3, "provision-" + "x" * 80)  # distinct, deterministic


def test_errors_are_recorded_as_type_and_message():
    assert error_json(ValueError("bad")) == {"type": "ValueError", "message": "bad"}
    failed = error_json(StepFailed("charge", "ValueError", "declined"))
    assert failed["type"] == "StepFailed" and failed["step"] == "charge" and failed["cause"] == "ValueError"


def test_registry_refuses_a_name_taken_by_another_handler():
    registry = Registry()

    @task("same", registry=registry)
    def first(ctx, data):
        return 1

    with pytest.raises(ValueError):

        @task("same", registry=registry)
        def second(ctx, data):
            return 2

    assert registry.names() == ["same"]
    assert seconds(timedelta(minutes=1)) == 60.0


def test_values_postgres_cannot_store_are_named():
    from zart.schema import storage_problem

    assert storage_problem({"a": [1, "x", None]}) is None
    assert "NaN" in storage_problem({"a": float("nan")})
    assert "U+0000" in storage_problem({"a": "nul\x00byte"})
    assert "surrogate" in storage_problem({"a": "\ud800"})
    huge = storage_problem({"a": 10**5000})  # was named "NaN and Infinity are not JSON"
    assert huge is not None and "NaN" not in huge and "4300 digits" in huge


def test_redispatch_budget_counts_only_rows_the_queue_cannot_hold():
    from zart.dispatch.broker import BrokerState
    from zart.dispatch.sweeper import SWEEP_BATCH, redispatch_budget

    assert redispatch_budget(10, None) == 0  # unreachable: publishing would fail and lengthen the back-off
    assert redispatch_budget(10, BrokerState(queued=4, forgotten_before=None)) == 6
    assert redispatch_budget(3, BrokerState(queued=9, forgotten_before=None)) == 0
    assert redispatch_budget(10 * SWEEP_BATCH, BrokerState(queued=0, forgotten_before=None)) == SWEEP_BATCH


def test_a_self_claiming_fleet_gets_a_few_doorbells_per_sweep_not_one_per_stale_row():
    from zart.dispatch.broker import BrokerState
    from zart.dispatch.duties import SELF_CLAIM_WAKE, redispatch_budget

    draining = BrokerState(queued=0, forgotten_before=None, self_claiming=True)
    assert redispatch_budget(10_000, draining) == SELF_CLAIM_WAKE  # each one wakes a worker that drains
    assert redispatch_budget(3, draining) == 3
    assert redispatch_budget(3, BrokerState(queued=5, forgotten_before=None, self_claiming=True)) == 0


def test_every_non_python_file_of_the_packages_is_declared_package_data():
    """A regular (non-editable) install carries only what package-data names: /docs needs its template."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    declared = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package, patterns in declared.items():
        files = [p for p in (root / package).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        for path in files:
            relative = path.relative_to(root / package).as_posix()
            if path.suffix == ".py" and (path.parent / "__init__.py").is_file():
                continue  # modules of the package or of a subpackage (packages.find includes those)
            assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), (package, relative)
    assert {"flask_app", "migrations"} <= set(declared)


def test_a_cursor_round_trips_and_refuses_the_other_order():
    from datetime import UTC, datetime

    import pytest

    from zart import paging
    from zart.errors import InvalidData

    moment = datetime(2026, 4, 4, 10, 23, 11, 123456, tzinfo=UTC)
    token = paging.encode(paging.Cursor(moment, "exec-1", "desc"))
    assert paging.decode(token, "desc") == paging.Cursor(moment, "exec-1", "desc")
    with pytest.raises(InvalidData):
        paging.decode(token, "asc")
    for forged in ("", "x", paging.encode(paging.Cursor(moment.replace(tzinfo=None), "e", "desc")), "bnVsbA"):
        with pytest.raises(InvalidData):
            paging.decode(forged, "desc")


def test_zart_schema_rides_in_the_url_as_the_search_path_and_keeps_other_options():
    from zart.config import check_schema, schema_of, with_schema

    url = with_schema("postgresql+psycopg://u@h/db?sslmode=require&options=-cstatement_timeout%3D5000", "zart")
    assert schema_of(url) == "zart"
    assert "sslmode=require" in url and "statement_timeout" in url
    assert with_schema("postgresql+psycopg://u@h/db", None) == "postgresql+psycopg://u@h/db"
    assert schema_of("postgresql+psycopg://u@h/db") is None
    assert check_schema("") is None and check_schema("zart_2") == "zart_2"
    for bad in ("Zart", "2zart", "zart-x", 'z"; drop', "z" * 64):
        with pytest.raises(Exception, match="ZART_SCHEMA"):
            check_schema(bad)
    settings = load_settings(environ={"ZART_SCHEMA": "zart"}, env_file=Path("/nonexistent"))
    assert settings.schema == "zart" and schema_of(settings.database_url) == "zart"
    assert schema_of(settings.with_database_url("postgres://other/db").database_url) == "zart"


def test_replay_since_takes_dates_times_and_durations():
    from datetime import UTC, datetime

    import click

    from zart.cli.replay import Since

    since = Since()
    assert since.convert("2026-11-30", None, None) == datetime(2026, 11, 30, tzinfo=UTC)
    assert since.convert("2026-11-30T10:00:00+02:00", None, None).utcoffset() == timedelta(hours=2)
    ago = datetime.now(UTC) - since.convert("36h", None, None)
    assert timedelta(hours=35, minutes=59) < ago < timedelta(hours=36, minutes=1)
    with pytest.raises(click.BadParameter):
        since.convert("last tuesday", None, None)


def test_a_patch_id_must_be_a_short_string():
    from zart.engine.versioning import marker_name

    assert marker_name("fix-tax") == "__patch:fix-tax"
    for bad in ("", None, "x" * 151):
        with pytest.raises(ValueError):
            marker_name(bad)  # type: ignore[arg-type]


def test_a_sweep_rests_until_the_oldest_root_is_due_and_never_while_one_is():
    from datetime import UTC, datetime

    from zart.pruning import rest_seconds
    from zart.store.retention import Batch

    day = 86400.0
    assert rest_seconds(Batch(0, None, None), day) == day  # nothing finished: a root finishing now is due in `age`
    assert rest_seconds(Batch(0, None, 120.0), day) == 120.0  # until the oldest finished root is due
    assert rest_seconds(Batch(0, None, 5 * day), day) == day  # never longer than `age`
    assert rest_seconds(Batch(0, None, -3.0), day) == 0.0  # one is due (held, or locked): ask every pass
    held = Batch(0, datetime(2026, 1, 1, tzinfo=UTC), -3.0)
    assert rest_seconds(held, day) == 0.0  # roots were due but held by active children


@pytest.mark.parametrize(("age", "delay"), [(0, 5.0), (30, 5.0), (120, 12.0), (599, 59.9), (3600, 60.0), (10**7, 60.0)])
def test_an_execution_of_a_task_no_worker_registers_is_offered_again_less_often_as_it_ages(age, delay):
    from zart.engine.runner import unregistered_task_delay

    assert unregistered_task_delay(age) == delay


@pytest.mark.parametrize("duration", [float("inf"), float("-inf"), float("nan")])
def test_a_duration_no_timer_can_hold_is_refused_with_a_sentence(duration):
    with pytest.raises(ValueError, match="finite number of seconds"):
        seconds(duration)


def test_a_step_result_that_reads_back_as_it_is_costs_no_json_round_trip():
    """Every step's result is turned into what its replays read back; one that already is (the usual case) is
    returned as it is, instead of being encoded and decoded once more on top of the storage check."""
    from enum import IntEnum

    from zart.engine.storable import as_replayed

    value = {"rows": [{"id": 1, "name": "a", "v": 1.5, "ok": True, "note": None}], "total": 1}
    assert as_replayed(value) is value
    assert as_replayed({1: (9.5, "EUR")}) == {"1": [9.5, "EUR"]}

    class Level(IntEnum):
        HIGH = 3

    read = as_replayed({"level": Level.HIGH, "top": [Level.HIGH]})
    assert read == {"level": 3, "top": [3]} and type(read["level"]) is int
    assert type(as_replayed(Level.HIGH)) is int
