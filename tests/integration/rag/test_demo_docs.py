"""The demo project gets the repository's own documentation, so the first question has a grounded answer."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.integration.rag.conftest import Tenant
from threadline.bootstrap import Container
from threadline.local.demo_docs import REPO_ROOT, ingest_repository_docs, repository_docs

pytestmark = pytest.mark.integration


def test_repository_docs_are_ingested_once_and_answer_a_newcomer(
    client: TestClient, container: Container, tenant: Tenant
) -> None:
    # Given the repository's README and docs/
    expected = [p.relative_to(REPO_ROOT).as_posix() for p in repository_docs()]
    assert expected[0] == "README.md" and "docs/architecture.md" in expected
    # When they are ingested into the demo project, twice
    first = ingest_repository_docs(container, tenant.project_id)
    again = ingest_repository_docs(container, tenant.project_id)
    # Then each is ready once, and the second run is a no-op
    assert [d.title for d in first] == expected
    assert all(d.status == "ready" and d.chunk_count > 0 for d in first)
    assert [d.id for d in again] == [d.id for d in first]
    # And a newcomer's first question is answered from the README
    path = f"/query/v1/projects/{tenant.project_id}/chat/"
    answer = client.post(path, json={"query": "How do I run the tests?"}, headers=tenant.headers).json()
    assert any(s["title"] == "README.md" for s in answer["sources"][:3])
