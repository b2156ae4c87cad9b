"""Fixtures of the web tests: a project with an admin key and a widget key, and the app over a real database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.settings import Settings

DOCS = "https://docs.example.com"
CONSOLE = "https://console.example.com"


@dataclass(frozen=True)
class Site:
    """A project with its admin key and a widget key for DOCS."""

    project_id: UUID
    admin_key: str
    widget_key: str
    widget_key_id: UUID

    @property
    def admin(self) -> dict[str, str]:
        """Headers of a server-side admin call."""
        return {"X-API-KEY": self.admin_key}

    @property
    def widget(self) -> dict[str, str]:
        """Headers of the widget's call from a page of DOCS."""
        return {"X-API-KEY": self.widget_key, "Origin": DOCS}


def make_site(container: Container, name: str) -> Site:
    """A team, a project, an admin key and a widget key."""
    team = tenancy.create_team(container.tenancy, f"team {name}")
    project = tenancy.create_project(container.tenancy, team.id, name)
    admin = tenancy.issue_api_key(container.tenancy, project.id, "server")
    widget = tenancy.issue_api_key(container.tenancy, project.id, "docs widget", tenancy.WIDGET, [DOCS])
    return Site(project.id, admin.key, widget.key, widget.info.id)


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    """The test's settings with a console origin (and the default widget limits)."""
    return settings.model_copy(update={"console_origins": CONSOLE})


@pytest.fixture
def web_container(web_settings: Settings, embedder: object) -> Iterator[Container]:
    """A container on the test's database with the web settings, sharing the session's embedding model."""
    built = Container(web_settings)
    built.__dict__["embedder"] = embedder
    built.__dict__["query_embedder"] = embedder
    yield built
    built.close()


@pytest.fixture
def site(web_container: Container) -> Site:
    """The project under test."""
    return make_site(web_container, "acme")


@pytest.fixture
def client(web_container: Container) -> Iterator[TestClient]:
    """The app in-process."""
    from threadline.api.app import create_app

    with TestClient(create_app(web_container)) as test_client:
        yield test_client
