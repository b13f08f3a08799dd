"""Pause rules: list, create, resume and delete, through the admin service like the admin API."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for

from flask_app.extension import current_service
from flask_app.ui import forms
from flask_app.ui.access import ADMIN
from flask_app.ui.blueprint import blp, page, posted, reader, require
from flask_app.ui.notices import NOTICES
from zart.admin import AdminService
from zart.errors import ZartError


def _admin() -> AdminService:
    return AdminService(current_service())


def _rules_page(notice: str | None = None) -> Any:
    return redirect(url_for("zart_ui.pauses", notice=notice), code=303)


@blp.route("/pauses")
def pauses() -> Any:
    show_all = request.args.get("all") == "1"
    return page(
        "pauses.html",
        rules=_admin().list_pauses(include_inactive=show_all),
        show_all=show_all,
        notice=NOTICES.get(request.args.get("notice", "")),
    )


@blp.route("/pauses/new", methods=["GET", "POST"])
def new_pause() -> Any:
    require(ADMIN)
    values = request.values
    context = {
        "values": {k: values.get(k, "") for k in ("execution_id", "task", "step_pattern", "reason", "expires_at")}
    }
    context["values"]["all"] = forms.checked(values, "all")
    if not posted():
        return page("pause_new.html", **context)
    form = request.form
    try:
        _admin().create_pause(
            execution_id=forms.text(form, "execution_id"),
            task=forms.text(form, "task"),
            step_pattern=forms.text(form, "step_pattern"),
            reason=forms.text(form, "reason"),
            expires_at=forms.utc_time(form, "expires_at", "The expiry"),
            applies_to_all=forms.checked(form, "all"),
            triggered_by=reader().actor,
        )
    except ZartError as error:
        return page("pause_new.html", error.http_status, error=error.message, **context)
    return _rules_page("paused")


def _rule(rule_id: str) -> dict[str, Any] | None:
    return next((r for r in _admin().list_pauses(include_inactive=True) if r["rule_id"] == rule_id), None)


@blp.route("/pauses/<rule_id>/<any(resume, delete):action>", methods=["GET", "POST"])
def change_pause(rule_id: str, action: str) -> Any:
    require(ADMIN)
    context = {"rule": _rule(rule_id), "rule_id": rule_id, "action": action}
    if not posted():
        return page("pause_change.html", **context)
    try:
        if action == "resume":
            _admin().resume_pause(rule_id, reader().actor)
        else:
            _admin().delete_pause(rule_id, reader().actor)
    except ZartError as error:
        return page("pause_change.html", error.http_status, error=error.message, **context)
    return _rules_page("resumed" if action == "resume" else "deleted")
