"""Feedback on answers: a rating (up or down) and an optional comment, one per answer and key.

A second rating by the same key replaces the first (a retry, or a change of mind), so counts never double.
Each rated answer is also measured once as `feedback_down` (1 for down, 0 for up, from its first rating), so
alert rules and the metrics listing see the down-rate like any other metric (domain/metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

from threadline.domain.alerts import AlertRepository, judge, rules_for
from threadline.domain.errors import InvalidInput
from threadline.domain.metrics import FEEDBACK_DOWN, Measurement

Rating = Literal["up", "down"]
RATINGS: tuple[Rating, ...] = ("up", "down")
MAX_COMMENT_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Feedback:
    """One key's rating of one answer."""

    question_answer_id: UUID
    rating: Rating
    comment: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SavedFeedback:
    """A stored rating and the thread of the answer it rates."""

    feedback: Feedback
    thread_id: UUID


@dataclass(frozen=True, slots=True)
class FeedbackComment:
    """A comment left with a rating."""

    rating: Rating
    comment: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AnswerFeedback:
    """What an answer's ratings add up to, as its thread shows them; `mine` is the reading key's own rating."""

    up: int = 0
    down: int = 0
    mine: Rating | None = None
    comments: list[FeedbackComment] = field(default_factory=list)


class FeedbackRepository(Protocol):
    """Storage of ratings."""

    def save(
        self,
        project_id: UUID,
        message_id: UUID,
        api_key_id: UUID,
        rating: Rating,
        comment: str | None,
        started_by: UUID | None,
    ) -> SavedFeedback:
        """Insert or replace the key's rating of an answer of the project (in a thread `started_by` started,
        when given); NotFound otherwise."""
        ...

    def for_thread(self, thread_id: UUID, api_key_id: UUID) -> dict[UUID, AnswerFeedback]:
        """Every rated answer of the thread, by answer id, with `mine` for `api_key_id`."""
        ...


def clean_comment(comment: str | None) -> str | None:
    """A comment trimmed, None when blank; InvalidInput past MAX_COMMENT_CHARS."""
    if comment is None:
        return None
    cleaned = comment.strip()
    if len(cleaned) > MAX_COMMENT_CHARS:
        raise InvalidInput(f"comment must be at most {MAX_COMMENT_CHARS} characters", field="comment")
    return cleaned or None


def rate_answer(
    repo: FeedbackRepository,
    alerts: AlertRepository,
    project_id: UUID,
    message_id: UUID,
    api_key_id: UUID,
    rating: Rating,
    comment: str | None,
    started_by: UUID | None = None,
) -> Feedback:
    """Save a rating (replacing the key's earlier one) and measure the answer's `feedback_down` once.

    The measurement is its own transaction after the rating's: a crash between the two leaves a rating whose
    answer is measured by the next rating of it (any key's), and a retry measures nothing twice
    (interaction_metrics keeps the first value of an answer's metric).
    """
    if rating not in RATINGS:
        raise InvalidInput("rating must be 'up' or 'down'", field="rating")
    saved = repo.save(project_id, message_id, api_key_id, rating, clean_comment(comment), started_by)
    measurement = Measurement(
        message_id, saved.thread_id, FEEDBACK_DOWN, 1.0 if rating == "down" else 0.0, saved.feedback.created_at
    )
    alerts.record(project_id, [measurement], judge(rules_for(alerts, project_id)))
    return saved.feedback
