"""A sample workflow: create a customer, cool off, wait for email verification, provision two regions."""

from __future__ import annotations

import zart
from zart import EventTimeout, RetryPolicy


def create_customer(email: str) -> dict[str, str]:
    return {"id": "cus_" + email.split("@")[0], "email": email}


def provision(region: str) -> dict[str, str]:
    return {"region": region, "status": "ready"}


@zart.step("send-welcome", retry=RetryPolicy.fixed(max_retries=2, delay=0.5))
def send_welcome(customer_id: str) -> str:
    return f"welcome sent to {customer_id}"


@zart.task("onboarding", retry=RetryPolicy.none())
def onboarding(ctx: zart.Context, data: dict) -> dict:
    customer = ctx.step(
        "create-customer", create_customer, data["email"], retry=RetryPolicy.exponential(max_retries=3, base_delay=0.5)
    )
    ctx.sleep("cool-off", data.get("cool_off_seconds", 1))
    try:
        verified = ctx.wait_for_event("email-verified", timeout=data.get("verify_timeout", 3600))
    except EventTimeout:
        verified = None
    h1 = ctx.schedule("provision-eu", provision, "eu")
    h2 = ctx.schedule("provision-us", provision, "us")
    regions = ctx.wait_all([h1, h2])
    send_welcome(customer["id"])
    return {"customer_id": customer["id"], "verified": verified is not None, "regions": regions}


@zart.task("hello")
def hello(ctx: zart.Context, data: dict) -> dict:
    """The smallest workflow: three steps, no waiting."""
    greeting = ctx.step("greet", lambda name: f"Hello, {name}!", data.get("name", "world"))
    shout = ctx.step("shout", str.upper, greeting)
    length = ctx.step("measure", len, shout)
    return {"greeting": greeting, "shout": shout, "length": length}
