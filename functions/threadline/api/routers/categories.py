"""Categories of a project: list, create, read, update, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from threadline.api.deps import ContainerDep, ProjectIdDep
from threadline.api.errors import CONFLICT
from threadline.api.models import Omittable, RequestModel
from threadline.api.pagination import PageDep, PagePublic
from threadline.api.routing import contract_router
from threadline.domain import categories
from threadline.domain.categories import (
    MAX_DESCRIPTION_CHARS,
    MAX_EXAMPLE_CHARS,
    MAX_EXAMPLES,
    MAX_NAME_CHARS,
    CategoryChanges,
)
from threadline.domain.errors import InvalidInput

router = contract_router(prefix="/query/v1/projects/{project_id}/categories", tags=["categories"])

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS)]
Examples = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=MAX_EXAMPLE_CHARS)]], Field(max_length=MAX_EXAMPLES)
]


class CategoryCreate(RequestModel):
    """A new category: the name is unique in the project, whatever its case."""

    name: Name
    description: Description = ""
    examples: Examples = Field(default_factory=list)


class CategoryUpdate(RequestModel):
    """Fields to change (at least one); omitted fields stay as they are, and null is a 422 naming the field."""

    name: Omittable[Name] = None
    description: Omittable[Description] = None
    examples: Omittable[Examples] = None


class CategoryPublic(BaseModel):
    """A category as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    description: str
    examples: list[str]
    created_at: datetime
    updated_at: datetime


class CategoryDeletedPublic(BaseModel):
    """What deleting did: threads cleared of the category, and how many were queued for relabelling."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID = Field(validation_alias="category_id")
    threads_cleared: int
    threads_queued: int


@router.get("/")
def list_categories(container: ContainerDep, project_id: ProjectIdDep, page: PageDep) -> PagePublic[CategoryPublic]:
    """The project's categories, oldest first."""
    return PagePublic[CategoryPublic].of(categories.list_categories(container.categories, project_id, page))


@router.post("/", status_code=201, responses=CONFLICT)
def create_category(container: ContainerDep, project_id: ProjectIdDep, body: CategoryCreate) -> CategoryPublic:
    """Add a category; 409 when the project has one with the same name (case-insensitively)."""
    created = categories.create_category(container.categories, project_id, body.name, body.description, body.examples)
    return CategoryPublic.model_validate(created)


@router.get("/{category_id}/")
def get_category(container: ContainerDep, project_id: ProjectIdDep, category_id: UUID) -> CategoryPublic:
    """One category of the project."""
    return CategoryPublic.model_validate(container.categories.get_category(project_id, category_id))


@router.patch("/{category_id}/", responses=CONFLICT)
def update_category(
    container: ContainerDep, project_id: ProjectIdDep, category_id: UUID, body: CategoryUpdate
) -> CategoryPublic:
    """Rename or re-describe a category; its threads keep it. A body that changes nothing is a 422."""
    if body.name is None and body.description is None and body.examples is None:
        raise InvalidInput("nothing to change: send name, description or examples", field="body")
    changes = CategoryChanges(
        name=body.name,
        description=body.description,
        examples=None if body.examples is None else tuple(body.examples),
    )
    updated = categories.update_category(container.categories, project_id, category_id, changes)
    return CategoryPublic.model_validate(updated)


@router.delete("/{category_id}/")
def delete_category(container: ContainerDep, project_id: ProjectIdDep, category_id: UUID) -> CategoryDeletedPublic:
    """Delete a category: its threads (user-labelled ones too) are cleared and queued for relabelling."""
    deleted = categories.delete_category(container.categories, container.classify_queue, project_id, category_id)
    return CategoryDeletedPublic.model_validate(deleted)
