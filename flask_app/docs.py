"""The OpenAPI document and Swagger UI, whose assets come from the installed flask-swagger-ui package.

Nothing is fetched from a CDN, so /docs renders on a machine without internet access. Public by default
(the document describes the API, it holds no data) so a browser can open it and use "Authorize".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask_swagger_ui
from flask import Blueprint, Response, current_app, render_template, request, send_from_directory, url_for
from flask.typing import ResponseReturnValue

from flask_app.extension import current_zart
from flask_app.guards import documentation
from flask_app.headers import page_policy, script_nonce

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"

blp = documentation(Blueprint("zart_docs", __name__, template_folder="templates"))


@blp.route("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    """Below a mount point (SCRIPT_NAME) the paths are still the app's own: a `servers` entry naming the mount
    point sends Swagger UI's and generated clients' calls there rather than to the host's root."""
    document = current_zart().api.spec.to_dict()
    if request.script_root:
        document = {**document, "servers": [{"url": request.script_root}]}
    return current_app.json.response(document)


@blp.route("/docs")
def swagger_ui() -> Response:
    spec = current_zart().api.spec
    nonce = script_nonce()
    page = render_template(
        "zart/swagger_ui.html", title=f"{spec.title} {spec.version}", spec_url=url_for(".openapi_json"), nonce=nonce
    )
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = page_policy(nonce)
    return response


@blp.route("/docs/assets/<path:filename>")
def asset(filename: str) -> Any:
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=3600)
