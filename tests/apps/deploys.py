"""One workflow across three deploys, chosen by CHECKOUT_VERSION as a deploy would change the code.

v1: price, wait for approval, charge. v2-unpatched inserts a tax step before the wait (breaking the runs
already waiting); v2-patched guards it with `ctx.patched`; v3 keeps the tax for good with
`ctx.deprecate_patch`, once no run predating the patch remains.
"""

from __future__ import annotations

import os

import zart

VERSION = os.environ.get("CHECKOUT_VERSION", "v1")


def price(amount: int) -> int:
    return amount


def tax(amount: int) -> int:
    return amount // 10


def charge(total: int) -> dict:
    return {"charged": total}


def checkout_v1(ctx: zart.Context, data: dict) -> dict:
    amount = ctx.step("price", price, data["amount"])
    ctx.wait_for_event("approve")
    return ctx.step("charge", charge, amount)


def checkout_v2_unpatched(ctx: zart.Context, data: dict) -> dict:
    amount = ctx.step("price", price, data["amount"])
    amount += ctx.step("tax", tax, amount)
    ctx.wait_for_event("approve")
    return ctx.step("charge", charge, amount)


def checkout_v2_patched(ctx: zart.Context, data: dict) -> dict:
    amount = ctx.step("price", price, data["amount"])
    if ctx.patched("add-tax"):
        amount += ctx.step("tax", tax, amount)
    ctx.wait_for_event("approve")
    return ctx.step("charge", charge, amount)


def checkout_v3(ctx: zart.Context, data: dict) -> dict:
    amount = ctx.step("price", price, data["amount"])
    ctx.deprecate_patch("add-tax")
    amount += ctx.step("tax", tax, amount)
    ctx.wait_for_event("approve")
    return ctx.step("charge", charge, amount)


HANDLERS = {
    "v1": checkout_v1,
    "v2-unpatched": checkout_v2_unpatched,
    "v2-patched": checkout_v2_patched,
    "v3": checkout_v3,
}

checkout = zart.task("deploy.checkout")(HANDLERS[VERSION])
