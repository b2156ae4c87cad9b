"""The calling key's own project, and the project's keys (listed by prefix, never in full)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from threadline.api.deps import ContainerDep, PrincipalDep, ProjectIdDep
from threadline.api.errors import API_ERRORS
from threadline.api.pagination import PageDep, PagePublic
from threadline.domain import tenancy

router = APIRouter(prefix="/query/v1", tags=["projects"], responses=API_ERRORS)


class ProjectPublic(BaseModel):
    """A project as its key sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    team_id: UUID
    name: str
    created_at: datetime


class ApiKeyPublic(BaseModel):
    """A key, by its public prefix."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    prefix: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


@router.get("/me/")
def whoami(container: ContainerDep, principal: PrincipalDep) -> ProjectPublic:
    """The project the presented key belongs to."""
    return ProjectPublic.model_validate(container.tenancy.get_project(principal.project_id))


@router.get("/projects/{project_id}/")
def get_project(container: ContainerDep, project_id: ProjectIdDep) -> ProjectPublic:
    """One project; 404 for any project but the key's own."""
    return ProjectPublic.model_validate(container.tenancy.get_project(project_id))


@router.get("/projects/{project_id}/api-keys/")
def list_keys(container: ContainerDep, project_id: ProjectIdDep, page: PageDep) -> PagePublic[ApiKeyPublic]:
    """The project's keys by prefix, oldest first, revoked ones included."""
    return PagePublic[ApiKeyPublic].of(tenancy.list_api_keys(container.tenancy, project_id, page))
