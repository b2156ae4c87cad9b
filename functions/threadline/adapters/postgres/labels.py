"""Threads with their labels: the keyset listing, user corrections, and guarded automatic labelling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString
from uuid import UUID

from threadline.adapters.postgres.db import Database, Row
from threadline.adapters.postgres.pagination import Keyset, page_sql
from threadline.domain.errors import InvalidInput, NotFound
from threadline.domain.labels import CategoryRef, Correction, CorrectionsVersion, ThreadQuery, ThreadSummary
from threadline.domain.ports import LabelDecision, Vectors

SELECT_SUMMARY: LiteralString = (
    "SELECT t.id, t.project_id, t.category_id, c.name AS category_name, t.label_source, t.label_confidence,"
    " t.label_model, t.labelled_at, t.first_question, t.message_count, t.created_at, t.updated_at, t.channel,"
    " r.id AS runner_up_id, r.name AS runner_up_name"
    " FROM threads t LEFT JOIN categories c ON c.id = t.category_id"
    " LEFT JOIN categories r ON r.id = t.label_runner_up_id"
)

# The listing's filters, each a fixed fragment (see adapters/postgres/pagination.py for why).
_FILTERS: dict[str, LiteralString] = {
    "category_id": " AND t.category_id = %(category_id)s",
    "unlabelled": " AND t.category_id IS NULL",
    "label_source": " AND t.label_source = %(label_source)s",
    "created_after": " AND t.created_at > %(created_after)s",
    "created_before": " AND t.created_at < %(created_before)s",
    "channel": " AND t.channel = %(channel)s",
    # Only auto labels carry a confidence: user labels and unlabelled threads never match.
    "label_confidence_below": " AND t.label_confidence < %(label_confidence_below)s",
}
_NEWEST_FIRST = Keyset("t.created_at", "t.id")

# The guard of every automatic path: a user's label is never overwritten, checked by the UPDATE itself, so a
# correction committed while the classifier was computing still wins (the row is re-checked after the lock).
_APPLY_AUTO_LABELS: LiteralString = (
    "UPDATE threads t SET category_id = d.category_id, label_source = 'auto', label_confidence = d.confidence,"
    " label_model = d.model, label_runner_up_id = d.runner_up_id, labelled_at = now(), updated_at = now()"
    " FROM unnest(%(thread_ids)s::uuid[], %(category_ids)s::uuid[], %(confidences)s::real[], %(models)s::text[],"
    " %(runner_ups)s::uuid[]) AS d(thread_id, category_id, confidence, model, runner_up_id)"
    " WHERE t.id = d.thread_id AND t.project_id = %(project_id)s"
    " AND t.label_source IS DISTINCT FROM 'user'"
    " AND EXISTS (SELECT 1 FROM categories c WHERE c.id = d.category_id AND c.project_id = %(project_id)s)"
    " RETURNING t.id"
)

# Bulk writers lock their threads in id order first. The UPDATE's own scan locks rows in plan order, which
# changes as updates move rows on the heap, so two batches over the same threads could each hold a row the
# other waits for (seen with eight concurrent batches of 40).
LOCK_THREADS: LiteralString = (
    "SELECT 1 FROM threads WHERE project_id = %(project_id)s AND id = ANY(%(thread_ids)s::uuid[])"
    " ORDER BY id FOR NO KEY UPDATE"
)

# Threads that need the classifier: a question, no user label, and no auto label newer than the project's
# categories (an auto label older than the latest category change may be stale, so it is recomputed).
_TO_CLASSIFY: LiteralString = (
    "SELECT t.id, t.first_question FROM threads t"
    " WHERE t.project_id = %(project_id)s AND t.id = ANY(%(thread_ids)s::uuid[])"
    " AND t.first_question IS NOT NULL AND t.first_question <> ''"
    " AND (t.label_source IS NULL OR (t.label_source = 'auto' AND t.labelled_at <"
    "   (SELECT max(c.updated_at) FROM categories c WHERE c.project_id = %(project_id)s)))"
    " ORDER BY t.created_at, t.id"
)


# The version of a project's corrections: every set, change or clear of a user label changes the count or
# the latest labelled_at (a new user label is always the latest), so the classifier's cache key moves.
_CORRECTIONS_VERSION: LiteralString = (
    "SELECT count(*) AS n, max(labelled_at) AS latest FROM threads"
    " WHERE project_id = %(project_id)s AND label_source = 'user'"
)
# The latest user labels per category, with the stored embedding of each question when there is one.
_CORRECTIONS: LiteralString = (
    "SELECT x.id, x.category_id, x.first_question, e.embedding FROM ("
    "   SELECT t.id, t.category_id, t.first_question,"
    "          row_number() OVER (PARTITION BY t.category_id ORDER BY t.labelled_at DESC, t.id) AS n"
    "   FROM threads t WHERE t.project_id = %(project_id)s AND t.label_source = 'user'"
    "   AND t.first_question IS NOT NULL AND t.first_question <> '') x"
    " LEFT JOIN label_examples e ON e.thread_id = x.id"
    " WHERE x.n <= %(per_category)s ORDER BY x.category_id, x.n"
)
_STORE_EXAMPLE: LiteralString = (
    "INSERT INTO label_examples (thread_id, project_id, embedding)"
    " SELECT id, project_id, %(embedding)s FROM threads WHERE id = %(thread_id)s AND project_id = %(project_id)s"
    " ON CONFLICT (thread_id) DO NOTHING"
)


def thread_summary(row: Row) -> ThreadSummary:
    """A listing row from a row of SELECT_SUMMARY."""
    category = CategoryRef(id=row["category_id"], name=row["category_name"]) if row["category_id"] else None
    runner_up = CategoryRef(id=row["runner_up_id"], name=row["runner_up_name"]) if row["runner_up_id"] else None
    return ThreadSummary(
        id=row["id"],
        project_id=row["project_id"],
        category=category,
        label_source=row["label_source"],
        label_confidence=row["label_confidence"],
        label_model=row["label_model"],
        labelled_at=row["labelled_at"],
        first_question=row["first_question"],
        message_count=row["message_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        channel=row["channel"],
        label_runner_up=runner_up,
    )


def listing_sql(query: ThreadQuery) -> tuple[LiteralString, dict[str, Any]]:
    """The keyset query of one page, and its parameters (public so the benchmark can EXPLAIN it)."""
    filters = {
        "category_id": query.category_id,
        "unlabelled": query.unlabelled,
        "label_source": query.label_source,
        "created_after": query.created_after,
        "created_before": query.created_before,
        "channel": query.channel,
        "label_confidence_below": query.label_confidence_below,
    }
    return page_sql(
        SELECT_SUMMARY + " WHERE t.project_id = %(project_id)s", _FILTERS, filters, _NEWEST_FIRST, query.page
    )


class PostgresLabels:
    """`LabelRepository` and `AutoLabelRepository` over Postgres."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list_threads(self, project_id: UUID, query: ThreadQuery) -> list[ThreadSummary]:
        sql, params = listing_sql(query)
        with self._db.transaction() as conn:
            rows = conn.execute(sql, {**params, "project_id": project_id}).fetchall()
        return [thread_summary(r) for r in rows]

    def get_thread(self, project_id: UUID, thread_id: UUID) -> ThreadSummary:
        with self._db.transaction() as conn:
            row = conn.execute(
                SELECT_SUMMARY + " WHERE t.id = %(id)s AND t.project_id = %(project_id)s",
                {"id": thread_id, "project_id": project_id},
            ).fetchone()
        if row is None:
            raise NotFound("thread not found")
        return thread_summary(row)

    def set_user_label(self, project_id: UUID, thread_id: UUID, category_id: UUID) -> ThreadSummary:
        params = {"id": thread_id, "project_id": project_id, "category_id": category_id}
        with self._db.transaction() as conn:
            thread = conn.execute(
                "SELECT id FROM threads WHERE id = %(id)s AND project_id = %(project_id)s FOR UPDATE", params
            ).fetchone()
            if thread is None:
                raise NotFound("thread not found")
            # FOR KEY SHARE keeps the category from being deleted until this label is committed.
            category = conn.execute(
                "SELECT id FROM categories WHERE id = %(category_id)s AND project_id = %(project_id)s FOR KEY SHARE",
                params,
            ).fetchone()
            if category is None:
                raise InvalidInput("category_id is not a category of this project", category_id=str(category_id))
            conn.execute(
                "UPDATE threads SET category_id = %(category_id)s, label_source = 'user', label_confidence = NULL,"
                " label_model = NULL, label_runner_up_id = NULL, labelled_at = now(), updated_at = now()"
                " WHERE id = %(id)s",
                params,
            )
        return self.get_thread(project_id, thread_id)

    def clear_label(self, project_id: UUID, thread_id: UUID) -> ThreadSummary:
        with self._db.transaction() as conn:
            row = conn.execute(
                "UPDATE threads SET category_id = NULL, label_source = NULL, label_confidence = NULL,"
                " label_model = NULL, label_runner_up_id = NULL, labelled_at = NULL, updated_at = now()"
                " WHERE id = %(id)s AND project_id = %(project_id)s RETURNING id",
                {"id": thread_id, "project_id": project_id},
            ).fetchone()
        if row is None:
            raise NotFound("thread not found")
        return self.get_thread(project_id, thread_id)

    def threads_to_classify(self, project_id: UUID, thread_ids: Sequence[UUID]) -> list[tuple[UUID, str]]:
        """Of the given threads, those that need a (new) automatic label, with their first question."""
        with self._db.transaction() as conn:
            rows = conn.execute(_TO_CLASSIFY, {"project_id": project_id, "thread_ids": list(thread_ids)}).fetchall()
        return [(r["id"], r["first_question"]) for r in rows]

    def apply_auto_labels(self, project_id: UUID, decisions: Sequence[LabelDecision]) -> list[UUID]:
        """Store automatic labels; threads with a user label (or deleted categories) are left alone.

        Returns the ids actually labelled.
        """
        if not decisions:
            return []
        params = {
            "project_id": project_id,
            "thread_ids": [d.thread_id for d in decisions],
            "category_ids": [d.category_id for d in decisions],
            "confidences": [d.confidence for d in decisions],
            "models": [d.model for d in decisions],
            "runner_ups": [d.runner_up_id for d in decisions],
        }
        with self._db.transaction() as conn:
            conn.execute(LOCK_THREADS, params)
            rows = conn.execute(_APPLY_AUTO_LABELS, params).fetchall()
        return [r["id"] for r in rows]

    def corrections_version(self, project_id: UUID) -> CorrectionsVersion:
        """How many user labels the project has and when the latest was set (the classifier's cache key)."""
        with self._db.transaction() as conn:
            row = conn.execute(_CORRECTIONS_VERSION, {"project_id": project_id}).fetchone()
        assert row is not None
        return CorrectionsVersion(count=row["n"], latest=row["latest"])

    def corrections(self, project_id: UUID, per_category: int) -> list[Correction]:
        """The latest `per_category` user labels of each category as labelled examples."""
        with self._db.transaction() as conn:
            rows = conn.execute(_CORRECTIONS, {"project_id": project_id, "per_category": per_category}).fetchall()
        return [
            Correction(
                r["id"],
                r["category_id"],
                r["first_question"],
                r["embedding"].to_numpy() if r["embedding"] is not None else None,
            )
            for r in rows
        ]

    def store_correction_vectors(self, project_id: UUID, vectors: Sequence[tuple[UUID, Vectors]]) -> None:
        """Keep each corrected question's embedding (a thread deleted meanwhile is skipped)."""
        with self._db.transaction() as conn, conn.cursor() as cursor:
            cursor.executemany(
                _STORE_EXAMPLE,
                [{"thread_id": t, "project_id": project_id, "embedding": v} for t, v in vectors],
            )
