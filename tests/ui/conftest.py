"""A real server (waitress in a thread), one worker and one headless Chromium for the dashboard's browser tests.

The browser is Debian's `chromium` driven by Playwright (`executable_path`): nothing is downloaded. Every
page is screenshotted into test-artifacts/ui/, and every test checks that the browser asked no host but the
server for anything.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from flask_app import create_app
from tests.api.conftest import LiveServer, serve
from tests.harness import REPO, Environment, Worker, package_worker

ARTIFACTS = REPO / "test-artifacts" / "ui"
TOKENS = "ops:admin:admin-secret,viewer:read:read-secret"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def chromium_path() -> str | None:
    return os.environ.get("ZART_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium on PATH: scripts/system-deps.sh installs Debian's chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def ui_worker(env: Environment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    with package_worker(env, tmp_path_factory, "ui-worker") as worker:
        yield worker


@pytest.fixture(scope="package")
def server(env: Environment) -> Iterator[LiveServer]:
    live = serve(create_app(settings=env.settings()), threads=16)
    yield live
    live.stop()


@pytest.fixture(scope="package")
def secured_server(env: Environment) -> Iterator[LiveServer]:
    live = serve(create_app(settings=env.settings(ZART_API_TOKENS=TOKENS)), threads=16)
    yield live
    live.stop()


class Visit:
    """One browser tab on one server, recording every URL the page asked for."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.requested: list[str] = []
        page.on("request", lambda request: self.requested.append(request.url))

    def go(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def foreign_requests(self) -> list[str]:
        host = urlsplit(self.base).netloc
        return [url for url in self.requested if urlsplit(url).netloc != host and not url.startswith("data:")]


@pytest.fixture()
def visit(browser: Any) -> Iterator[Callable[..., Visit]]:
    contexts: list[Any] = []
    visits: list[Visit] = []

    def open_tab(live: LiveServer, viewport: dict[str, int] | None = None) -> Visit:
        context = browser.new_context(viewport=viewport or DESKTOP, timezone_id="Europe/Paris")
        contexts.append(context)
        tab = Visit(context.new_page(), live.url)
        visits.append(tab)
        return tab

    yield open_tab
    try:
        for tab in visits:
            assert tab.foreign_requests() == [], "the dashboard asked another host for something"
            assert tab.requested, "the browser made no request at all"
    finally:
        for context in contexts:
            context.close()
