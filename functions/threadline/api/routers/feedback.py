"""Feedback on answers: a rating and an optional comment, one per answer and key."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from threadline.api.deps import ContainerDep, PrincipalDep
from threadline.api.models import RequestModel
from threadline.api.routing import contract_router
from threadline.domain.feedback import MAX_COMMENT_CHARS, rate_answer

router = contract_router(prefix="/query/v1", tags=["feedback"])


class FeedbackCreate(RequestModel):
    """A rating of an answer, with an optional comment."""

    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)


class FeedbackPublic(BaseModel):
    """The key's rating of an answer as stored (a second POST replaces the first)."""

    model_config = ConfigDict(from_attributes=True)

    question_answer_id: UUID
    rating: Literal["up", "down"]
    comment: str | None
    created_at: datetime
    updated_at: datetime


@router.post("/answers/{question_answer_id}/feedback/")
def rate(
    question_answer_id: UUID, body: FeedbackCreate, container: ContainerDep, principal: PrincipalDep
) -> FeedbackPublic:
    """Rate an answer of the key's project (a widget key: of a thread it started); the same key rating again
    replaces its rating, so retries never count twice. 404 for any other answer."""
    feedback = rate_answer(
        container.feedback,
        container.alerts,
        principal.project_id,
        question_answer_id,
        principal.key_id,
        body.rating,
        body.comment,
        principal.key_id if principal.is_widget else None,
    )
    return FeedbackPublic.model_validate(feedback)
