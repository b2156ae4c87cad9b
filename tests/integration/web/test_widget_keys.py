"""Widget keys through the real app and a real database: the one route table, origins, own threads, rate limits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Route

from tests.integration.web.conftest import DOCS, Site, make_site
from threadline.api.access import WIDGET_ROUTES
from threadline.api.deps import get_principal
from threadline.api.routers.openai_compat import bearer_principal
from threadline.bootstrap import Container
from threadline.settings import Settings

pytestmark = pytest.mark.integration


def _every_route(client: TestClient) -> list[BaseRoute]:
    """The app's whole route table: every router module loaded first (api/routing.py loads them as needed)."""
    client.app.routers.load_all()  # type: ignore[attr-defined]
    routes: list[BaseRoute] = client.app.routes  # type: ignore[attr-defined]
    return routes


def _routes(client: TestClient) -> Iterator[tuple[str, str]]:
    for route in _every_route(client):
        if isinstance(route, APIRoute | Route) and route.path.startswith(("/query/", "/v1/", "/mcp")):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, route.path


def _call(client: TestClient, site: Site, method: str, path: str) -> Any:
    concrete = re.sub(r"\{[^}]+\}", lambda m: str(site.project_id) if m[0] == "{project_id}" else str(uuid4()), path)
    headers = {**site.widget, "Authorization": f"Bearer {site.widget_key}"}
    return client.request(method, concrete, headers=headers)


def test_every_route_but_the_chat_is_forbidden_to_a_widget_key(client: TestClient, site: Site) -> None:
    # Given every authenticated route of the app, /v1 and /mcp included
    routes = list(_routes(client))
    assert len(routes) > 40 and WIDGET_ROUTES <= set(routes), "the table names routes the app no longer has"
    for method, path in routes:
        # When the widget key calls it from its own origin
        response = _call(client, site, method, path)
        # Then only the table's routes get past the scope check; every other is 403 forbidden
        if (method, path) in WIDGET_ROUTES:
            assert response.status_code != 403, (method, path, response.text)
            continue
        assert response.status_code == 403, (method, path, response.status_code)
        error = response.json()["error"]
        if path.startswith("/query/"):
            assert error["code"] == "forbidden" and error["details"]["scope"] == "widget", (method, path)
        elif path.startswith("/v1/"):
            assert error["code"] == "forbidden" and error["type"] == "permission_error", (method, path)
        else:
            assert "widget" in error["message"], (method, path)


def _calls(dependant: Dependant) -> set[object]:
    found: set[object] = set()
    for sub in dependant.dependencies:
        found |= {sub.call} | _calls(sub)
    return found


def test_every_route_that_takes_a_key_goes_through_the_one_check(client: TestClient) -> None:
    # Given every /query/v1 and /v1 route, When the dependencies each one resolves are listed
    for route in _every_route(client):
        if isinstance(route, APIRoute) and route.path.startswith(("/query/", "/v1/")):
            calls = _calls(route.dependant)
            # Then each authenticates through one of the two dependencies that call api.access.authorize
            assert calls & {get_principal, bearer_principal}, route.path


def test_a_widget_key_works_only_from_its_origins(client: TestClient, site: Site) -> None:
    # When the widget key calls /me/ from its origin, from another, and with no Origin at all (a script)
    own = client.get("/query/v1/me/", headers=site.widget)
    other = client.get("/query/v1/me/", headers={"X-API-KEY": site.widget_key, "Origin": "https://evil.example"})
    bare = client.get("/query/v1/me/", headers={"X-API-KEY": site.widget_key})
    # Then only its own origin passes; the others are 403 forbidden, saying why
    assert own.status_code == 200 and own.json()["id"] == str(site.project_id)
    for refused in (other, bare):
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert error["code"] == "forbidden" and "origin is not allowed for this key" in error["message"]
    # And an admin key needs no Origin
    assert client.get("/query/v1/me/", headers=site.admin).status_code == 200


def test_a_widget_key_reads_and_continues_only_its_own_threads(
    client: TestClient, site: Site, web_container: Container
) -> None:
    # Given a thread the widget started, another widget key of the same project, and a thread an admin started
    asked = client.post(
        f"/query/v1/projects/{site.project_id}/chat/", json={"query": "How do I start?"}, headers=site.widget
    )
    assert asked.status_code == 200, asked.text
    thread_id = asked.json()["thread_id"]
    other = make_site(web_container, "other")  # a second project, to borrow nothing from
    from threadline.domain import tenancy

    second = tenancy.issue_api_key(web_container.tenancy, site.project_id, "blog widget", tenancy.WIDGET, [DOCS]).key
    admin_thread = client.post(
        f"/query/v1/projects/{site.project_id}/chat/", json={"query": "Admin question"}, headers=site.admin
    ).json()["thread_id"]
    # When each key reads and follows up
    mine = client.get(f"/query/v1/threads/{thread_id}/", headers=site.widget)
    follow_up = client.post(f"/query/v1/threads/{thread_id}/chat/", json={"query": "And then?"}, headers=site.widget)
    not_mine = client.get(f"/query/v1/threads/{thread_id}/", headers={"X-API-KEY": second, "Origin": DOCS})
    not_mine_either = client.post(
        f"/query/v1/threads/{admin_thread}/chat/", json={"query": "Let me in"}, headers=site.widget
    )
    by_admin = client.get(f"/query/v1/threads/{thread_id}/", headers=site.admin)
    foreign = client.get(f"/query/v1/threads/{thread_id}/", headers=other.admin)
    # Then the widget key reads and continues its own thread, and no one else's (404, as if absent)
    assert mine.status_code == 200 and follow_up.status_code == 200
    assert not_mine.status_code == not_mine_either.status_code == 404
    # And the project's admin key reads every thread; another project's key reads none
    assert by_admin.status_code == 200 and len(by_admin.json()["messages"]) == 2
    assert foreign.status_code == 404
    # And the thread records the widget channel and the key that started it
    with psycopg.connect(web_container.settings.database_url) as conn:
        row = conn.execute("SELECT channel, api_key_id FROM threads WHERE id = %s", (thread_id,)).fetchone()
    assert row == ("widget", site.widget_key_id)


@pytest.fixture
def tight(web_settings: Settings) -> Settings:
    """Limits small enough to reach in a test: 3 requests a minute per key, 5 per client address."""
    return web_settings.model_copy(update={"widget_rate_per_key": 3, "widget_rate_per_ip": 5})


def _app_client(settings: Settings, embedder: object) -> tuple[Container, TestClient]:
    from threadline.api.app import create_app

    container = Container(settings)
    container.__dict__["embedder"] = embedder
    return container, TestClient(create_app(container))


def test_two_app_instances_share_the_limit_and_refuse_with_retry_after(tight: Settings, embedder: object) -> None:
    # Given two instances of the app (two containers, two connection pools) on one database
    first_container, first = _app_client(tight, embedder)
    second_container, second = _app_client(tight, embedder)
    site = make_site(first_container, "limited")
    try:
        # When the widget key calls 3 times through one and once more through the other
        answers = [first.get("/query/v1/me/", headers=site.widget).status_code for _ in range(3)]
        refused = second.get("/query/v1/me/", headers=site.widget)
        # Then the 4th request is refused, whichever instance serves it, with a Retry-After within the minute
        assert answers == [200, 200, 200]
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # And an admin key is never limited
        assert all(second.get("/query/v1/me/", headers=site.admin).status_code == 200 for _ in range(6))
    finally:
        first_container.close()
        second_container.close()


def test_the_client_address_limit_spans_keys(tight: Settings, embedder: object) -> None:
    # Given two widget keys of two projects, called from one address (the test client's)
    container, client = _app_client(tight, embedder)
    one, two = make_site(container, "one"), make_site(container, "two")
    try:
        # When each key makes 3 requests (each within its own limit of 3)
        statuses = [client.get("/query/v1/me/", headers=s.widget).status_code for s in (one, two, one, two, one, two)]
        # Then the address's limit of 5 refuses the 6th
        assert statuses == [200, 200, 200, 200, 200, 429]
    finally:
        container.close()


def test_old_windows_are_pruned_by_later_requests(client: TestClient, site: Site, web_container: Container) -> None:
    # Given 30 windows that ended long ago
    with psycopg.connect(web_container.settings.database_url) as conn:
        conn.execute(
            "INSERT INTO rate_limit_windows (bucket, window_start, hits)"
            " SELECT 'k:old' || i, date_trunc('minute', now()) - interval '1 hour', 1 FROM generate_series(1, 30) i"
        )
    # When the widget makes 4 requests
    for _ in range(4):
        assert client.get("/query/v1/me/", headers=site.widget).status_code == 200
    # Then they pruned the old windows (10 each) and only the current minute's two buckets remain
    with psycopg.connect(web_container.settings.database_url) as conn:
        rows = conn.execute("SELECT bucket, hits FROM rate_limit_windows ORDER BY bucket").fetchall()
    assert sorted(b for b, _ in rows) == sorted([f"k:{site.widget_key_id}", "ip:testclient"])
    assert {h for _, h in rows} == {4}
