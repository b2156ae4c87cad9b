"""Fixtures of the RAG tests: tenants with keys and the app over a real database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from threadline.bootstrap import Container
from threadline.domain import tenancy


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
    """A team, a project and a key."""
    team = tenancy.create_team(container.tenancy, f"team {name}")
    project = tenancy.create_project(container.tenancy, team.id, name)
    return Tenant(project.id, tenancy.issue_api_key(container.tenancy, project.id).key)


@pytest.fixture
def tenant(container: Container) -> Tenant:
    """The project under test."""
    return make_tenant(container, "acme")


@pytest.fixture
def other_tenant(container: Container) -> Tenant:
    """Another customer, who must never see the first one's data."""
    return make_tenant(container, "globex")


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    """The app in-process (JSON routes)."""
    from threadline.api.app import create_app

    with TestClient(create_app(container)) as test_client:
        yield test_client
