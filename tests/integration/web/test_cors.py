"""CORS answered by the app itself: preflights for the console's and the widget keys' origins, and no others."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.integration.web.conftest import CONSOLE, DOCS, Site
from threadline.api.cors import ALLOW_HEADERS, ORIGIN_CACHE_S, OriginPolicy
from threadline.bootstrap import Container

pytestmark = pytest.mark.integration


def _preflight(client: TestClient, origin: str, path: str = "/query/v1/me/") -> object:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key, content-type",
        },
    )


@pytest.mark.parametrize("origin", [DOCS, CONSOLE])
def test_preflights_from_a_widget_keys_origin_and_the_console_succeed(
    client: TestClient, site: Site, origin: str
) -> None:
    # When the browser asks before a chat request from the widget's page, or from the console
    response = _preflight(client, origin, f"/query/v1/projects/{site.project_id}/chat/stream/")
    # Then it is allowed for exactly that origin, with the headers the widget sends, and never with credentials
    assert response.status_code == 204  # type: ignore[attr-defined]
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["access-control-allow-origin"] == origin
    assert headers["access-control-allow-headers"] == ALLOW_HEADERS
    assert "POST" in headers["access-control-allow-methods"]
    assert "retry-after" in headers["access-control-expose-headers"]
    assert "access-control-allow-credentials" not in headers
    assert headers["vary"] == "Origin"


@pytest.mark.parametrize("origin", ["https://evil.example", "https://docs.example.com.evil.example", "null", "*"])
def test_preflights_from_any_other_origin_are_refused(client: TestClient, site: Site, origin: str) -> None:
    # When the browser asks from an origin no key lists
    response = _preflight(client, origin)
    # Then 403 with no CORS headers at all, so the browser sends nothing
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert response.json()["error"]["code"] == "forbidden"  # type: ignore[attr-defined]
    assert not any(h.startswith("access-control-") for h in response.headers)  # type: ignore[attr-defined]


def test_a_revoked_keys_origin_stops_passing_once_the_cache_expires(site: Site, web_container: Container) -> None:
    # Given the origin policy over the real keys, on a clock the test moves, and the widget's origin passing
    now = [1000.0]
    policy = OriginPolicy(frozenset({CONSOLE}), web_container.tenancy.origin_on_widget_key, clock=lambda: now[0])
    assert policy.allows(DOCS)
    # When its only key is revoked
    web_container.tenancy.revoke_api_key(site.project_id, site.widget_key_id)
    # Then the answer holds for the cache's time, and not a second longer
    now[0] += ORIGIN_CACHE_S - 1
    assert policy.allows(DOCS)
    now[0] += 2
    assert not policy.allows(DOCS)
    # And the console's origin needs no key
    assert policy.allows(CONSOLE)


def test_responses_to_an_allowed_origin_carry_the_origin_and_expose_retry_after(client: TestClient, site: Site) -> None:
    # When the widget calls, and when a page of an unknown origin calls with an admin key
    allowed = client.get("/query/v1/me/", headers=site.widget)
    unknown = client.get("/query/v1/me/", headers={**site.admin, "Origin": "https://evil.example"})
    # Then the widget's response is readable by its page; the other's is not (no CORS headers), though served
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == DOCS
    assert allowed.headers["access-control-expose-headers"] == "retry-after"
    assert unknown.status_code == 200 and "access-control-allow-origin" not in unknown.headers
    # And an error (401) to an allowed origin is readable too, so the widget can show it
    refused = client.get("/query/v1/me/", headers={"X-API-KEY": "tl_bad_key", "Origin": DOCS})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == DOCS
