"""The dashboard blueprint and what every dashboard request goes through: the session cookie, sign-in when
tokens are configured, CSRF on every state-changing request, HTML error pages, and the template helpers.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from werkzeug.exceptions import Forbidden, HTTPException

from flask_app.extension import current_zart
from flask_app.guards import bound_database_waits, end_database_bound
from flask_app.hosts import check_host
from flask_app.ui import format as fmt
from flask_app.ui import nav
from flask_app.ui.access import Reader
from flask_app.ui.session import COOKIE, MAX_AGE_SECONDS, Session, SessionCodec, same_csrf
from zart.errors import ZartError

log = logging.getLogger(__name__)

blp = Blueprint("zart_ui", __name__, template_folder="templates", static_folder="static")

OPEN_ENDPOINTS = ("zart_ui.sign_in", "zart_ui.static")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class CsrfRefused(Forbidden):
    description = "This form has expired or did not come from this dashboard. Reload the page and try again."


class ScopeRefused(Forbidden):
    description = "Your token may look but not do this."


def codec() -> SessionCodec:
    return current_zart().ui_sessions


def current_session() -> Session:
    return g.zart_ui_session  # type: ignore[no-any-return]


def reader() -> Reader:
    return g.zart_ui_reader  # type: ignore[no-any-return]


def start_session(session: Session) -> None:
    """Replace the session (sign-in, sign-out); the cookie is written on the way out."""
    g.zart_ui_session = session
    g.zart_ui_new_cookie = True


blp.before_request(bound_database_waits)
blp.teardown_request(end_database_bound)


@blp.before_request
def _load_session() -> Response | None:
    tokens = current_zart().tokens
    found = codec().loads(request.cookies.get(COOKIE))
    g.zart_ui_new_cookie = found is None
    session = found or codec().fresh()
    g.zart_ui_session = session
    token = codec().token_of(session, tokens) if tokens else None
    g.zart_token = token  # where the bearer check keeps a request's token: auth.may() answers for pages too
    g.zart_ui_reader = Reader(token)
    if request.method not in ("GET", "HEAD", "OPTIONS") and request.endpoint != "zart_ui.static":
        if not same_csrf(found, request.form.get("csrf")):
            raise CsrfRefused()
    if tokens and token is None and request.endpoint not in OPEN_ENDPOINTS:
        if request.method in ("GET", "HEAD"):
            # with the script root: sign-in only returns to a path under the dashboard's URL, mount point included
            asked = request.script_root + request.full_path.rstrip("?")
            return redirect(url_for("zart_ui.sign_in", next=asked))  # type: ignore[return-value]
        raise Forbidden("Sign in first.")
    return None


blp.before_request(check_host)  # after the session is loaded: the refusal's page is rendered with it


@blp.after_request
def _write_session(response: Response) -> Response:
    if g.get("zart_ui_new_cookie"):
        response.set_cookie(
            COOKIE,
            codec().dumps(current_session()),
            max_age=MAX_AGE_SECONDS,
            path=url_for("zart_ui.overview"),
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
        )
    for name, value in SECURITY_HEADERS.items():
        if name == "Cache-Control" and request.endpoint == "zart_ui.static":
            continue  # the stylesheet and script may be cached (Flask sends them with validators)
        response.headers.setdefault(name, value)
    return response


def posted() -> bool:
    """Whether the request may change anything: only a POST, the one method the CSRF check covers. A HEAD runs a
    view as a GET does but skips that check, so a view must never read "not a GET" as "act"."""
    return request.method == "POST"


def require(scope: str) -> None:
    """Refuse the request unless the signed-in token's scope covers `scope`."""
    if not reader().may(scope):
        raise ScopeRefused()


def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(f"zart_ui/{template}", **context), status


@blp.app_context_processor
def _helpers() -> dict[str, Any]:
    if request.blueprint != blp.name:
        return {}
    return {
        "nav_items": nav.items(),
        "csrf_token": current_session().csrf,
        "reader": reader(),
        "auth_on": bool(current_zart().tokens),
        **fmt.GLOBALS,
    }


for _name, _filter in fmt.FILTERS.items():
    blp.add_app_template_filter(_filter, f"zart_{_name}")


@blp.errorhandler(ZartError)
def _service_error(error: ZartError) -> tuple[str, int]:
    return page("error.html", error.http_status, title=error.code.replace("_", " "), message=error.message)


@blp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[str, int]:
    return page("error.html", error.code or 500, title=error.name, message=error.description)


@blp.errorhandler(Exception)
def _unexpected(error: Exception) -> tuple[str, int]:
    log.exception("unhandled error while serving the zart dashboard")
    return page("error.html", 500, title="Internal error", message="Something went wrong; the server log says what.")
