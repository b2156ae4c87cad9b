"""The demo project gets the repository's own documentation, so the first question has a grounded answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.integration.rag.conftest import Tenant
from threadline.bootstrap import Container
from threadline.domain.pagination import PageRequest
from threadline.local.cloud import LocalCloud
from threadline.local.demo import DemoContext, ensure_demo, run_setup_hooks
from threadline.local.demo_docs import REPO_ROOT, ingest_repository_docs, repository_docs
from threadline.local.demo_setup import DEMO_SETUP
from threadline.local.demo_setup import ingest_repository_docs as docs_hook

# Slow (35-50 s each): they ingest the repository's own docs and run make dev's hook; `make test-slow`, CI runs them.
pytestmark = [pytest.mark.integration, pytest.mark.slow]


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


def test_make_dev_runs_the_docs_hook_once_for_the_demo_project(
    container: Container, cloud: LocalCloud, tmp_path: Path
) -> None:
    # Given the demo project `threadline dev` creates, and its setup hooks
    state = tmp_path / "demo.json"
    demo, _ = ensure_demo(container, state)
    context = DemoContext(container, cloud, demo, "http://127.0.0.1:0", REPO_ROOT)
    assert docs_hook in DEMO_SETUP
    # When the hooks run on two starts
    first = run_setup_hooks(DEMO_SETUP, context, state)
    second = run_setup_hooks(DEMO_SETUP, context, state)
    # Then the docs were ingested on the first only, and are there
    assert "threadline.local.demo_setup.ingest_repository_docs" in first and second == []
    listed = container.documents.list(demo.project_id, PageRequest(200))
    assert {d.title for d in listed} >= {"README.md", "docs/architecture.md"}
