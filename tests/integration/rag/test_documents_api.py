"""Documents through the API: upload in every format, dedupe, status, listing, deletion, isolation."""

from __future__ import annotations

import io

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.integration.rag.conftest import Tenant
from threadline.bootstrap import Container

pytestmark = pytest.mark.integration

GUIDE = """# Widget guide

## Installing

Download the installer from the portal. Run it as an administrator and accept the licence.

## Resetting the password

Open Settings, choose Security and press "Reset password". A link valid for 24 hours is emailed to you.
"""


def _docs_url(tenant: Tenant) -> str:
    return f"/query/v1/projects/{tenant.project_id}/documents/"


def _chunk_count(container: Container, document_id: str) -> int:
    with psycopg.connect(container.settings.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM chunks WHERE document_id = %s", (document_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_markdown_upload_is_chunked_embedded_and_deduplicated(
    client: TestClient, container: Container, tenant: Tenant
) -> None:
    # Given a Markdown file
    files = {"file": ("guide.md", GUIDE.encode(), "text/markdown")}
    # When it is uploaded twice
    first = client.post(_docs_url(tenant), files=files, headers=tenant.headers)
    again = client.post(_docs_url(tenant), files=files, headers=tenant.headers)
    # Then the first creates a ready document with chunks, the second returns the same document
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["status"] == "ready" and body["chunk_count"] >= 2 and body["title"] == "guide.md"
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert _chunk_count(container, body["id"]) == body["chunk_count"]
    # And the chunks keep their headings
    with psycopg.connect(container.settings.database_url) as conn:
        headings = {r[0] for r in conn.execute("SELECT heading FROM chunks WHERE document_id = %s", (body["id"],))}
    assert "Widget guide > Resetting the password" in headings


@pytest.mark.parametrize(
    ("filename", "content", "media_type"),
    [
        ("faq.html", b"<h1>FAQ</h1><p>Shipping takes three days.</p>", "text/html"),
        ("notes.txt", b"Shipping takes three days.", "text/plain"),
    ],
)
def test_html_and_text_uploads_become_ready(
    client: TestClient, tenant: Tenant, filename: str, content: bytes, media_type: str
) -> None:
    response = client.post(_docs_url(tenant), files={"file": (filename, content, media_type)}, headers=tenant.headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "ready" and response.json()["content_type"] == media_type


def test_word_upload_is_read_under_its_headings(client: TestClient, container: Container, tenant: Tenant) -> None:
    # Given a .docx as a browser sends a file it has no type for
    from tests.unit.test_wordml import _word_file

    files = {"file": ("router manual.docx", _word_file(), "application/octet-stream")}
    # When it is uploaded
    response = client.post(_docs_url(tenant), files=files, headers=tenant.headers)
    # Then it is ingested as Word, and its chunks keep the headings
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "ready" and body["content_type"].endswith("wordprocessingml.document")
    with psycopg.connect(container.settings.database_url) as conn:
        rows = conn.execute("SELECT heading, content FROM chunks WHERE document_id = %s", (body["id"],)).fetchall()
    assert ("Setup > Resetting" in {r[0] for r in rows}) and any("Red | No signal" in r[1] for r in rows)


def test_pdf_upload_and_json_text_upload(client: TestClient, tenant: Tenant) -> None:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 720, "The warranty lasts two years from the date of purchase.")
    pdf.save()
    pdf_response = client.post(
        _docs_url(tenant),
        files={"file": ("warranty.pdf", buffer.getvalue(), "application/pdf")},
        headers=tenant.headers,
    )
    text_response = client.post(
        _docs_url(tenant), json={"title": "Shipping", "text": "We ship worldwide."}, headers=tenant.headers
    )
    assert pdf_response.status_code == 202 and pdf_response.json()["chunk_count"] == 1
    assert text_response.status_code == 202 and text_response.json()["title"] == "Shipping"


def test_corrupt_pdf_is_422_and_kept_as_failed_with_reason(client: TestClient, tenant: Tenant) -> None:
    # When a corrupt PDF is uploaded
    response = client.post(
        _docs_url(tenant),
        files={"file": ("broken.pdf", b"%PDF-1.4 this is not a pdf", "application/pdf")},
        headers=tenant.headers,
    )
    # Then the client gets a clear 4xx naming the reason
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "document_failed" and "PDF" in error["message"]
    # And the document is listed as failed with that reason
    listed = client.get(_docs_url(tenant), headers=tenant.headers).json()["results"]
    assert [(d["status"], d["id"]) for d in listed] == [("failed", error["details"]["document_id"])]
    assert listed[0]["error"]


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"files": {"file": ("sheet.xlsx", b"PK\x03\x04", "application/vnd.ms-excel")}}, 415),
        ({"json": {"title": "", "text": "x"}}, 422),
        ({"json": {"title": "Refunds", "text": "x", "tags": ["billing"]}}, 422),
        ({"content": b"raw", "headers": {"content-type": "application/octet-stream"}}, 422),
    ],
)
def test_unsupported_or_malformed_uploads_are_4xx(
    client: TestClient, tenant: Tenant, kwargs: dict[str, object], status: int
) -> None:
    headers = {**tenant.headers, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    response = client.post(_docs_url(tenant), headers=headers, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status
    assert response.json()["error"]["code"] == ("unsupported_media_type" if status == 415 else "invalid_input")


def test_listing_is_paginated_and_delete_removes_chunks(
    client: TestClient, container: Container, tenant: Tenant
) -> None:
    # Given three documents
    ids = [
        client.post(
            _docs_url(tenant), json={"title": f"Doc {i}", "text": f"Fact number {i}."}, headers=tenant.headers
        ).json()["id"]
        for i in range(3)
    ]
    # When listed two at a time
    first = client.get(_docs_url(tenant), params={"limit": 2}, headers=tenant.headers).json()
    second = client.get(
        _docs_url(tenant), params={"limit": 2, "cursor": first["next_cursor"]}, headers=tenant.headers
    ).json()
    # Then every document appears once, newest first
    assert [d["id"] for d in first["results"] + second["results"]] == ids[::-1]
    assert second["next_cursor"] is None
    # When one is deleted, Then it and its chunks are gone
    assert client.delete(f"{_docs_url(tenant)}{ids[0]}/", headers=tenant.headers).status_code == 204
    assert client.get(f"{_docs_url(tenant)}{ids[0]}/", headers=tenant.headers).status_code == 404
    assert _chunk_count(container, ids[0]) == 0


def test_another_project_cannot_see_or_delete_documents(
    client: TestClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    # Given a document of the tenant
    doc = client.post(
        _docs_url(tenant), json={"title": "Secret", "text": "Internal only."}, headers=tenant.headers
    ).json()
    # When the other project's key reaches for it by either project's path
    own_path = f"{_docs_url(other_tenant)}{doc['id']}/"
    their_path = f"{_docs_url(tenant)}{doc['id']}/"
    # Then it is absent everywhere, and still there for its owner
    assert client.get(own_path, headers=other_tenant.headers).status_code == 404
    assert client.get(their_path, headers=other_tenant.headers).status_code == 404
    assert client.delete(their_path, headers=other_tenant.headers).status_code == 404
    assert client.get(_docs_url(other_tenant), headers=other_tenant.headers).json()["results"] == []
    assert client.get(their_path, headers=tenant.headers).json()["status"] == "ready"
