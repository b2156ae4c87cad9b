"""Keys with scopes and origins over the API and the CLI, on a real database."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.integration.web.conftest import DOCS, Site
from threadline import cli
from threadline.bootstrap import Container

pytestmark = pytest.mark.integration


def _keys(site: Site) -> str:
    return f"/query/v1/projects/{site.project_id}/api-keys/"


def test_create_a_widget_key_list_it_and_revoke_it(client: TestClient, site: Site) -> None:
    # When the admin key creates a widget key with origins as people type them
    body = {"name": "pricing page", "scope": "widget", "origins": ["HTTPS://Shop.Example.com:443/", DOCS]}
    created = client.post(_keys(site), json=body, headers=site.admin)
    # Then it is shown once, with its origins normalised
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["scope"] == "widget" and key["origins"] == ["https://shop.example.com", DOCS]
    assert key["key"].startswith(f"tl_{key['prefix']}_") and key["revoked_at"] is None
    # And the listing shows scope and origins, never the secret
    listed = client.get(_keys(site), headers=site.admin).json()["results"]
    mine = next(k for k in listed if k["id"] == key["id"])
    assert mine == {k: v for k, v in key.items() if k != "key"}
    assert all("key" not in k for k in listed)
    # And the new key works from its origin
    assert client.get("/query/v1/me/", headers={"X-API-KEY": key["key"], "Origin": DOCS}).status_code == 200
    # When it is revoked (twice: a retried DELETE is no error)
    first = client.delete(f"{_keys(site)}{key['id']}/", headers=site.admin)
    again = client.delete(f"{_keys(site)}{key['id']}/", headers=site.admin)
    # Then it no longer authenticates
    assert first.status_code == again.status_code == 204
    assert client.get("/query/v1/me/", headers={"X-API-KEY": key["key"], "Origin": DOCS}).status_code == 401


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"scope": "widget", "origins": []}, "at least one origin"),
        ({"scope": "admin", "origins": [DOCS]}, "takes no origins"),
        ({"scope": "widget", "origins": ["https://*.example.com"]}, "wildcards"),
        ({"scope": "widget", "origins": ["https://docs.example.com/help"]}, "no path"),
        ({"scope": "widget", "origins": ["ftp://docs.example.com"]}, "http(s)"),
        ({"scope": "owner", "origins": []}, "scope"),
        ({"scope": "widget", "origins": [DOCS], "ttl": 3}, "ttl"),
    ],
)
def test_bad_keys_are_refused_with_a_422_naming_the_field(
    client: TestClient, site: Site, body: dict[str, object], problem: str
) -> None:
    # When a key is created with a bad scope or origin
    response = client.post(_keys(site), json={"name": "bad", **body}, headers=site.admin)
    # Then it is a 422 that says what is wrong
    assert response.status_code == 422
    assert problem in response.text


def test_the_last_admin_key_cannot_be_revoked(client: TestClient, site: Site, web_container: Container) -> None:
    # Given a project whose only admin key is the site's
    listed = client.get(_keys(site), headers=site.admin).json()["results"]
    admin_id = next(k["id"] for k in listed if k["scope"] == "admin")
    # When it revokes itself
    refused = client.delete(f"{_keys(site)}{admin_id}/", headers=site.admin)
    # Then 409: the team would lock itself out
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"
    # When a second admin key exists, Then the first can go
    second = client.post(_keys(site), json={"name": "rotated"}, headers=site.admin).json()
    assert second["scope"] == "admin" and second["origins"] == []
    assert client.delete(f"{_keys(site)}{admin_id}/", headers=site.admin).status_code == 204
    assert client.get("/query/v1/me/", headers={"X-API-KEY": second["key"]}).status_code == 200


def test_cli_creates_a_widget_key_and_lists_scope_and_origins(site: Site, web_container: Container) -> None:
    # When the CLI creates a widget key for two origins
    created = cli.run(
        [
            "admin",
            "create-key",
            "--project",
            str(site.project_id),
            "--name",
            "docs",
            "--scope",
            "widget",
            "--origin",
            "https://Docs.Example.com/",
            "--origin",
            "http://localhost:5173",
        ],
        web_container,
    )
    # Then it prints the key once with its normalised origins
    assert isinstance(created, dict)
    assert created["scope"] == "widget" and created["origins"] == (DOCS, "http://localhost:5173")
    assert created["key"].startswith("tl_")
    # And `list keys` shows every key's scope and origins
    listed = cli.run(["admin", "list", "keys", "--project", str(site.project_id)], web_container)
    assert isinstance(listed, list)
    assert {(k.name, k.scope, k.origins) for k in listed} >= {("docs", "widget", (DOCS, "http://localhost:5173"))}
    # And revoke-key takes the prefix
    revoked = cli.run(["admin", "revoke-key", str(site.project_id), created["prefix"]], web_container)
    assert getattr(revoked, "revoked_at", None) is not None


def test_a_widget_key_never_reaches_the_logs(
    client: TestClient, site: Site, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given every log record captured
    caplog.set_level(logging.DEBUG)
    # When the widget key is used: accepted, refused for its origin, refused for its scope, and in a failing chat
    client.get("/query/v1/me/", headers=site.widget)
    client.get("/query/v1/me/", headers={"X-API-KEY": site.widget_key, "Origin": "https://evil.example"})
    client.get(f"/query/v1/projects/{site.project_id}/documents/", headers=site.widget)
    client.post(f"/query/v1/projects/{site.project_id}/chat/", json={"query": ""}, headers=site.widget)
    # Then no log line and no output holds the key, nor its secret part
    out, err = capfd.readouterr()
    secret = site.widget_key.split("_", 2)[2]
    for text in (caplog.text, out, err):
        assert site.widget_key not in text and secret not in text
