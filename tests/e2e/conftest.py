"""Browser tests: Playwright driving Debian's chromium against a live server.

The browser is the one on PATH (``chromium``), or ``CHROMIUM_PATH``; Playwright
never downloads one. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from memberplatform import PROJECT_DIR, create_app
from memberplatform.db import Base
from memberplatform.extensions import db
from tests.conftest import TEST_CONFIG, unavailable

ARTIFACTS = PROJECT_DIR / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser():
    executable = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not executable:
        unavailable("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        yield browser
        browser.close()


class LiveServer:
    def __init__(self, app, url: str) -> None:
        self.app = app
        self.url = url

    def __call__(self, path: str = "/") -> str:
        return self.url + path


@pytest.fixture
def live_server(tmp_path):
    """The real app (CSRF on) on a fresh SQLite file, served in a thread."""
    app = create_app(
        {
            **TEST_CONFIG,
            "WTF_CSRF_ENABLED": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.sqlite3'}",
            "UPLOAD_FOLDER": str(tmp_path / "uploads"),
        }
    )
    with app.app_context():
        Base.metadata.create_all(db.engine)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveServer(app, f"http://127.0.0.1:{server.server_port}")
    server.shutdown()
    thread.join(timeout=5)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def new_page(browser):
    """Pages in fresh browser contexts (phone-sized, Chinese), closed after the test."""
    contexts = []

    def make(locale: str = "zh-CN"):
        context = browser.new_context(
            locale=locale, viewport={"width": 390, "height": 844}, device_scale_factor=1
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


def wait_until(page, predicate: str, timeout: float = 10.0) -> None:
    """Poll ``predicate`` (a JS function, e.g. ``"() => …"``) until it returns true.

    ``page.wait_for_function`` polls inside the page with ``eval``, which our CSP
    (no ``unsafe-eval``) refuses whenever the first check is false; ``page.evaluate``
    runs through the DevTools protocol, which the CSP does not govern.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {predicate}")
        page.wait_for_timeout(50)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
