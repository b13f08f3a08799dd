"""The zart HTTP API: a Flask-Smorest app (`create_app`) or blueprints mounted on your own app (`init_zart`)."""

from flask_app.factory import create_app, init_zart

__all__ = ["create_app", "init_zart"]
