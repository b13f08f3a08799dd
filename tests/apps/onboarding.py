"""The README's onboarding workflow, for the zart.testing tests: a CRM call, a one-day cool-off, an email
verification with a timeout, and a fan-out to two regions."""

from __future__ import annotations

from datetime import timedelta

import zart
from zart import EventTimeout


def create_customer(email: str) -> dict:
    raise RuntimeError("would call the CRM: tests stub this step")


def send_reminder(email: str) -> str:
    raise RuntimeError("would send an email: tests stub this step")


def provision(region: str) -> str:
    return f"ready in {region}"


@zart.task("onboarding.welcome")
def onboarding(ctx: zart.Context, data: dict) -> dict:
    customer = ctx.step("create-customer", create_customer, data["email"])
    started = ctx.now()
    ctx.sleep("cool-off", timedelta(days=1))
    try:
        token = ctx.wait_for_event("email-verified", timeout=timedelta(hours=2))
    except EventTimeout:
        ctx.step("send-reminder", send_reminder, data["email"])
        return {"customer_id": customer["id"], "verified": False, "hours": (ctx.now() - started) / timedelta(hours=1)}
    regions = ctx.wait_all([ctx.schedule(f"provision-{r}", provision, r) for r in ("eu", "us")])
    return {
        "customer_id": customer["id"],
        "verified": True,
        "token": token["token"],
        "regions": regions,
        "hours": (ctx.now() - started) / timedelta(hours=1),
    }
