"""No stored chunk is longer than what the model reads: real documents through the real pipeline."""

from __future__ import annotations

import io
import pydoc
import textwrap
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.integration.rag.conftest import Tenant
from threadline.adapters.embeddings import MAX_TOKENS, WordPieceCounter
from threadline.bootstrap import Container

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]


def _pdf_of(text: str) -> bytes:
    """A multi-page PDF holding `text`, one line per row, as a word processor's export would."""
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    y = 800
    for line in text.splitlines():
        for row in textwrap.wrap(line, 95) or [""]:
            pdf.drawString(40, y, row)
            y -= 14
            if y < 40:
                pdf.showPage()
                y = 800
    pdf.save()
    return buffer.getvalue()


def test_no_stored_chunk_exceeds_the_models_window(
    client: TestClient, container: Container, tenant: Tenant, tokenizer_path: Path
) -> None:
    # Given real documents in three formats: this README (Markdown), the HTML that pydoc renders for
    # the stdlib's textwrap module (code, signatures, long identifiers), and a PDF of the architecture notes
    architecture = (REPO_ROOT / "docs" / "architecture.md").read_text().splitlines()[:80]
    uploads = [
        ("README.md", (REPO_ROOT / "README.md").read_bytes(), "text/markdown"),
        ("textwrap.html", pydoc.HTMLDoc().page("textwrap", pydoc.HTMLDoc().document(textwrap)).encode(), "text/html"),
        ("architecture.pdf", _pdf_of("\n".join(architecture)), "application/pdf"),
    ]

    # When each is uploaded through the API (parse, chunk, embed, store)
    for name, data, media_type in uploads:
        response = client.post(
            f"/query/v1/projects/{tenant.project_id}/documents/",
            files={"file": (name, data, media_type)},
            headers=tenant.headers,
        )
        assert response.status_code == 201 and response.json()["status"] == "ready", response.text

    # Then every stored chunk, as embedded (heading path, line break, text), fits in 256 word pieces
    with psycopg.connect(container.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT d.title, c.heading, c.content FROM chunks c JOIN documents d ON d.id = c.document_id"
            " WHERE c.project_id = %s",
            (tenant.project_id,),
        ).fetchall()
    counts = WordPieceCounter(tokenizer_path).count_tokens([f"{h}\n{c}" if h else c for _, h, c in rows])
    assert {title for title, _, _ in rows} == {"README.md", "textwrap.html", "architecture.pdf"}
    assert max(counts) <= MAX_TOKENS, max(counts)
    # and the window is used, not wasted: chunks are cut near it, not at a few words
    assert sorted(counts)[len(counts) // 2] > MAX_TOKENS // 3
    # and the headings stay with their chunks
    assert any(h.startswith("Threadline > ") for title, h, _ in rows if title == "README.md")
