"""Parsing and validating limits: pure functions, no I/O."""

from __future__ import annotations

import pytest

from zart.errors import InvalidData
from zart.flow.definitions import LimitSpec, Rate, parse_key_path, parse_rate, rate_text
from zart.flow_admin import merged_spec
from zart.registry import Registry, limit, task


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("100/m", Rate(100, 60.0, 100)),
        ("10/s", Rate(10, 1.0, 10)),
        ("5/10s", Rate(5, 10.0, 5)),
        ("1000/hour", Rate(1000, 3600.0, 1000)),
        ("3 / minutes", Rate(3, 60.0, 3)),
        ("7/d", Rate(7, 86400.0, 7)),
    ],
)
def test_rates_people_write(written, expected):
    assert parse_rate(written) == expected
    assert parse_rate(rate_text(expected.count, expected.period_seconds)) == expected


@pytest.mark.parametrize("written", ["100/fortnight", "10/ms", "ten/s", "0/s", "-1/s", "10/0s", "10", "", "/s"])
def test_malformed_rates_are_refused(written):
    with pytest.raises(InvalidData):
        parse_rate(written)


def test_burst_defaults_to_the_count_and_must_be_positive():
    assert parse_rate("10/s", burst=3).burst == 3
    with pytest.raises(InvalidData):
        parse_rate("10/s", burst=0)


@pytest.mark.parametrize("path", ["customer_id", "customer.id", "a.b-c.d_e"])
def test_key_paths(path):
    assert parse_key_path(path) == path


@pytest.mark.parametrize("path", ["", "a..b", "a b", "$.a", "a." * 9 + "a"])
def test_bad_key_paths(path):
    with pytest.raises(InvalidData):
        parse_key_path(path)


@pytest.mark.parametrize(
    "spec",
    [
        {"concurrency": -1},
        {"concurrency": 0},
        {"concurrency": True},
        {"key_concurrency": 2},  # a per-key count without a key
        {"key_path": "a", "key_concurrency": 1, "key_strategy": "drop_oldest"},
    ],
)
def test_invalid_limits(spec):
    with pytest.raises(InvalidData):
        LimitSpec(name="x", **spec)


def test_a_runtime_change_keeps_what_it_does_not_name():
    stored = {
        "concurrency": 4,
        "rate": 100,
        "period_seconds": 60.0,
        "burst": 10,
        "key_path": "customer_id",
        "key_concurrency": 1,
        "key_strategy": "wait",
    }
    spec = merged_spec("q", stored, {"concurrency": 2})
    assert (spec.concurrency, spec.rate, spec.key_path) == (2, Rate(100, 60.0, 10), "customer_id")
    assert merged_spec("q", stored, {"rate": "5/s"}).rate == Rate(5, 1.0, 5)  # a new rate, its own burst
    assert merged_spec("q", stored, {"concurrency_key": None}).key_concurrency is None
    with pytest.raises(InvalidData):
        merged_spec("q", None, {"burst": 3})


def test_tasks_sharing_a_queue_must_agree_on_its_limits():
    registry = Registry()
    limit("shared", concurrency=2, registry=registry)
    limit("shared", concurrency=2, registry=registry)
    with pytest.raises(ValueError, match="declared differently"):
        limit("shared", concurrency=3, registry=registry)
    declared = task("t", concurrency_key="customer.id", registry=registry)(lambda ctx, data: None)
    assert declared.flow_limit == "t"
    assert [s.name for s in registry.limits()] == ["shared", "t"]
    assert registry.limits()[1].key_concurrency == 1  # a key alone means one per key
    with pytest.raises(InvalidData):
        task("u", rate_limit="100/fortnight", registry=registry)
