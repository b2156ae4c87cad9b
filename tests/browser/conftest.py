"""Fixtures of the browser tests: Debian's chromium through Playwright, the app on a real uvicorn with the OpenAI
stub as its model, and a plain HTML page served from another origin that embeds the widget with one script tag."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest

from tests.integration.rag import conftest as rag
from tests.integration.rag.conftest import Tenant, make_tenant
from threadline.api.web import WEB_DIR
from threadline.bootstrap import Container
from threadline.local.moto_server import free_port
from threadline.local.serving import BackgroundServer

CHROMIUM = Path("/usr/bin/chromium")
# Flags for a headless browser in a container with no network but loopback: no sandbox (CI runs as root), no GPU,
# and none of the background traffic (updates, sync, QUIC probes) that would try to leave the machine.
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
# The RAG tests' model stub (a real OpenAI-protocol server) and the container whose model it is.
llm_stub = rag.llm_stub
llm_container = rag.llm_container
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session (each test gets its own context: its own storage, its own origin
    state). Needs `make browser` and `make web` (both part of `make test`)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "run `make browser` (Debian's chromium) first; make test does"
    assert (WEB_DIR / "widget.js").is_file(), "run `make web` first; make install does"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context and page; console errors fail nothing by themselves but are kept for asserts."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme="light")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    yield page
    context.close()


@pytest.fixture
def tenant(llm_container: Container) -> Tenant:
    """The project under test, with its admin key."""
    return make_tenant(llm_container, "acme")


@pytest.fixture
def app_url(llm_container: Container) -> Iterator[str]:
    """The API (and its /widget.js and /console/) on a real uvicorn."""
    from threadline.api.app import create_app

    with BackgroundServer(create_app(llm_container)) as server:
        yield server.url


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def host_site() -> Iterator[tuple[str, Path]]:
    """A plain static web server on another port (another origin): (its URL, the folder it serves)."""
    folder = Path(tempfile.mkdtemp(prefix="tlsite"))
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), lambda *a: _Quiet(*a, directory=str(folder)))
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()
    shutil.rmtree(folder, ignore_errors=True)
