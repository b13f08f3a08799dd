"""How a Celery task call becomes a remote step's dispatch: routing as Celery routes, and bad input refused."""

from __future__ import annotations

import pytest
from celery import Celery, chain, group, signature

from zart.celery.calls import build_call, is_celery_target, is_dispatch_token, new_token


@pytest.fixture(scope="module")
def app() -> Celery:
    app = Celery("unit-legacy", broker="memory://", set_as_current=False)
    app.conf.task_routes = {"unit.routed": {"queue": "routed"}}
    return app


@pytest.fixture(scope="module")
def tasks(app: Celery) -> dict:
    @app.task(name="unit.routed")
    def routed(x: int) -> int:
        return x

    @app.task(name="unit.own-queue", queue="own")
    def own_queue(x: int) -> int:
        return x

    @app.task(name="unit.default")
    def default(x: int) -> int:
        return x

    return {"routed": routed, "own": own_queue, "default": default}


def test_the_queue_is_the_one_celery_would_route_to(app, tasks):
    assert build_call(tasks["routed"], (1,), {}).queue == "routed"  # the app's task_routes
    assert build_call(tasks["own"], (1,), {}).queue == "own"  # the task's own option
    assert build_call(tasks["default"], (1,), {}).queue == "celery"  # the app's default queue
    assert build_call(tasks["routed"].s(1).set(queue="gpu"), (), {}).queue == "gpu"  # the signature wins
    by_name = build_call(signature("unit.routed", args=(1,), app=app), (), {})
    assert (by_name.task_name, by_name.queue) == ("unit.routed", "routed")


def test_arguments_merge_as_a_partial_signature_would(tasks):
    call = build_call(tasks["routed"].s(2), (1,), {"y": 3})
    assert (tuple(call.signature.args), dict(call.signature.kwargs)) == ((1, 2), {"y": 3})


@pytest.mark.parametrize(
    ("target", "args", "message"),
    [
        (lambda t: t["routed"], ({1, 2},), "JSON-serialisable"),
        (lambda t: t["routed"].s(1).set(link=t["default"].s()), (), "callbacks attached"),
        (lambda t: t["routed"].s(1).set(link_error=t["default"].s()), (), "callbacks attached"),
        (lambda t: t["routed"].s(1).set(queue="has space"), (), "queue name"),
        (lambda t: chain(t["routed"].s(1), t["default"].s()), (), "step of its own"),
        (lambda t: group(t["routed"].s(1), t["default"].s(2)), (), "step of its own"),
    ],
)
def test_bad_input_is_refused_at_the_call(tasks, target, args, message):
    with pytest.raises((TypeError, ValueError), match=message):
        build_call(target(tasks), args, {})


def test_targets_and_tokens(tasks):
    assert is_celery_target(tasks["routed"]) and is_celery_target(tasks["routed"].s(1))
    assert not is_celery_target(print) and not is_celery_target(lambda: 1)
    token = new_token()
    assert is_dispatch_token(token) and token != new_token()
    assert not is_dispatch_token("3f2a-some-celery-id") and not is_dispatch_token(None)
