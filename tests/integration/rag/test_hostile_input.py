"""Hostile input at the edge (issue 17): every finding that was a 500 is now a 4xx naming the field, or stored."""

from __future__ import annotations

import json
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx_sse import connect_sse

from tests.integration.rag.conftest import Tenant, upload
from threadline.bootstrap import Container
from threadline.local.openai_stub import OpenAIStub, Reply

pytestmark = pytest.mark.integration

NUL = "\u0000"


def _problem(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["details"]["field"]


@pytest.fixture
def live(live_url: str) -> Any:
    with httpx.Client(base_url=live_url, timeout=30) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/projects/{p}/chat/", {"query": f"refunds{NUL}?"}, "query"),
        ("/projects/{p}/chat/stream/", {"query": f"refunds{NUL}?"}, "query"),
        ("/projects/{p}/threads/", {"system_prompt": f"be kind{NUL}"}, "system_prompt"),
        ("/projects/{p}/documents/", {"title": "Guide", "text": f"Refunds{NUL} take a week."}, "text"),
        ("/projects/{p}/categories/", {"name": f"Bill{NUL}ing"}, "name"),
        ("/projects/{p}/categories/", {"name": "Billing", "description": f"money{NUL}"}, "description"),
        ("/projects/{p}/categories/", {"name": "Billing", "examples": ["ok", f"refund{NUL}"]}, "examples"),
        ("/projects/{p}/categories/", {"name": "Billing", "description": "lone \ud800 surrogate"}, "description"),
    ],
)
def test_text_postgres_cannot_store_is_a_422_naming_the_field(
    client: TestClient, tenant: Tenant, path: str, body: dict[str, Any], field: str
) -> None:
    # Given a body with NUL (or a lone surrogate, which JSON allows) in one text field
    # When it is posted
    response = client.post(
        f"/query/v1{path.format(p=tenant.project_id)}",
        content=json.dumps(body),
        headers={**tenant.headers, "content-type": "application/json"},
    )
    # Then it is refused at the edge, the error naming the field; nothing reached the database
    assert _problem(response) == (422, "invalid_input", field), response.text
    # (pydantic's JSON parser already refuses a lone surrogate: `string_unicode`)
    assert response.json()["error"]["details"]["errors"][0]["type"] in {"string_unstorable", "string_unicode"}


def test_nul_in_a_query_value_is_a_422_naming_the_parameter(client: TestClient, tenant: Tenant) -> None:
    # Given a list filter whose value holds NUL
    # When it is listed
    response = client.get(
        f"/query/v1/projects/{tenant.project_id}/alerts/", params={"metric": f"latency{NUL}"}, headers=tenant.headers
    )
    # Then the parameter is named, not a driver error
    assert _problem(response) == (422, "invalid_input", "metric"), response.text


def test_a_file_with_nul_is_ingested_without_it(client: TestClient, tenant: Tenant, container: Container) -> None:
    # Given a text file whose content holds NUL (PDF text layers do), and a title with NUL
    files = {"file": ("guide.txt", f"Refunds{NUL} are paid within five days.".encode(), "text/plain")}
    # When it is uploaded without a title, and again with a NUL title
    stored = client.post(f"/query/v1/projects/{tenant.project_id}/documents/", files=files, headers=tenant.headers)
    titled = client.post(
        f"/query/v1/projects/{tenant.project_id}/documents/",
        files=files,
        data={"title": f"Guide{NUL}"},
        headers=tenant.headers,
    )
    # Then the file's text is stored without the NUL (the stated policy for files), and the title is a 422
    assert stored.status_code in (201, 202), stored.text
    assert _problem(titled) == (422, "invalid_input", "title")
    document_id = stored.json()["id"]
    with psycopg.connect(container.settings.database_url) as conn:
        texts = [r[0] for r in conn.execute("SELECT content FROM chunks WHERE document_id = %s", (document_id,))]
    assert texts and all(NUL not in t for t in texts) and "Refunds are paid" in texts[0]


@pytest.mark.parametrize("field", ["name", "min_samples", "enabled", "metric", "kind"])
def test_alert_rule_patch_with_null_where_a_value_is_required_is_a_422(
    client: TestClient, tenant: Tenant, field: str
) -> None:
    # Given a rule
    rules = f"/query/v1/projects/{tenant.project_id}/alert-rules/"
    rule = client.post(
        rules,
        json={"kind": "threshold", "metric": "latency_ms", "operator": ">", "threshold": 5000},
        headers=tenant.headers,
    ).json()
    # When a PATCH sets a field that always has a value to null
    response = client.patch(f"{rules}{rule['id']}/", json={field: None}, headers=tenant.headers)
    # Then it is a 422 naming the field, and the rule is unchanged
    assert _problem(response) == (422, "invalid_input", field), response.text
    assert client.get(f"{rules}{rule['id']}/", headers=tenant.headers).json() == rule


def test_category_patch_with_null_is_a_422_naming_the_field(client: TestClient, tenant: Tenant) -> None:
    # Given a category
    base = f"/query/v1/projects/{tenant.project_id}/categories/"
    category = client.post(base, json={"name": "Billing"}, headers=tenant.headers).json()
    # When its name is patched to null
    response = client.patch(f"{base}{category['id']}/", json={"name": None}, headers=tenant.headers)
    # Then null is not taken for "leave it"
    assert _problem(response) == (422, "invalid_input", "name")


@pytest.mark.parametrize(
    "cursor",
    [
        "WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgNV0=",  # ["2026-01-01T00:00:00+00:00", 5]: the finding
        "WyJ0IiwiMjAyNi0wMS0wMVQwMDowMDowMCswMDowMCIsIm5vdC1hLXV1aWQiXQ",  # ["t", "2026-...", "not-a-uuid"]
        "WyJ0IiwiOTk5OS0xMi0zMVQyMzowMDowMC0wNTowMCIsIjVlYjdlNzE3LTBmNjYtNGRlOC1hZDQ2LWFkNTlhZGJhYjg0ZiJd",
    ],
)
def test_a_crafted_alerts_cursor_is_a_422_naming_cursor(client: TestClient, tenant: Tenant, cursor: str) -> None:
    # Given a cursor the server never handed out
    # When it is passed back
    response = client.get(
        f"/query/v1/projects/{tenant.project_id}/alerts/", params={"cursor": cursor}, headers=tenant.headers
    )
    # Then it is refused as a cursor, not a 500
    assert _problem(response) == (422, "invalid_input", "cursor"), response.text


@pytest.mark.parametrize(
    "params",
    [
        {"from": "9999-12-31T00:00:00-05:00"},
        {"from": "0001-01-01T00:00:00+05:00", "to": "2026-01-01T00:00:00Z"},
        {"to": "9999-12-31T23:00:00-05:00"},
    ],
)
def test_analytics_outside_the_sane_range_is_a_422(client: TestClient, tenant: Tenant, params: dict[str, str]) -> None:
    # Given a range at the ends of the calendar, with an offset that pushes it past them in UTC
    # When analytics are asked for it
    response = client.get(f"/query/v1/projects/{tenant.project_id}/analytics/", params=params, headers=tenant.headers)
    # Then the parameter is named
    assert _problem(response) == (422, "invalid_input", next(iter(params))), response.text


def test_a_model_answer_with_nul_is_saved_and_the_stream_ends_done(
    live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant, llm_container: Container
) -> None:
    # Given a model that answers with a NUL in its text
    upload(live, tenant, "Billing", "# Billing\n\nRefunds are paid within five days.")
    llm_stub.script(Reply(text=f"Refunds{NUL} take five days."))
    # When the answer is streamed
    with connect_sse(
        live,
        "POST",
        f"/query/v1/projects/{tenant.project_id}/chat/stream/",
        json={"query": "Refunds?"},
        headers=tenant.headers,
    ) as source:
        events = [(e.event, json.loads(e.data)) for e in source.iter_sse()]
    # Then the stream ends with done, and the thread it announced holds the question and the answer without NUL
    assert events[0][0] == "meta" and events[-1][0] == "done"
    thread = live.get(f"/query/v1/threads/{events[0][1]['thread_id']}/", headers=tenant.headers).json()
    assert thread["messages"][0]["question"] == "Refunds?"
    assert thread["messages"][0]["answer"] == "Refunds take five days."


def test_a_stream_whose_save_fails_after_sources_ends_with_an_error_event(
    live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant, llm_container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a database that refuses the answer's write (a fault injected at the repository: a real outage
    # would take the question's write down too)
    def refuse(*_: object) -> None:
        raise psycopg.OperationalError("the server closed the connection")

    monkeypatch.setattr(llm_container.chat._repo, "finish_exchange", refuse)
    llm_stub.script(Reply(text="Five days."))
    # When the answer is streamed
    with connect_sse(
        live,
        "POST",
        f"/query/v1/projects/{tenant.project_id}/chat/stream/",
        json={"query": "Refunds?"},
        headers=tenant.headers,
    ) as source:
        events = [(e.event, json.loads(e.data)) for e in source.iter_sse()]
    # Then the client is told: `error` is the last event, never a dropped connection; the question announced is saved
    names = [name for name, _ in events]
    assert names[0] == "meta" and names[-1] == "error" and "done" not in names
    assert events[-1][1]["code"] == "internal_error" and "server closed" not in events[-1][1]["message"]
    thread = live.get(f"/query/v1/threads/{events[0][1]['thread_id']}/", headers=tenant.headers).json()
    assert thread["messages"][0]["question"] == "Refunds?"


def test_a_body_that_does_not_parse_is_a_422_naming_body(client: TestClient, tenant: Tenant) -> None:
    # Given bytes that are not JSON (nor UTF-8), sent as JSON (schemathesis found these were an undocumented 400)
    # When they are posted to a JSON route
    response = client.post(
        f"/query/v1/projects/{tenant.project_id}/alert-rules/",
        content=b"\n\x03\xff\xfe\\X",
        headers={**tenant.headers, "content-type": "application/json"},
    )
    # Then it is the documented invalid-input error, naming the body
    assert _problem(response) == (422, "invalid_input", "body"), response.text


@pytest.mark.parametrize("path", ["documents/", "interactions/import/"])
def test_a_multipart_body_that_does_not_parse_is_a_422_naming_body(
    client: TestClient, tenant: Tenant, path: str
) -> None:
    # Given a multipart body whose part has no headers (schemathesis found this was a 500 on both uploads)
    boundary = "0d37f771f3609e9baf6be26654101f5f"
    # When it is uploaded
    response = client.post(
        f"/query/v1/projects/{tenant.project_id}/{path}",
        content=f"--{boundary}\r\nTrue--{boundary}--\r\n".encode(),
        headers={**tenant.headers, "content-type": f"multipart/form-data; boundary={boundary}"},
    )
    # Then it is the documented invalid-input error, naming the body
    assert _problem(response) == (422, "invalid_input", "body"), response.text
