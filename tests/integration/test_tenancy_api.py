"""Tenancy and auth through the real app and a real database."""

from __future__ import annotations

from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.domain.errors import NotFound


def _project_with_key(container: Container, name: str) -> tuple[tenancy.Project, str]:
    team = tenancy.create_team(container.tenancy, f"team {name}")
    project = tenancy.create_project(container.tenancy, team.id, name)
    return project, tenancy.issue_api_key(container.tenancy, project.id).key


@pytest.mark.integration
def test_ready_reports_database(client: TestClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


@pytest.mark.integration
@pytest.mark.parametrize("headers", [{}, {"X-API-KEY": "tl_nothere_abc"}, {"X-API-KEY": "bogus"}])
def test_missing_or_invalid_key_is_401_json(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/query/v1/me/", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.integration
def test_key_sees_its_project_and_nothing_else(client: TestClient, container: Container) -> None:
    # Given two projects with a key each
    project_a, key_a = _project_with_key(container, "A")
    project_b, _ = _project_with_key(container, "B")
    # When A's key asks for A, for B, and for a project that does not exist
    own = client.get(f"/query/v1/projects/{project_a.id}/", headers={"X-API-KEY": key_a})
    other = client.get(f"/query/v1/projects/{project_b.id}/", headers={"X-API-KEY": key_a})
    absent = client.get(f"/query/v1/projects/{uuid4()}/", headers={"X-API-KEY": key_a})
    # Then it sees its own; B and a missing project look exactly alike
    assert own.status_code == 200 and own.json()["id"] == str(project_a.id)
    assert other.status_code == absent.status_code == 404
    assert other.json() == absent.json()


@pytest.mark.integration
def test_only_the_hash_is_stored_and_revocation_takes_effect(client: TestClient, container: Container) -> None:
    # Given a key
    project, key = _project_with_key(container, "C")
    # Then the database never holds the key itself
    with psycopg.connect(container.settings.database_url) as conn:
        stored = conn.execute("SELECT prefix, key_hash FROM api_keys WHERE project_id = %s", (project.id,)).fetchone()
    assert stored is not None and key.encode() not in bytes(stored[1]) and stored[0] in key
    # And listing shows the prefix only
    listed = client.get(f"/query/v1/projects/{project.id}/api-keys/", headers={"X-API-KEY": key}).json()
    assert [k["prefix"] for k in listed["results"]] == [stored[0]] and "key" not in listed["results"][0]
    # When the key is revoked, Then it no longer authenticates
    container.tenancy.revoke_api_key(project.id, stored[0])
    assert client.get("/query/v1/me/", headers={"X-API-KEY": key}).status_code == 401


@pytest.mark.integration
def test_new_project_has_default_categories(container: Container) -> None:
    project, _ = _project_with_key(container, "D")
    with psycopg.connect(container.settings.database_url) as conn:
        names = [
            r[0] for r in conn.execute("SELECT name FROM categories WHERE project_id = %s ORDER BY name", (project.id,))
        ]
    assert names == ["Discovery", "Troubleshooting"]


@pytest.mark.integration
def test_project_for_unknown_team_is_not_found(container: Container) -> None:
    with pytest.raises(NotFound):
        tenancy.create_project(container.tenancy, uuid4(), "orphan")


@pytest.mark.integration
def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def _list_routes(client: TestClient) -> list[str]:
    """Every list route of the app (as the schema test finds them) that needs only the project's id."""
    from tests.unit.test_api_contract import is_list

    spec = client.app.openapi()  # type: ignore[attr-defined]
    return [
        path
        for path, ops in spec["paths"].items()
        if path.startswith("/query/v1/") and "get" in ops and is_list(path, "get")
    ]


@pytest.mark.integration
def test_every_list_pages_and_refuses_what_it_does_not_know(client: TestClient, container: Container) -> None:
    # Given a project with a key, and every list route of the app
    project, key = _project_with_key(container, "contract")
    headers = {"X-API-KEY": key}
    routes = _list_routes(client)
    assert len(routes) >= 9
    for route in routes:
        url = route.replace("{project_id}", str(project.id))
        # When each is asked for one row, with an unknown parameter, and with a cursor it never gave
        page = client.get(url, params={"limit": 1}, headers=headers)
        unknown = client.get(url, params={"interaction_id": "x"}, headers=headers)
        forged = client.get(url, params={"cursor": "bm9wZQ"}, headers=headers)
        too_many = client.get(url, params={"limit": 201}, headers=headers)
        # Then the page has the one shape, and each mistake is a 422 naming the parameter
        assert page.status_code == 200 and set(page.json()) == {"results", "next_cursor"}, route
        assert len(page.json()["results"]) <= 1, route
        for response, field in ((unknown, "interaction_id"), (forged, "cursor"), (too_many, "limit")):
            assert response.status_code == 422, (route, field)
            assert response.json()["error"]["code"] == "invalid_input", (route, field)
            assert response.json()["error"]["details"]["field"] == field, (route, field)
