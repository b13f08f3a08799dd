"""The admin API (step detail, retries, reruns, pause rules), served under the admin prefix.

Registered now so the prefix, auth and error handling are in place; its routes are added here.
"""

from __future__ import annotations

from flask_app.api import ZartBlueprint
from flask_app.guards import protected

blp = protected(ZartBlueprint("admin", __name__, description="Operator actions on executions (admin prefix)."))
