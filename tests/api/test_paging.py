"""Cursor paging on GET /executions: every row exactly once, in order, however many share a timestamp."""

from __future__ import annotations

import base64
import json

import pytest

from tests.api.conftest import API, assert_error
from zart.store import db, executions


def insert_batch(env, task: str, count: int, prefix: str) -> None:
    """Rows created in one transaction share their `created_at`: only the id orders them."""
    with db.transaction(env.database_url) as conn:
        for n in range(count):
            executions.insert_execution(conn, execution_id=f"{prefix}-{n:02d}", task=task, data={})


def pages(client, query: str) -> list[dict]:
    seen, cursor = [], None
    while True:
        url = f"{API}/executions?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        seen.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_cursor_pages_visit_every_row_once_in_order(client, env, unique, order):
    task = unique("paging")
    insert_batch(env, task, 7, unique("tied"))
    insert_batch(env, task, 3, unique("later"))
    everything = client.get(f"{API}/executions?task={task}&limit=500&order={order}").get_json()
    assert everything["total"] == 10 and everything["next_cursor"] is None
    expected = [e["execution_id"] for e in everything["executions"]]
    assert len(set(expected)) == 10

    walked = pages(client, f"task={task}&limit=3&order={order}")
    assert [len(page["executions"]) for page in walked] == [3, 3, 3, 1]
    assert [e["execution_id"] for page in walked for e in page["executions"]] == expected
    assert all(page["total"] == 10 and page["offset"] == 0 and page["limit"] == 3 for page in walked)


def test_a_cursor_page_does_not_shift_when_rows_are_added(client, env, unique):
    task = unique("paging")
    insert_batch(env, task, 4, unique("old"))
    first = client.get(f"{API}/executions?task={task}&limit=2").get_json()
    insert_batch(env, task, 2, unique("new"))  # newer: they belong before the first page, not after it
    rest = pages(client, f"task={task}&limit=2&cursor={first['next_cursor']}")
    before = client.get(f"{API}/executions?task={task}&limit=500").get_json()["executions"]
    assert [e["execution_id"] for page in rest for e in page["executions"]] == [e["execution_id"] for e in before[-2:]]


def test_an_offset_page_offers_the_cursor_of_the_next(client, env, unique):
    task = unique("paging")
    insert_batch(env, task, 5, unique("mixed"))
    by_offset = client.get(f"{API}/executions?task={task}&limit=2&offset=1").get_json()
    after = client.get(f"{API}/executions?task={task}&limit=2&cursor={by_offset['next_cursor']}").get_json()
    third = client.get(f"{API}/executions?task={task}&limit=2&offset=3").get_json()
    assert after["executions"] == third["executions"]


@pytest.mark.parametrize(
    "query",
    ["cursor=not-a-cursor", "cursor=", "cursor=W10", "cursor=" + "A" * 2000],
)
def test_a_cursor_we_did_not_issue_is_invalid_data(client, query):
    assert_error(client.get(f"{API}/executions?{query}"), 422, "invalid_data")


def forged(execution_id: str, order: str = "desc") -> str:
    """A cursor of the real encoding whose id no execution could have (an edited or forged one)."""
    raw = json.dumps(["2026-01-01T00:00:00+00:00", execution_id, order]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("execution_id", ["a\u0000b", "a\ud800b", "x" * 700, " spaced id"])
def test_a_forged_cursor_with_an_impossible_id_is_invalid_data(client, execution_id):
    """Such an id reached the query: NUL and a lone surrogate made PostgreSQL or the driver fail (a 500)."""
    assert_error(client.get(f"{API}/executions", query_string={"cursor": forged(execution_id)}), 422, "invalid_data")


def test_a_cursor_needs_its_own_order_and_no_offset(client, env, unique):
    task = unique("paging")
    insert_batch(env, task, 3, unique("x"))
    cursor = client.get(f"{API}/executions?task={task}&limit=1").get_json()["next_cursor"]
    assert cursor
    error = assert_error(client.get(f"{API}/executions?task={task}&cursor={cursor}&order=asc"), 422, "invalid_data")
    assert "order=desc" in error["message"]
    assert_error(client.get(f"{API}/executions?task={task}&cursor={cursor}&offset=1"), 422, "invalid_data")
