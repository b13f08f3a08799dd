"""Pointing zart at PgBouncer the wrong way gets an error that says what to set, not a silent hang."""

from __future__ import annotations

import logging

import pytest

from tests.harness import poll
from zart.errors import StoreUnavailable
from zart.registry import Registry
from zart.service import ZartService
from zart.store import notifications


def test_a_pooler_url_without_zart_pooler_says_to_set_it(env, pgbouncer):
    settings = env.settings(DATABASE_URL=pgbouncer.url, ZART_POOLER="", ZART_DIRECT_DATABASE_URL="")
    service = ZartService(settings, registry=Registry())
    with pytest.raises(StoreUnavailable, match="set ZART_POOLER=transaction and ZART_DIRECT_DATABASE_URL"):
        service.status("00000000-0000-0000-0000-000000000000")


def test_a_listen_through_the_pooler_is_detected_and_waits_fall_back_to_polling(pgbouncer, caplog):
    caplog.set_level(logging.ERROR, logger="zart.store.notifications")
    listener = notifications.FinishedNotifications(pgbouncer.url.replace("postgresql+psycopg://", "postgresql://"))
    waiter = listener.watch("some-execution", ready_timeout=0.1)
    poll(lambda: notifications.NOT_HEARD in caplog.text, timeout=15, what="the listener to give up")
    assert not listener.listening
    assert waiter.event.is_set()  # woken, so it re-reads the table rather than sleeping on a dead channel
    listener.unwatch("some-execution", waiter)


def test_the_direct_url_hears_its_notifications(postgres):
    listener = notifications.FinishedNotifications(postgres.url.replace("postgresql+psycopg://", "postgresql://"))
    waiter = listener.watch("another-execution", ready_timeout=10)
    assert listener.listening
    listener.unwatch("another-execution", waiter)
