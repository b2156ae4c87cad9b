"""The thread listing with labels, and label corrections."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import Query
from pydantic import BaseModel, ConfigDict

from threadline.api.deps import ContainerDep, PrincipalDep, ProjectIdDep
from threadline.api.models import Instant, RequestModel
from threadline.api.pagination import PageDep, PagePublic
from threadline.api.routing import contract_router
from threadline.domain import labels
from threadline.domain.channels import Channel

router = contract_router(prefix="/query/v1", tags=["threads"])


class CategoryRefPublic(BaseModel):
    """A thread's category."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str


class ThreadListItem(BaseModel):
    """One thread in the listing."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    category: CategoryRefPublic | None
    label_source: Literal["auto", "user"] | None
    label_confidence: float | None
    label_model: str | None
    labelled_at: datetime | None
    first_question: str | None
    message_count: int
    created_at: datetime
    updated_at: datetime
    channel: Channel
    # An auto label's second choice (null for user labels): what the classifier hesitated over.
    label_runner_up: CategoryRefPublic | None


class LabelCorrection(RequestModel):
    """A user's label: a category id of the thread's project, or null to hand the thread back to the classifier."""

    category_id: UUID | None


@router.get("/projects/{project_id}/threads/")
def list_threads(
    container: ContainerDep,
    project_id: ProjectIdDep,
    page: PageDep,
    category_id: UUID | None = None,
    unlabelled: bool = False,
    label_source: Literal["auto", "user"] | None = None,
    created_after: Annotated[Instant | None, Query(description="ISO 8601 with a zone")] = None,
    created_before: Annotated[Instant | None, Query(description="ISO 8601 with a zone")] = None,
    channel: Channel | None = None,
    label_confidence_below: Annotated[
        float | None, Query(description="only auto labels whose confidence is below this (0-1]: review these first")
    ] = None,
) -> PagePublic[ThreadListItem]:
    """Threads newest first, by keyset pagination, with their labels and the channel each came through."""
    query = labels.build_query(
        page, category_id, unlabelled, label_source, created_after, created_before, channel, label_confidence_below
    )
    return PagePublic[ThreadListItem].of(labels.list_threads(container.labels, project_id, query))


@router.patch("/threads/{thread_id}/")
def correct_label(
    container: ContainerDep, principal: PrincipalDep, thread_id: UUID, body: LabelCorrection
) -> ThreadListItem:
    """Set a user label (never overwritten by the classifier), or null to let the classifier label it again."""
    thread = labels.correct_label(
        container.labels, container.classify_queue, principal.project_id, thread_id, body.category_id
    )
    return ThreadListItem.model_validate(thread)
