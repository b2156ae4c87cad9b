"""FastAPI dependencies: the container and the authenticated principal."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from threadline.bootstrap import Container
from threadline.domain.errors import NotFound
from threadline.domain.tenancy import Principal, authenticate

_api_key_header = APIKeyHeader(name="X-API-KEY", auto_error=False, description="A project API key")


def get_container(request: Request) -> Container:
    """The container the app was built with."""
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_principal(container: ContainerDep, api_key: Annotated[str | None, Depends(_api_key_header)]) -> Principal:
    """Authenticate X-API-KEY; 401 when missing or invalid."""
    return await run_in_threadpool(authenticate, container.tenancy, api_key)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_project(principal: Principal, project_id: UUID) -> UUID:
    """A key sees its own project only; any other project is reported as absent, never as forbidden."""
    if principal.project_id != project_id:
        raise NotFound("project not found")
    return project_id


async def project_scope(project_id: UUID, principal: PrincipalDep) -> UUID:
    """Dependency for `/projects/{project_id}/...` routes: the project id, checked against the key."""
    return require_project(principal, project_id)


ProjectIdDep = Annotated[UUID, Depends(project_scope)]
