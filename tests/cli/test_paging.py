"""`zart list --cursor` and `--all`: the API's cursor pages from the command line."""

from __future__ import annotations

import json

from zart.store import db, executions


def insert(env, task: str, count: int, prefix: str) -> list[str]:
    ids = [f"{prefix}-{n:02d}" for n in range(count)]
    with db.transaction(env.database_url) as conn:
        for execution_id in ids:
            executions.insert_execution(conn, execution_id=execution_id, task=task, data={})
    return ids


def test_cursor_continues_where_the_page_ended(zart, env, unique):
    task = unique("cli-paging")
    insert(env, task, 5, unique("p"))
    everything = zart("list", "--task", task, "--limit", "500", "--json").json()["executions"]
    first = zart("list", "--task", task, "--limit", "2", "--json").json()
    second = zart("list", "--task", task, "--limit", "2", "--cursor", first["next_cursor"], "--json").json()
    assert first["executions"] + second["executions"] == everything[:4]
    assert second["next_cursor"]

    text = zart("list", "--task", task, "--limit", "2")
    assert text.lines[-1] == f"next: --cursor {first['next_cursor']}"
    assert text.lines[-2] == "(1-2 of 5)"


def test_all_streams_every_match_page_by_page(zart, env, unique):
    task = unique("cli-paging")
    ids = insert(env, task, 7, unique("a")) + insert(env, task, 4, unique("b"))
    streamed = zart("list", "--task", task, "--all", "--limit", "3", "--order", "asc", "--json")
    assert streamed.returncode == 0, streamed.stderr
    items = [json.loads(line) for line in streamed.lines]
    assert [item["execution_id"] for item in items] == ids  # creation order, then id within a transaction
    assert all(item["task"] == task for item in items)

    table = zart("list", "--task", task, "--all", "--limit", "3")
    header, *rows, footer = table.lines
    assert header.split()[:2] == ["EXECUTION", "ID"]
    assert [row.split()[0] for row in rows] == ids[::-1]
    assert footer == "(11 listed)"
    status_column = header.index("STATUS")
    assert all(row[status_column:].startswith("pending") for row in rows)  # later pages keep the first's columns


def test_a_bad_cursor_is_a_command_error(zart):
    refused = zart("list", "--cursor", "nonsense")
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: cursor is not one this API returned")
