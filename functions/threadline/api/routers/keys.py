"""The calling key's own project, and the project's keys (listed by prefix, never in full)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from threadline.api.deps import ContainerDep, PrincipalDep, ProjectIdDep

router = APIRouter(prefix="/query/v1", tags=["projects"])


class ProjectPublic(BaseModel):
    """A project as its key sees it."""

    id: UUID
    team_id: UUID
    name: str
    created_at: datetime


class ApiKeyPublic(BaseModel):
    """A key, by its public prefix."""

    id: UUID
    prefix: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


@router.get("/me/")
async def whoami(container: ContainerDep, principal: PrincipalDep) -> ProjectPublic:
    """The project the presented key belongs to."""
    project = await run_in_threadpool(container.tenancy.get_project, principal.project_id)
    return ProjectPublic(id=project.id, team_id=project.team_id, name=project.name, created_at=project.created_at)


@router.get("/projects/{project_id}/")
async def get_project(container: ContainerDep, project_id: ProjectIdDep) -> ProjectPublic:
    """One project; 404 for any project but the key's own."""
    project = await run_in_threadpool(container.tenancy.get_project, project_id)
    return ProjectPublic(id=project.id, team_id=project.team_id, name=project.name, created_at=project.created_at)


@router.get("/projects/{project_id}/api-keys/")
async def list_keys(container: ContainerDep, project_id: ProjectIdDep) -> list[ApiKeyPublic]:
    """The project's keys by prefix, revoked ones included."""
    keys = await run_in_threadpool(container.tenancy.list_api_keys, project_id)
    return [
        ApiKeyPublic(
            id=k.id,
            prefix=k.prefix,
            name=k.name,
            created_at=k.created_at,
            revoked_at=k.revoked_at,
            last_used_at=k.last_used_at,
        )
        for k in keys
    ]
