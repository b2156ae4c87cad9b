"""Ratings of answers in Postgres (migration 0013); the hourly rollup follows by trigger."""

from __future__ import annotations

from typing import LiteralString
from uuid import UUID

from threadline.adapters.postgres.db import Database, Row
from threadline.domain.errors import NotFound
from threadline.domain.feedback import AnswerFeedback, Feedback, FeedbackComment, Rating, SavedFeedback

# One statement: find the answer in the project (and, for a widget key, in a thread it started), then insert
# or replace this key's rating. A retry with the same body changes nothing the rollup counts.
_SAVE: LiteralString = (
    "WITH answer AS ("
    "  SELECT m.id, m.thread_id, m.project_id FROM messages m JOIN threads t ON t.id = m.thread_id"
    "  WHERE m.id = %(message_id)s AND m.project_id = %(project_id)s"
    "   AND (%(started_by)s::uuid IS NULL OR t.api_key_id = %(started_by)s::uuid))"
    " INSERT INTO answer_feedback AS f (message_id, api_key_id, project_id, rating, comment)"
    " SELECT id, %(api_key_id)s, project_id, %(rating)s, %(comment)s FROM answer"
    " ON CONFLICT (message_id, api_key_id) DO UPDATE"
    "  SET rating = EXCLUDED.rating, comment = EXCLUDED.comment, updated_at = now()"
    " RETURNING f.message_id, f.rating, f.comment, f.created_at, f.updated_at, (SELECT thread_id FROM answer)"
)
_FOR_THREAD: LiteralString = (
    "SELECT f.message_id, f.rating, f.comment, f.updated_at, f.api_key_id = %(api_key_id)s AS mine"
    " FROM messages m JOIN answer_feedback f ON f.message_id = m.id"
    " WHERE m.thread_id = %(thread_id)s ORDER BY f.updated_at, f.api_key_id"
)


class PostgresFeedback:
    """`FeedbackRepository` over Postgres."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def save(
        self,
        project_id: UUID,
        message_id: UUID,
        api_key_id: UUID,
        rating: Rating,
        comment: str | None,
        started_by: UUID | None,
    ) -> SavedFeedback:
        params = {
            "project_id": project_id,
            "message_id": message_id,
            "api_key_id": api_key_id,
            "rating": rating,
            "comment": comment,
            "started_by": started_by,
        }
        with self._db.transaction() as conn:
            row = conn.execute(_SAVE, params).fetchone()
        if row is None:
            raise NotFound("answer not found")
        feedback = Feedback(row["message_id"], row["rating"], row["comment"], row["created_at"], row["updated_at"])
        return SavedFeedback(feedback, row["thread_id"])

    def for_thread(self, thread_id: UUID, api_key_id: UUID) -> dict[UUID, AnswerFeedback]:
        with self._db.transaction() as conn:
            rows = conn.execute(_FOR_THREAD, {"thread_id": thread_id, "api_key_id": api_key_id}).fetchall()
        by_answer: dict[UUID, list[Row]] = {}
        for row in rows:
            by_answer.setdefault(row["message_id"], []).append(row)
        return {answer: _summary(ratings) for answer, ratings in by_answer.items()}


def _summary(rows: list[Row]) -> AnswerFeedback:
    mine = next((r["rating"] for r in rows if r["mine"]), None)
    return AnswerFeedback(
        up=sum(r["rating"] == "up" for r in rows),
        down=sum(r["rating"] == "down" for r in rows),
        mine=mine,
        comments=[FeedbackComment(r["rating"], r["comment"], r["updated_at"]) for r in rows if r["comment"]],
    )
