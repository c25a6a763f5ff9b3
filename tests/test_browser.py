"""Pages in a real headless Chromium (Debian's), driven by Playwright.

Nothing here downloads a browser: Playwright is pointed at the system's
Chromium, and the tests skip with a reason when there is none.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from tests.conftest import free_port

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def live_server(app) -> Iterator[str]:
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture
def page(chromium_path, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        context = browser.new_context()
        yield context.new_page()
        context.close()
        browser.close()


def test_home_page_shows_service_status(page, live_server, tmp_path):
    page.goto(live_server + "/")
    assert page.title() == "Home · Ledgersync"
    assert page.get_by_role("heading", level=1).inner_text() == "Ledgersync"
    assert page.locator("#overall-status").inner_text() == "All services are running."
    table = page.get_by_role("table", name="Services Ledgersync depends on (development)")
    database_row = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Database"))
    assert database_row.get_by_role("cell").nth(0).inner_text() == "Up"
    assert "sqlite" in database_row.get_by_role("cell").nth(1).inner_text()
    queue_row = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Job queue"))
    assert queue_row.get_by_role("cell").nth(0).inner_text() == "Up"
    page.screenshot(path="/tmp/ledgersync-home.png")


def test_home_page_is_navigable_by_keyboard(page, live_server):
    page.goto(live_server + "/")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    assert page.locator("a.skip-link").is_visible()  # visible once focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.get_by_role("main").count() == 1
