"""The router modules load as requests need them (api/routing.py), and the app answers as if all were loaded."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import threading
from types import ModuleType

import httpx
import pytest
from starlette.testclient import TestClient

import threadline.api.routers as routers_package
from threadline.api.app import App, create_app
from threadline.api.routers import ROUTES
from threadline.bootstrap import Container
from threadline.settings import Settings

THREAD = "/query/v1/threads/0b6e1d7a-3c2f-4e9b-8a1d-5f4c3b2a1e01"
PROJECT = "/query/v1/projects/8d0a6f3e-2f4b-4a57-9a55-0c3f3c1a9b10"
# Requests that end before any database work (no key, a refused method, a redirect, no route), one per outcome.
REQUESTS = [
    ("GET", "/health"),  # served
    ("HEAD", "/health"),  # served by the GET route
    ("GET", "/health/"),  # redirected to the path without the slash
    ("GET", THREAD),  # redirected to the path with the slash; two modules have a route for it
    ("PUT", f"{THREAD}/"),  # 405: the path is routed (GET, DELETE, PATCH), the method is not
    ("PATCH", f"{THREAD}/"),  # 401: the one module of the two whose route takes PATCH
    ("POST", f"{PROJECT}/chat/stream"),  # redirected
    ("GET", f"{PROJECT}/alerts/"),  # 401
    ("GET", f"{PROJECT}/nothing/"),  # 404, and no module loaded
    ("GET", "/v1/models"),  # 401, the OpenAI-compatible API's own error shape
    ("GET", "/v1/models/threadline/"),  # redirected
    ("DELETE", "/v1/chat/completions"),  # 405
]


def _app() -> App:
    # A database that is never reached: every request here ends before one would be (none carries a key).
    return create_app(Container(Settings(database_url="postgresql://127.0.0.1:1/none")))


def _answer(app: App, method: str, path: str, root_path: str = "") -> tuple[int, str | None, str | None, bytes]:
    # Below a root path, the request's path starts with it, as uvicorn's --root-path and a proxy's prefix give it.
    response = TestClient(app, follow_redirects=False, root_path=root_path).request(method, root_path + path)
    return response.status_code, response.headers.get("location"), response.headers.get("allow"), response.content


def test_the_table_names_every_route_of_every_router_module() -> None:
    # Given every module of the routers package
    modules = {info.name for info in pkgutil.iter_modules(routers_package.__path__)}

    # Then each is in the table with exactly the paths its router declares, so none serves a path unannounced
    assert set(ROUTES) == modules
    for name, paths in ROUTES.items():
        router = importlib.import_module(f"threadline.api.routers.{name}").router
        assert sorted(paths) == sorted({route.path for route in router.routes}), name


@pytest.mark.parametrize(("method", "path"), REQUESTS)
@pytest.mark.parametrize("root_path", ["", "/prod"])
def test_loading_on_demand_answers_as_the_whole_table_does(method: str, path: str, root_path: str) -> None:
    # Given an app that has served nothing yet, and one with every router module loaded
    lazy, eager = _app(), _app()
    eager.routers.load_all()

    # When each gets the same request
    # Then both give the same answer: status, redirect, allowed methods and body
    assert _answer(lazy, method, path, root_path) == _answer(eager, method, path, root_path)


def test_a_request_loads_only_the_modules_with_a_route_for_its_path() -> None:
    # Given a new app
    app = _app()
    assert app.routers.loaded() == set() and app.routers.pending

    # When it serves a thread's path, which the chat and the labels modules both route (by method)
    TestClient(app).get(f"{THREAD}/")

    # Then those two are loaded and no other; a path no module routes loads nothing more
    assert app.routers.loaded() == {"chat", "thread_labels"}
    TestClient(app).get(f"{PROJECT}/nothing/")
    assert app.routers.loaded() == {"chat", "thread_labels"}


def test_the_openapi_document_loads_every_module_and_the_table_ends_as_mounting_them_all_would() -> None:
    # Given an app that loaded two modules on demand, in an order other than the table's
    app, eager = _app(), _app()
    TestClient(app).get("/v1/models")
    TestClient(app).get("/health")

    # When its OpenAPI document is asked for
    threads: list[str] = []
    imports = app.routers._import

    def recorded(names: list[str]) -> dict[str, ModuleType]:
        threads.append(threading.current_thread().name)
        return imports(names)

    app.routers._import = recorded  # type: ignore[method-assign]
    spec = TestClient(app).get("/openapi.json").json()

    # Then every module is loaded, and the route table and the document are those of the app loaded at once
    eager.routers.load_all()
    assert not app.routers.pending
    # (imported once, in the threadpool: not in the event loop's thread, which serves the other requests)
    assert len(threads) == 1 and threads[0].startswith("AnyIO worker"), threads
    assert [(r.path, getattr(r, "methods", None)) for r in app.routes] == [
        (r.path, getattr(r, "methods", None)) for r in eager.routes
    ]
    assert spec == eager.openapi() and len(spec["paths"]) > 30


def test_concurrent_first_requests_add_a_module_once() -> None:
    # Given a new app
    app = _app()

    async def requests() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(client.get(f"{PROJECT}/alerts/") for _ in range(8)))
        return [answer.status_code for answer in answers]

    # When eight requests for one module arrive together
    statuses = asyncio.run(requests())

    # Then all are answered, and the module's routes are in the table once
    assert statuses == [401] * 8
    alerts = importlib.import_module("threadline.api.routers.alerts").router.routes
    assert sum(route in alerts for route in app.routes) == len(alerts)
