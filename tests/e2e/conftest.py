"""Browser end-to-end fixtures: the real app with the real model on a live server, driven by Chromium.

The app serves the tests' model (the `model_dir` fixture: the bundled cnn, or TEST_MODEL_DIR=models/mlp/1
for another exported model, as for every other test). Debian's Chromium (/usr/bin/chromium) is used
through Playwright; without it the tests skip locally and fail in CI (CI=true).
Every test here is marked `slow`: each drives a browser against a live server.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}

# Collects CSP violations from the start of every document (init scripts are not subject to the CSP).
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


@pytest.hookimpl(tryfirst=True)  # before -m selects: `-m "not slow"` leaves these out
def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def live_server(model_dir):
    """Base URL of the real app (real model) served by werkzeug in a background thread."""
    from werkzeug.serving import make_server

    from service import create_app

    app = create_app({"model_dir": model_dir})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(scope="session")
def browser(require):
    """One headless Chromium for the whole session."""
    require(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)  # generous on a loaded CI machine; a passing wait returns at once
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def is_error(msg) -> bool:
    """A console error, except Chromium's note on a 422 from /predict: it logs every 4xx response as a failed load,
    and a 422 there is an answer the page shows (blank: no digit; "not a digit"), not a failure."""
    answer = "status of 422" in msg.text and "/predict" in (msg.location or {}).get("url", "")
    return msg.type == "error" and not answer


class PageProbe:
    """A page plus what went wrong on it: console errors and uncaught exceptions."""

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda msg: is_error(msg) and self.errors.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.add_init_script(CSP_LISTENER)

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("window.__cspViolations || []")


@pytest.fixture
def new_page(browser):
    """Factory: a fresh context and page per call (desktop by default), closed after the test."""
    contexts = []

    def make(**context_options):
        options = {"viewport": DESKTOP, **context_options}
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return PageProbe(context.new_page())

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def probe(new_page):
    """A fresh desktop page with error collection."""
    return new_page()


@pytest.fixture
def page(probe):
    return probe.page
