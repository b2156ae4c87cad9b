"""`SweeperRepository` in Postgres: unlabelled threads claimed in one statement, dead-letter notices."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from threadline.adapters.postgres.db import Database

# Oldest first, across projects, only where the classifier can label (the project has categories), and only
# threads not asked for since `requested_before`; the claim is recorded in the same statement.
_CLAIM = """
WITH due AS (
    SELECT t.id, t.project_id
    FROM threads t
    WHERE t.category_id IS NULL AND t.first_question IS NOT NULL AND t.created_at < %(created_before)s
      AND EXISTS (SELECT 1 FROM categories c WHERE c.project_id = t.project_id)
      AND NOT EXISTS (
          SELECT 1 FROM thread_sweeps s WHERE s.thread_id = t.id AND s.requested_at >= %(requested_before)s
      )
    ORDER BY t.created_at
    LIMIT %(limit)s
), claimed AS (
    INSERT INTO thread_sweeps (thread_id, requested_at)
    SELECT id, now() FROM due
    ON CONFLICT (thread_id) DO UPDATE SET requested_at = EXCLUDED.requested_at,
                                          attempts = thread_sweeps.attempts + 1
    RETURNING thread_id
)
SELECT due.project_id, due.id AS thread_id FROM due JOIN claimed ON claimed.thread_id = due.id
"""

_NOTICES = "SELECT queue, depth, notified_at FROM dead_letter_notices"

_FORGET = "DELETE FROM dead_letter_notices WHERE queue = %(queue)s"

_RECORD = """
INSERT INTO dead_letter_notices (queue, depth, notified_at) VALUES (%(queue)s, %(depth)s, %(at)s)
ON CONFLICT (queue) DO UPDATE SET depth = EXCLUDED.depth, notified_at = EXCLUDED.notified_at
"""


class PostgresSweeper:
    """The sweep's reads and marks."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim_unlabelled(
        self, created_before: datetime, requested_before: datetime, limit: int
    ) -> list[tuple[UUID, UUID]]:
        """Claim up to `limit` threads to ask the classifier for again."""
        params = {"created_before": created_before, "requested_before": requested_before, "limit": limit}
        return self._db.all(_CLAIM, params, row=lambda r: (r["project_id"], r["thread_id"]))

    def dead_letter_notices(self) -> dict[str, tuple[int, datetime]]:
        """The depth last reported per queue, and when."""
        return {r["queue"]: (r["depth"], r["notified_at"]) for r in self._db.all(_NOTICES)}

    def record_dead_letter_notice(self, queue: str, depth: int, at: datetime) -> None:
        """Remember a notice; depth 0 forgets the queue (it emptied)."""
        if depth <= 0:
            self._db.run(_FORGET, {"queue": queue})
        else:
            self._db.run(_RECORD, {"queue": queue, "depth": depth, "at": at})
