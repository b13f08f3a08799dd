"""A plain remote-step message pushed straight onto Redis is the message Celery itself would have sent; anything
that is not plain still goes through Celery. Real Redis; the messages are read back off the queue."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery, signals
from kombu import Exchange, Queue

from zart.celery import calls, wire
from zart.localservices import LocalRedis


@pytest.fixture(scope="module")
def team_app(redis_server: LocalRedis) -> Iterator[Celery]:
    """A team's app like the legacy one: JSON, tasks routed to their queue, late acks."""
    app = Celery(f"team-{uuid.uuid4().hex[:6]}", broker=redis_server.url, set_as_current=False)
    app.conf.update(
        task_routes={"team.*": {"queue": "team-q"}},
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
    )

    @app.task(name="team.add", ignore_result=True)
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(name="team.slow", time_limit=30)
    def slow(n: int) -> int:
        return n

    calls.configure_home(app, "zart", 300.0)
    yield app
    wire._forget(app)


def _sent(app: Celery, target: Any, *args: Any, via_celery: bool) -> dict[str, Any]:
    """Send `target(*args)` as a remote step and read the message back off its queue."""
    call = calls.build_call(target, args, {})
    key = (__import__("os").getpid(), id(app))
    wire._forget(app)
    if via_celery:
        wire._wires[key] = None  # the wire stands aside: Celery sends
    token = calls.new_token()
    calls.send(call, token)
    wire._wires.pop(key, None)
    client = redis.Redis.from_url(app.conf.broker_url)
    raw = client.rpop(call.queue)
    assert raw is not None, f"nothing on {call.queue}"
    message = json.loads(raw)
    assert message["headers"]["id"] == token
    return message


def _comparable(message: dict[str, Any], token: str) -> dict[str, Any]:
    """The message with what differs between any two sends (ids, delivery tag) taken out."""
    text = json.dumps(message).replace(message["headers"]["id"], token)
    body = json.loads(base64.b64decode(message["body"]).decode().replace(message["headers"]["id"], token))
    result = json.loads(text)
    result["body"] = body
    del result["properties"]["delivery_tag"]
    return result


def test_a_plain_message_pushed_by_the_wire_is_the_one_celery_sends(team_app: Celery) -> None:
    pushed = _sent(team_app, team_app.tasks["team.add"], 2, 3, via_celery=False)
    sent = _sent(team_app, team_app.tasks["team.add"], 2, 3, via_celery=True)
    assert (pushed["properties"]["delivery_info"]) == {"exchange": "", "routing_key": "team-q"}
    assert _comparable(pushed, "T") == _comparable(sent, "T")
    args, kwargs, embed = _comparable(pushed, "T")["body"]
    assert (args, kwargs) == ([2, 3], {})
    assert [c["task"] for c in embed["callbacks"]] == [calls.RESULT_TASK]
    assert [c["task"] for c in embed["errbacks"]] == [calls.FAILURE_TASK]


def test_a_bare_signature_by_name_goes_the_same_way(team_app: Celery) -> None:
    signature = team_app.signature("team.unregistered-here", queue="team-q")
    pushed = _sent(team_app, signature, 7, via_celery=False)
    sent = _sent(team_app, signature, 7, via_celery=True)
    assert _comparable(pushed, "T") == _comparable(sent, "T")


@pytest.mark.parametrize(
    ("make", "args"),
    [
        pytest.param(lambda app: app.tasks["team.add"].s().set(countdown=30), (1, 2), id="countdown"),
        pytest.param(lambda app: app.tasks["team.add"].s().set(priority=5), (1, 2), id="priority"),
        pytest.param(lambda app: app.tasks["team.add"].s().set(headers={"x-team": "1"}), (1, 2), id="headers"),
        pytest.param(lambda app: app.tasks["team.slow"], (1,), id="task time limit"),
    ],
)
def test_a_message_that_is_not_plain_goes_through_celery(team_app: Celery, make: Any, args: tuple[int]) -> None:
    call = calls.build_call(make(team_app), args, {})
    token = calls.new_token()
    callback = team_app.signature(calls.RESULT_TASK)
    assert not wire.push(call.signature, call.queue, token, callback, callback)
    calls.send(call, token)  # still delivered, by Celery
    client = redis.Redis.from_url(team_app.conf.broker_url)
    queued = [json.loads(m) for key in client.keys(f"{call.queue}*") for m in client.lrange(key, 0, -1)]
    queued += [json.loads(m) for m in client.zrange("unacked", 0, -1)] if client.type("unacked") == b"zset" else []
    assert token in [m["headers"]["id"] for m in queued]
    client.delete(*client.keys(f"{call.queue}*"))


def test_a_publish_signal_receiver_makes_the_wire_step_aside(team_app: Celery) -> None:
    seen: list[str] = []

    def receiver(headers: dict[str, Any] | None = None, **_: Any) -> None:
        seen.append((headers or {}).get("id", ""))

    signals.before_task_publish.connect(receiver, weak=False)
    try:
        call = calls.build_call(team_app.tasks["team.add"], (1, 2), {})
        token = calls.new_token()
        calls.send(call, token)
    finally:
        signals.before_task_publish.disconnect(receiver)
    assert seen == [token]
    assert redis.Redis.from_url(team_app.conf.broker_url).rpop(call.queue) is not None


def test_a_task_routed_by_exchange_and_routing_key_reaches_the_queue_bound_to_them(redis_server: LocalRedis) -> None:
    """`task_routes` naming an exchange and a routing key (no queue): the message goes where Celery sends it,
    to the queue bound to them, not onto the app's default queue."""
    app = Celery(f"media-{uuid.uuid4().hex[:6]}", broker=redis_server.url, set_as_current=False)
    app.conf.update(
        task_routes={"media.*": {"exchange": "media", "routing_key": "media.video"}},
        task_serializer="json",
        accept_content=["json"],
    )

    @app.task(name="media.resize", ignore_result=True)
    def resize(n: int) -> int:
        return n

    bound = Queue("media-video", Exchange("media", type="direct"), routing_key="media.video")
    with app.connection_for_write() as connection:
        bound(connection.default_channel).declare()
    try:
        call = calls.build_call(app.tasks["media.resize"], (1,), {})
        token = calls.new_token()
        calls.send(call, token)
        client = redis.Redis.from_url(redis_server.url)
        delivered = [json.loads(m)["headers"]["id"] for m in client.lrange("media-video", 0, -1)]
        lists = {key.decode(): client.llen(key) for key in client.keys("*") if client.type(key) == b"list"}
        assert token in delivered, lists  # (other lists of the shared broker hold other tests' doorbells)
    finally:
        wire._forget(app)
        client.delete("media-video", "celery")
