"""Import jobs, their chunks, and the threads and messages a chunk creates, in Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, LiteralString
from uuid import UUID

from psycopg.types.json import Jsonb

from threadline.adapters.postgres.alerts import record_measurements
from threadline.adapters.postgres.db import Database, Row
from threadline.adapters.postgres.labels import LOCK_THREADS
from threadline.adapters.postgres.pagination import Keyset, page_sql
from threadline.domain.alerts import Judge
from threadline.domain.errors import NotFound
from threadline.domain.imports import MAX_REJECTIONS_SHOWN, ImportChunk, ImportJob, ImportPlan, JobStatus, Rejection
from threadline.domain.metrics import Interaction, Measurement
from threadline.domain.pagination import PageRequest

_CREATE_JOB = """
INSERT INTO import_jobs (project_id, content_hash, object_key, columns, total_rows, size_bytes)
VALUES (%(project_id)s, %(content_hash)s, %(object_key)s, %(columns)s, %(total_rows)s, %(size_bytes)s)
ON CONFLICT (project_id, content_hash) DO NOTHING
RETURNING id
"""

_INSERT_CHUNKS = """
INSERT INTO import_chunks (job_id, chunk_no, first_row, row_count, byte_start, byte_end)
SELECT %(job_id)s, * FROM unnest(%(chunk_nos)s::int[], %(first_rows)s::int[], %(row_counts)s::int[],
                                 %(starts)s::bigint[], %(ends)s::bigint[])
"""

_JOB_ROWS: LiteralString = """
SELECT j.id, j.project_id, j.content_hash, j.total_rows, j.columns, j.created_at,
       count(c.chunk_no) AS chunks_total, count(c.done_at) AS chunks_done,
       coalesce(sum(c.rows_done), 0) AS rows_done, coalesce(sum(c.rows_rejected), 0) AS rows_rejected,
       coalesce(array_agg('chunk ' || c.chunk_no || ' (attempt ' || c.attempts || '): ' || c.last_error
                          ORDER BY c.chunk_no) FILTER (WHERE c.last_error IS NOT NULL AND c.done_at IS NULL),
                '{}') AS errors
FROM import_jobs j LEFT JOIN import_chunks c ON c.job_id = j.id
"""
_JOB: LiteralString = _JOB_ROWS + "WHERE j.id = %(job_id)s AND j.project_id = %(project_id)s GROUP BY j.id"
# A page of jobs: the keyset predicate and order apply to the jobs, before the chunks are joined and grouped.
_JOB_PAGE: LiteralString = (
    "SELECT p.* FROM (" + _JOB_ROWS + "WHERE j.project_id = %(project_id)s AND j.id = ANY(%(ids)s::uuid[])"
    " GROUP BY j.id) p ORDER BY p.created_at DESC, p.id DESC"
)
_JOB_IDS: LiteralString = "SELECT j.id FROM import_jobs j WHERE j.project_id = %(project_id)s"
_NEWEST_FIRST = Keyset("j.created_at", "j.id")

_REJECTIONS = """
SELECT r.value AS rejection FROM import_chunks c, jsonb_array_elements(c.rejections) AS r
WHERE c.job_id = %(job_id)s ORDER BY c.chunk_no LIMIT %(limit)s
"""

# The same rejections for a page of jobs, the first MAX_REJECTIONS_SHOWN of each.
_PAGE_REJECTIONS: LiteralString = """
SELECT job_id, rejection FROM (
    SELECT c.job_id, r.value AS rejection,
           row_number() OVER (PARTITION BY c.job_id ORDER BY c.chunk_no, r.ordinality) AS n
    FROM import_chunks c, jsonb_array_elements(c.rejections) WITH ORDINALITY AS r
    WHERE c.job_id = ANY(%(ids)s::uuid[])
) x WHERE n <= %(limit)s ORDER BY job_id, n
"""

_CHUNK = """
SELECT c.job_id, j.project_id, c.chunk_no, c.first_row, c.row_count, c.byte_start, c.byte_end,
       j.object_key, j.columns, c.done_at IS NOT NULL AS done
FROM import_chunks c JOIN import_jobs j ON j.id = c.job_id
WHERE c.job_id = %(job_id)s AND c.chunk_no = %(chunk_no)s AND j.project_id = %(project_id)s
"""

# A thread per distinct thread id of the chunk; a grouped thread started by an earlier chunk is kept.
_INSERT_THREADS = """
INSERT INTO threads (id, project_id, first_question, created_at, updated_at)
SELECT t.id, %(project_id)s, t.question, t.at, t.at
FROM unnest(%(ids)s::uuid[], %(questions)s::text[], %(ats)s::timestamptz[]) AS t(id, question, at)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""

# Counts follow the messages really inserted, so a retried chunk never counts twice.
_INSERT_MESSAGES = """
WITH inserted AS (
    INSERT INTO messages (id, thread_id, project_id, question, answer, status, latency_ms, created_at, completed_at)
    SELECT m.id, m.thread_id, %(project_id)s, m.question, m.answer, 'complete', m.latency_ms, m.at, m.done_at
    FROM unnest(%(ids)s::uuid[], %(thread_ids)s::uuid[], %(questions)s::text[], %(answers)s::text[],
                %(latencies)s::int[], %(ats)s::timestamptz[], %(done_ats)s::timestamptz[])
         AS m(id, thread_id, question, answer, latency_ms, at, done_at)
    ON CONFLICT (id) DO NOTHING
    RETURNING thread_id, created_at
)
UPDATE threads t SET message_count = t.message_count + c.n,
                     created_at = least(t.created_at, c.first_at),
                     updated_at = greatest(t.updated_at, c.last_at)
FROM (SELECT thread_id, count(*) AS n, min(created_at) AS first_at, max(created_at) AS last_at
      FROM inserted GROUP BY thread_id) c
WHERE t.id = c.thread_id
"""

_FINISH_CHUNK = """
UPDATE import_chunks SET done_at = now(), rows_done = %(rows_done)s, rows_rejected = %(rows_rejected)s,
                         rejections = %(rejections)s, last_error = NULL
WHERE job_id = %(job_id)s AND chunk_no = %(chunk_no)s AND done_at IS NULL
"""


def _status(chunks_done: int, chunks_total: int) -> JobStatus:
    if chunks_done == chunks_total:
        return "done"
    return "running" if chunks_done else "pending"


def _job(row: Row, rejected: Sequence[Row]) -> ImportJob:
    return ImportJob(
        id=row["id"],
        project_id=row["project_id"],
        content_hash=row["content_hash"],
        status=_status(row["chunks_done"], row["chunks_total"]),
        total_rows=row["total_rows"],
        rows_done=int(row["rows_done"]),
        rows_rejected=int(row["rows_rejected"]),
        chunks_total=row["chunks_total"],
        chunks_done=row["chunks_done"],
        rejections=[Rejection(r["rejection"]["row"], r["rejection"]["reason"]) for r in rejected],
        errors=list(row["errors"]),
        columns=tuple(row["columns"]),
        created_at=row["created_at"],
    )


class PostgresImports:
    """`ImportRepository` over Postgres."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create_job(
        self, project_id: UUID, content_hash: str, object_key: str, plan: ImportPlan, size_bytes: int
    ) -> tuple[UUID, bool]:
        params = {
            "project_id": project_id,
            "content_hash": content_hash,
            "object_key": object_key,
            "columns": list(plan.columns),
            "total_rows": plan.total_rows,
            "size_bytes": size_bytes,
        }
        with self._db.transaction() as conn:
            row = conn.execute(_CREATE_JOB, params).fetchone()
            if row is None:
                existing = conn.execute(
                    "SELECT id FROM import_jobs WHERE project_id = %(project_id)s AND content_hash = %(content_hash)s",
                    params,
                ).fetchone()
                assert existing is not None
                return existing["id"], False
            conn.execute(
                _INSERT_CHUNKS,
                {
                    "job_id": row["id"],
                    "chunk_nos": [c.chunk_no for c in plan.chunks],
                    "first_rows": [c.first_row for c in plan.chunks],
                    "row_counts": [c.row_count for c in plan.chunks],
                    "starts": [c.byte_start for c in plan.chunks],
                    "ends": [c.byte_end for c in plan.chunks],
                },
            )
        return row["id"], True

    def get_job(self, project_id: UUID, job_id: UUID) -> ImportJob:
        with self._db.transaction() as conn:
            row = conn.execute(_JOB, {"job_id": job_id, "project_id": project_id}).fetchone()
            if row is None:
                raise NotFound("import job not found")
            rejected = conn.execute(_REJECTIONS, {"job_id": job_id, "limit": MAX_REJECTIONS_SHOWN}).fetchall()
        return _job(row, rejected)

    def list_jobs(self, project_id: UUID, page: PageRequest) -> list[ImportJob]:
        """Up to `page.fetch` of the project's import jobs, newest first (created_at, id)."""
        sql, params = page_sql(_JOB_IDS, {}, {}, _NEWEST_FIRST, page)
        with self._db.transaction() as conn:
            ids = [r["id"] for r in conn.execute(sql, {**params, "project_id": project_id}).fetchall()]
            rows = conn.execute(_JOB_PAGE, {"project_id": project_id, "ids": ids}).fetchall()
            rejected = conn.execute(_PAGE_REJECTIONS, {"ids": ids, "limit": MAX_REJECTIONS_SHOWN}).fetchall()
        by_job: dict[UUID, list[Row]] = {}
        for r in rejected:
            by_job.setdefault(r["job_id"], []).append(r)
        return [_job(row, by_job.get(row["id"], [])) for row in rows]

    def chunks_not_enqueued(self, job_id: UUID) -> list[int]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT chunk_no FROM import_chunks WHERE job_id = %(job_id)s AND enqueued_at IS NULL"
                " AND done_at IS NULL ORDER BY chunk_no",
                {"job_id": job_id},
            ).fetchall()
        return [r["chunk_no"] for r in rows]

    def mark_enqueued(self, job_id: UUID, chunk_nos: Sequence[int]) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE import_chunks SET enqueued_at = now()"
                " WHERE job_id = %(job_id)s AND chunk_no = ANY(%(chunk_nos)s::int[])",
                {"job_id": job_id, "chunk_nos": list(chunk_nos)},
            )

    def get_chunk(self, project_id: UUID, job_id: UUID, chunk_no: int) -> ImportChunk | None:
        with self._db.transaction() as conn:
            row = conn.execute(_CHUNK, {"project_id": project_id, "job_id": job_id, "chunk_no": chunk_no}).fetchone()
        if row is None:
            return None
        return ImportChunk(**{**row, "columns": tuple(row["columns"])})

    def store_chunk(
        self,
        chunk: ImportChunk,
        interactions: Sequence[Interaction],
        rejections: Sequence[Rejection],
        measurements: Sequence[Measurement],
        judge: Judge,
    ) -> list[UUID] | None:
        created: list[UUID] = []
        with self._db.transaction() as conn:
            # The row lock serialises two deliveries of the same chunk; the second sees it done.
            locked = conn.execute(
                "SELECT done_at FROM import_chunks WHERE job_id = %(job_id)s AND chunk_no = %(chunk_no)s FOR UPDATE",
                {"job_id": chunk.job_id, "chunk_no": chunk.chunk_no},
            ).fetchone()
            if locked is None or locked["done_at"] is not None:
                return None
            if interactions:
                threads = _thread_params(chunk.project_id, interactions)
                # Threads an earlier chunk started get updated below; locking them before the inserts touch the
                # analytics rollups keeps to the order of every writer: thread rows first, then rollup rows.
                conn.execute(LOCK_THREADS, {"project_id": chunk.project_id, "thread_ids": threads["ids"]})
                created = [r["id"] for r in conn.execute(_INSERT_THREADS, threads).fetchall()]
                conn.execute(_INSERT_MESSAGES, _message_params(chunk.project_id, interactions))
                record_measurements(conn, chunk.project_id, measurements, judge)
            conn.execute(
                _FINISH_CHUNK,
                {
                    "job_id": chunk.job_id,
                    "chunk_no": chunk.chunk_no,
                    "rows_done": len(interactions),
                    "rows_rejected": len(rejections),
                    "rejections": Jsonb([{"row": r.row, "reason": r.reason} for r in rejections]),
                },
            )
        return created

    def record_chunk_error(self, job_id: UUID, chunk_no: int, error: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE import_chunks SET last_error = %(error)s, attempts = attempts + 1"
                " WHERE job_id = %(job_id)s AND chunk_no = %(chunk_no)s AND done_at IS NULL",
                {"job_id": job_id, "chunk_no": chunk_no, "error": error},
            )


def _thread_params(project_id: UUID, interactions: Sequence[Interaction]) -> dict[str, Any]:
    first: dict[UUID, Interaction] = {}
    for interaction in interactions:
        first.setdefault(interaction.thread_id, interaction)
    return {
        "project_id": project_id,
        "ids": list(first),
        "questions": [i.question for i in first.values()],
        "ats": [i.occurred_at for i in first.values()],
    }


def _message_params(project_id: UUID, interactions: Sequence[Interaction]) -> dict[str, Any]:
    latencies = [None if i.latency_ms is None else round(i.latency_ms) for i in interactions]
    return {
        "project_id": project_id,
        "ids": [i.message_id for i in interactions],
        "thread_ids": [i.thread_id for i in interactions],
        "questions": [i.question for i in interactions],
        "answers": [i.answer for i in interactions],
        "latencies": latencies,
        "ats": [i.occurred_at for i in interactions],
        "done_ats": [
            i.occurred_at + timedelta(milliseconds=lat) if lat is not None else i.occurred_at
            for i, lat in zip(interactions, latencies, strict=True)
        ],
    }
