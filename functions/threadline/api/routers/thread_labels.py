"""The thread listing with labels, and label corrections."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from threadline.api.deps import ContainerDep, PrincipalDep, ProjectIdDep
from threadline.domain import labels
from threadline.domain.channels import Channel
from threadline.domain.labels import MAX_PAGE, ThreadSummary

router = APIRouter(prefix="/query/v1", tags=["threads"])


class CategoryRefPublic(BaseModel):
    """A thread's category."""

    id: UUID
    name: str


class ThreadListItem(BaseModel):
    """One thread in the listing."""

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

    @classmethod
    def of(cls, thread: ThreadSummary) -> ThreadListItem:
        """From the domain summary."""
        category = CategoryRefPublic(id=thread.category.id, name=thread.category.name) if thread.category else None
        return cls(
            id=thread.id,
            category=category,
            label_source=thread.label_source,
            label_confidence=thread.label_confidence,
            label_model=thread.label_model,
            labelled_at=thread.labelled_at,
            first_question=thread.first_question,
            message_count=thread.message_count,
            created_at=thread.created_at,
            updated_at=thread.updated_at,
            channel=thread.channel,
        )


class ThreadListPage(BaseModel):
    """A page of threads, newest first; pass `next_cursor` as `cursor` for the next one (null at the end)."""

    results: list[ThreadListItem]
    next_cursor: str | None


class LabelCorrection(BaseModel):
    """A user's label: a category id of the thread's project, or null to hand the thread back to the classifier."""

    category_id: UUID | None


@router.get("/projects/{project_id}/threads/")
async def list_threads(
    container: ContainerDep,
    project_id: ProjectIdDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    category_id: UUID | None = None,
    unlabelled: bool = False,
    label_source: Literal["auto", "user"] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    channel: Channel | None = None,
) -> ThreadListPage:
    """Threads newest first, by keyset pagination, with their labels and the channel each came through."""
    query = labels.build_query(
        limit, cursor, category_id, unlabelled, label_source, created_after, created_before, channel
    )
    page = await run_in_threadpool(labels.list_threads, container.labels, project_id, query)
    return ThreadListPage(results=[ThreadListItem.of(t) for t in page.results], next_cursor=page.next_cursor)


@router.patch("/threads/{thread_id}/")
async def correct_label(
    container: ContainerDep, principal: PrincipalDep, thread_id: UUID, body: LabelCorrection
) -> ThreadListItem:
    """Set a user label (never overwritten by the classifier), or null to let the classifier label it again."""
    thread = await run_in_threadpool(
        labels.correct_label,
        container.labels,
        container.classify_queue,
        principal.project_id,
        thread_id,
        body.category_id,
    )
    return ThreadListItem.of(thread)
