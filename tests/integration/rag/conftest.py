"""Fixtures of the RAG tests: tenants with keys and the app over a real database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.app import new_project
from threadline.bootstrap import Container
from threadline.local.openai_stub import OpenAIStub
from threadline.local.serving import BackgroundServer
from threadline.settings import Settings


@dataclass(frozen=True)
class Tenant:
    """A project and a key for it."""

    project_id: UUID
    key: str

    @property
    def headers(self) -> dict[str, str]:
        """Headers that authenticate as this project."""
        return {"X-API-KEY": self.key}


def make_tenant(container: Container, name: str) -> Tenant:
    """A team, a project and a key (`new_project`), as the RAG tests name them."""
    made = new_project(container, name)
    return Tenant(made.id, made.key)


@pytest.fixture
def tenant(container: Container) -> Tenant:
    """The project under test."""
    return make_tenant(container, "acme")


@pytest.fixture
def other_tenant(container: Container) -> Tenant:
    """Another customer, who must never see the first one's data."""
    return make_tenant(container, "globex")


@pytest.fixture
def llm_stub() -> Iterator[OpenAIStub]:
    """A real HTTP server speaking the OpenAI streaming protocol, scripted per test."""
    stub = OpenAIStub()
    with BackgroundServer(stub.app) as server:
        stub.base_url = f"{server.url}/v1"
        yield stub


@pytest.fixture
def llm_container(settings: Settings, embedder: object, llm_stub: OpenAIStub) -> Iterator[Container]:
    """A container whose language model is the stub, through the real `openai` SDK."""
    configured = settings.model_copy(
        update={"openai_base_url": llm_stub.base_url, "openai_api_key": "sk-test", "llm_model": "stub-model"}
    )
    built = Container(configured)
    built.__dict__["embedder"] = embedder
    built.__dict__["query_embedder"] = embedder
    yield built
    built.close()


@pytest.fixture
def live_url(llm_container: Container) -> Iterator[str]:
    """The app on a real uvicorn (needed for SSE clients and for disconnecting mid-stream)."""
    from threadline.api.app import create_app

    with BackgroundServer(create_app(llm_container)) as server:
        yield server.url


def upload(client: TestClient | httpx.Client, tenant: Tenant, title: str, text: str) -> str:
    """Ingest a Markdown text; returns its document id."""
    response = client.post(
        f"/query/v1/projects/{tenant.project_id}/documents/",
        json={"title": title, "text": text},
        headers=tenant.headers,
    )
    assert response.status_code in (200, 201), response.text
    document_id: str = response.json()["id"]
    return document_id
