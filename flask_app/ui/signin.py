"""Sign-in with an API token (once per browser session) and sign-out."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for

from flask_app.auth import matching_token
from flask_app.extension import current_zart
from flask_app.ui.blueprint import blp, codec, page, posted, reader, start_session


def _safe_next(target: str | None) -> str:
    """Only a path inside the dashboard: never another host (no open redirect), nor a control character (a line
    break cannot go into the Location header: it would fail the request)."""
    home = url_for("zart_ui.overview")
    if not target or not target.isprintable():
        return home
    if target.startswith(home.rstrip("/") + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return home


@blp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    tokens = current_zart().tokens
    target = _safe_next(request.values.get("next"))
    if not tokens or (not posted() and reader().token is not None):
        return redirect(target)
    if not posted():
        return page("sign_in.html", next=target)
    presented = (request.form.get("token") or "").strip().encode("utf-8")
    token = matching_token(presented, tokens) if presented else None
    if token is None:
        return page("sign_in.html", 401, next=target, error="That token is not valid here.")
    start_session(codec().fresh(token))
    return redirect(target, code=303)


@blp.route("/sign-out", methods=["POST"])
def sign_out() -> Any:
    start_session(codec().fresh())
    return redirect(url_for("zart_ui.sign_in") if current_zart().tokens else url_for("zart_ui.overview"), code=303)
