"""The process-wide app hides its startup objects from the garbage collector's full collections."""

from __future__ import annotations

import gc
import sys
from types import SimpleNamespace
from typing import cast

import pytest
from starlette.testclient import TestClient

from threadline.api import app as app_module
from threadline.bootstrap import Container

MCP_SERVER = "threadline.api.mcp_server"


@pytest.mark.unit
def test_only_the_process_wide_app_freezes_its_startup_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given nothing frozen, and a process-wide container that is never touched while the app is built
    monkeypatch.setattr(app_module, "get_container", lambda: cast(Container, object()))
    gc.unfreeze()
    try:
        # When a test builds its own app, nothing is frozen
        app_module.create_app(cast(Container, object()))
        assert gc.get_freeze_count() == 0
        # When the process-wide app is built (Lambda, uvicorn), everything alive is frozen
        app_module.create_app()
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


@pytest.mark.unit
def test_the_first_mcp_request_loads_the_mcp_server_and_freezes_it_with_the_startup_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the process-wide app built while the MCP server's module is not loaded (a fresh environment)
    container = cast(Container, SimpleNamespace(tenancy=object()))
    monkeypatch.setattr(app_module, "get_container", lambda: container)
    monkeypatch.delitem(sys.modules, MCP_SERVER, raising=False)
    gc.unfreeze()
    try:
        app = app_module.create_app()
        frozen = gc.get_freeze_count()
        assert MCP_SERVER not in sys.modules

        # When the first MCP request arrives (without a key, so it is refused before any database is read)
        response = TestClient(app).post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})

        # Then the MCP server answered it, as a JSON-RPC error, and its module's objects were frozen too
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "missing X-API-KEY header"
        assert MCP_SERVER in sys.modules
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()
