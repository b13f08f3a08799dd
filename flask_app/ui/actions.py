"""Operator actions on one execution. Each is a GET that says what will happen and a POST that does it,
through the same service call the API makes, recorded in the audit trail under the signed-in token's name.

A refused action (the service's error) re-renders its form with the reason and the error's HTTP status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import redirect, request, url_for

from flask_app.extension import current_service
from flask_app.ui import forms
from flask_app.ui.access import ADMIN, WRITE
from flask_app.ui.blueprint import blp, page, posted, reader, require
from zart.admin import AdminService
from zart.errors import ZartError


def _admin() -> AdminService:
    return AdminService(current_service())


def _done(execution_id: str, notice: str) -> Any:
    return redirect(url_for("zart_ui.execution", execution_id=execution_id, notice=notice), code=303)


def _act(template: str, context: dict[str, Any], action: Callable[[], Any]) -> Any:
    """Run the action; on a refusal, show the form again with the reason."""
    try:
        return action()
    except ZartError as error:
        return page(template, error.http_status, error=error.message, **context)


def _ask_then_act(template: str, context: dict[str, Any], action: Callable[[], Any]) -> Any:
    """A GET (or HEAD) shows the form that says what will happen; only a POST runs the action."""
    if not posted():
        return page(template, **context)
    return _act(template, context, action)


def _status(execution_id: str) -> dict[str, Any]:
    return current_service().status(execution_id)


@blp.route("/executions/<execution_id>/cancel", methods=["GET", "POST"])
def cancel(execution_id: str) -> Any:
    require(WRITE)
    context = {"execution": _status(execution_id)}

    def run() -> Any:
        current_service().cancel(execution_id, triggered_by=reader().actor)
        return _done(execution_id, "cancelled")

    return _ask_then_act("cancel.html", context, run)


@blp.route("/executions/<execution_id>/event", methods=["GET", "POST"])
def deliver_event(execution_id: str) -> Any:
    require(WRITE)
    execution = _status(execution_id)
    form = request.form
    context = {
        "execution": execution,
        "event_name": form.get("event_name", execution.get("waiting_for_event") or ""),
        "payload": form.get("payload", "{}"),
    }

    def run() -> Any:
        name = forms.text(form, "event_name") or ""
        payload = forms.json_value(form, "payload", "The payload")
        payload = None if payload is forms.NO_VALUE else payload
        current_service().send_event(execution_id, name, payload, triggered_by=reader().actor)
        return _done(execution_id, "event")

    return _ask_then_act("event.html", context, run)


@blp.route("/executions/<execution_id>/retry-step", methods=["GET", "POST"])
def retry_step(execution_id: str) -> Any:
    require(ADMIN)
    step = request.values.get("step", "")
    context = {"execution": _status(execution_id), "step": step}

    def run() -> Any:
        _admin().retry_step(execution_id, step, reader().actor)
        return _done(execution_id, "retried")

    return _ask_then_act("retry.html", context, run)


@blp.route("/executions/<execution_id>/restart", methods=["GET", "POST"])
def restart(execution_id: str) -> Any:
    require(ADMIN)
    execution = _status(execution_id)
    form = request.form
    context = {
        "execution": execution,
        "data": form.get("data", ""),
        "current_input": execution.get("input"),
        "active": execution["status"] in ("pending", "running", "waiting"),
    }

    def run() -> Any:
        data = forms.json_object(form, "data", "The new input")
        _admin().restart(
            execution_id, data, forms.checked(form, "force"), reader().actor, expected_run=forms.run_index(form)
        )
        return _done(execution_id, "restarted")

    return _ask_then_act("restart.html", context, run)


@blp.route("/executions/<execution_id>/rerun", methods=["GET", "POST"])
def rerun(execution_id: str) -> Any:
    """Choose steps (GET), see which steps run again and which are kept (POST preview), then confirm."""
    require(ADMIN)
    execution = _status(execution_id)
    chosen = request.values.getlist("steps")
    preserve = request.values.getlist("preserve")
    context: dict[str, Any] = {
        "execution": execution,
        "steps": current_service().steps(execution_id),
        "chosen": chosen,
        "preserve": preserve,
        "plan": None,
        "active": execution["status"] in ("pending", "running", "waiting"),
    }
    if not posted() and not chosen:
        return page("rerun.html", **context)

    def preview() -> Any:
        context["plan"] = _admin().rerun_plan(execution_id, chosen, preserve)
        return page("rerun.html", **context)

    if not posted() or request.form.get("confirm") != "1":
        return _act("rerun.html", context, preview)

    def run() -> Any:
        force = forms.checked(request.form, "force")
        expected = forms.run_index(request.form)
        _admin().rerun(execution_id, chosen, preserve, force, reader().actor, expected_run=expected)
        return _done(execution_id, "rerun")

    return _act("rerun.html", context, run)
