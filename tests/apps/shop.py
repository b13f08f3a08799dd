"""A small Flask + Flask-SQLAlchemy shop, as a user's app would be: orders are its own table, and placing one
starts the `shop.fulfil` workflow in the same transaction. Workers import this module for the workflow."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Connection, text

import zart

db = SQLAlchemy()


class Order(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "shop_orders"
    id = db.Column(db.Text, primary_key=True)
    amount = db.Column(db.Integer, nullable=False)
    status = db.Column(db.Text, nullable=False, default="placed")


class OrderRefused(Exception):
    pass


def create_app(database_url: str) -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    db.init_app(app)
    with app.app_context():
        db.create_all()

    @app.post("/orders")
    def place_order() -> tuple[dict[str, Any], int]:
        body = request.get_json()
        db.session.add(Order(id=body["id"], amount=body["amount"]))
        execution_id = zart.schedule(
            "shop.fulfil", {"order_id": body["id"]}, id=f"fulfil-{body['id']}", connection=db.session
        )
        if body["amount"] <= 0:  # found wrong after the workflow was scheduled: the whole request rolls back
            raise OrderRefused("an order needs a positive amount")
        db.session.commit()
        return {"order_id": body["id"], "execution_id": execution_id}, 201

    @app.errorhandler(OrderRefused)
    def refused(exc: OrderRefused) -> tuple[dict[str, Any], int]:
        return {"error": str(exc)}, 422

    return app


def notify(order_id: str) -> str:
    return f"order {order_id} is on its way"


def mark_fulfilled(conn: Connection, order_id: str) -> str:
    conn.execute(text("UPDATE shop_orders SET status = 'fulfilled' WHERE id = :id"), {"id": order_id})
    return "fulfilled"


@zart.task("shop.fulfil")
def fulfil(ctx: zart.Context, data: dict) -> dict:
    ctx.step("notify", notify, data["order_id"])
    status = ctx.transaction("mark-fulfilled", mark_fulfilled, data["order_id"])
    return {"order_id": data["order_id"], "status": status}
