"""Categories of a project: list, create, read, update, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from threadline.api.deps import ContainerDep, ProjectIdDep
from threadline.domain import categories
from threadline.domain.categories import (
    MAX_DESCRIPTION_CHARS,
    MAX_EXAMPLE_CHARS,
    MAX_EXAMPLES,
    MAX_NAME_CHARS,
    Category,
    CategoryChanges,
)

router = APIRouter(prefix="/query/v1/projects/{project_id}/categories", tags=["categories"])

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS)]
Examples = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=MAX_EXAMPLE_CHARS)]], Field(max_length=MAX_EXAMPLES)
]


class CategoryCreate(BaseModel):
    """A new category: the name is unique in the project, whatever its case."""

    name: Name
    description: Description = ""
    examples: Examples = Field(default_factory=list)


class CategoryUpdate(BaseModel):
    """Fields to change; omitted fields stay as they are."""

    name: Name | None = None
    description: Description | None = None
    examples: Examples | None = None


class CategoryPublic(BaseModel):
    """A category as the API shows it."""

    id: UUID
    name: str
    description: str
    examples: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, category: Category) -> CategoryPublic:
        """From the domain entity."""
        return cls(
            id=category.id,
            name=category.name,
            description=category.description,
            examples=list(category.examples),
            created_at=category.created_at,
            updated_at=category.updated_at,
        )


class CategoryDeletedPublic(BaseModel):
    """What deleting did: threads cleared of the category, and how many were queued for relabelling."""

    id: UUID
    threads_cleared: int
    threads_queued: int


@router.get("/")
async def list_categories(container: ContainerDep, project_id: ProjectIdDep) -> list[CategoryPublic]:
    """The project's categories, oldest first."""
    found = await run_in_threadpool(container.categories.list_categories, project_id)
    return [CategoryPublic.of(c) for c in found]


@router.post("/", status_code=201)
async def create_category(container: ContainerDep, project_id: ProjectIdDep, body: CategoryCreate) -> CategoryPublic:
    """Add a category; 409 when the project has one with the same name (case-insensitively)."""
    created = await run_in_threadpool(
        categories.create_category, container.categories, project_id, body.name, body.description, body.examples
    )
    return CategoryPublic.of(created)


@router.get("/{category_id}/")
async def get_category(container: ContainerDep, project_id: ProjectIdDep, category_id: UUID) -> CategoryPublic:
    """One category of the project."""
    return CategoryPublic.of(await run_in_threadpool(container.categories.get_category, project_id, category_id))


@router.patch("/{category_id}/")
async def update_category(
    container: ContainerDep, project_id: ProjectIdDep, category_id: UUID, body: CategoryUpdate
) -> CategoryPublic:
    """Rename or re-describe a category; its threads keep it."""
    changes = CategoryChanges(
        name=body.name,
        description=body.description,
        examples=None if body.examples is None else tuple(body.examples),
    )
    updated = await run_in_threadpool(
        categories.update_category, container.categories, project_id, category_id, changes
    )
    return CategoryPublic.of(updated)


@router.delete("/{category_id}/", responses={200: {"model": CategoryDeletedPublic}})
async def delete_category(
    container: ContainerDep, project_id: ProjectIdDep, category_id: UUID, response: Response
) -> CategoryDeletedPublic:
    """Delete a category: its threads (user-labelled ones too) are cleared and queued for relabelling."""
    deleted = await run_in_threadpool(
        categories.delete_category, container.categories, container.classify_queue, project_id, category_id
    )
    response.status_code = 200
    return CategoryDeletedPublic(
        id=deleted.category_id, threads_cleared=deleted.threads_cleared, threads_queued=deleted.threads_queued
    )
