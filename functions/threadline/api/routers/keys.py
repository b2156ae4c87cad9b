"""The calling key's own project, and the project's keys (listed by prefix, never in full)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

from threadline.api.deps import ContainerDep, PrincipalDep, ProjectIdDep
from threadline.api.errors import CONFLICT
from threadline.api.models import RequestModel
from threadline.api.pagination import PageDep, PagePublic
from threadline.api.routing import contract_router
from threadline.domain import tenancy

router = contract_router(prefix="/query/v1", tags=["projects"])


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
    scope: Literal["admin", "widget"]
    origins: list[str] = Field(description="Browser origins a widget key works from (none for an admin key)")
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreate(RequestModel):
    """A new key: `admin` reaches every route of the project; `widget` only chats, from the listed origins."""

    name: str = Field(default="default", min_length=1, max_length=200)
    scope: Literal["admin", "widget"] = "admin"
    origins: list[str] = Field(
        default_factory=list,
        max_length=tenancy.MAX_ORIGINS,
        description="`scheme://host[:port]`, no path, no wildcard: at least one for a widget key, none for admin",
        examples=[["https://docs.example.com"]],
    )


class IssuedApiKeyPublic(ApiKeyPublic):
    """A new key with its secret, which is shown this once and never again."""

    key: str


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


@router.post("/projects/{project_id}/api-keys/", status_code=201)
def create_key(body: ApiKeyCreate, container: ContainerDep, project_id: ProjectIdDep) -> IssuedApiKeyPublic:
    """Create a key; the response is the only time its secret is shown (only a hash is stored)."""
    issued = tenancy.issue_api_key(container.tenancy, project_id, body.name, body.scope, body.origins)
    public = ApiKeyPublic.model_validate(issued.info)
    return IssuedApiKeyPublic(**public.model_dump(), key=issued.key)


@router.delete("/projects/{project_id}/api-keys/{key_id}/", status_code=204, responses=CONFLICT)
def revoke_key(key_id: UUID, container: ContainerDep, project_id: ProjectIdDep) -> Response:
    """Revoke a key (again is no error); 409 for the project's last active admin key, so no team locks itself out."""
    container.tenancy.revoke_api_key(project_id, key_id, keep_last_admin=True)
    return Response(status_code=204)
