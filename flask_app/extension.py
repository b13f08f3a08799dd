"""What one app knows about zart, kept on `app.extensions["zart"]`: the service and the serving policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from prometheus_client import CollectorRegistry

from flask_app.auth import Token
from flask_app.ui.session import SessionCodec
from flask_app.waiting import WaitSlots
from zart.service import ZartService

EXTENSION_KEY = "zart"


@dataclass
class ZartExtension:
    service: ZartService
    api: Any  # the Flask-Smorest Api whose spec /openapi.json serves
    tokens: tuple[Token, ...]
    max_body_bytes: int
    wait_slots: WaitSlots
    metrics_registry: CollectorRegistry
    api_prefix: str
    admin_prefix: str
    ui_prefix: str
    ui_sessions: SessionCodec  # signs the dashboard's session cookies
    public_docs: bool = False
    # host names answered without tokens (flask_app.hosts); None: no check (a host app that mounts zart)
    allowed_hosts: frozenset[str] | None = None
    # seconds a request may wait on one database connection (zart.store.deadline); 0: no bound
    database_timeout: float = 0.0


def current_zart() -> ZartExtension:
    return current_app.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]


def current_service() -> ZartService:
    return current_zart().service
