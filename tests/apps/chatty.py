"""A workflow whose handler prints, as handlers being debugged do: its output must not reach a command's JSON."""

from __future__ import annotations

import zart

print("chatty: module imported")  # noqa: T201


def hello(name: str) -> str:
    return f"hello {name}"


@zart.task("chatty.greet")
def greet(ctx: zart.Context, data: dict) -> str:
    print(f"chatty: replaying for {data['name']}")  # noqa: T201
    return str(ctx.step("hello", hello, data["name"]))
