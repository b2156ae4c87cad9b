"""Backfills and their keyset ranges in Postgres; the scope predicate and the user-label guard live in the SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString
from uuid import UUID

import psycopg

from threadline.adapters.postgres.db import Database, Row
from threadline.adapters.postgres.labels import LOCK_THREADS
from threadline.adapters.postgres.pagination import Keyset, page_sql
from threadline.domain.backfill import (
    Backfill,
    KeyRange,
    RangeFailure,
    RangeWork,
    Scope,
    Started,
    State,
    conflict,
)
from threadline.domain.errors import NotFound
from threadline.domain.pagination import PageRequest
from threadline.domain.ports import LabelDecision

# Serialises starts, so "one running backfill per project" also holds between a project and --all.
_START_LOCK = 7_301_405
_MAX_FAILURES_SHOWN = 100

# Threads a backfill may touch. Both scopes skip threads created after the cutoff (the SQS path's) and,
# for relabelling, auto labels written after it (this job's own, or the SQS worker's fresher ones).
_IN_SCOPE: dict[Scope, LiteralString] = {
    Scope.UNLABELLED: "t.category_id IS NULL AND t.first_question <> '' AND t.created_at <= %(cutoff)s",
    Scope.RELABEL_AUTO: "t.label_source = 'auto' AND t.labelled_at < %(cutoff)s"
    " AND t.first_question <> '' AND t.created_at <= %(cutoff)s",
}

_BACKFILL_ROWS: LiteralString = """
SELECT b.id, b.project_id, b.scope, b.state, b.attempt, b.execution_arn, b.error, b.cutoff,
       b.started_at, b.finished_at, b.threads_unlabelled,
       coalesce(r.total, 0) AS ranges_total, coalesce(r.done, 0) AS ranges_done,
       coalesce(r.planned, 0) AS threads_planned, coalesce(r.labelled, 0) AS threads_labelled
FROM backfills b
LEFT JOIN LATERAL (
    SELECT count(*) AS total, count(*) FILTER (WHERE state = 'done') AS done,
           sum(planned) AS planned, sum(labelled) AS labelled
    FROM backfill_ranges WHERE backfill_id = b.id
) r ON true
"""
_SELECT_BACKFILL: LiteralString = (
    _BACKFILL_ROWS + "WHERE b.id = %(id)s AND (%(project_id)s::uuid IS NULL OR b.project_id = %(project_id)s)"
)
_LIST_BACKFILLS: LiteralString = _BACKFILL_ROWS + "WHERE b.project_id = %(project_id)s"
_NEWEST_FIRST = Keyset("b.started_at", "b.id")

# While running, a range shows as failed once an attempt at it has failed; once the job has ended,
# every range not done is a failure.
_SELECT_FAILURES: LiteralString = """
SELECT r.ordinal, r.project_id, r.attempts, coalesce(r.last_error, 'not run') AS error
FROM backfill_ranges r JOIN backfills b ON b.id = r.backfill_id
WHERE r.backfill_id = %(id)s AND r.state = 'pending' AND (r.last_error IS NOT NULL OR b.state <> 'running')
ORDER BY r.ordinal LIMIT %(limit)s
"""

# The same failures for a page of backfills, the first _MAX_FAILURES_SHOWN of each.
_SELECT_PAGE_FAILURES: LiteralString = """
SELECT backfill_id, ordinal, project_id, attempts, error FROM (
    SELECT r.backfill_id, r.ordinal, r.project_id, r.attempts, coalesce(r.last_error, 'not run') AS error,
           row_number() OVER (PARTITION BY r.backfill_id ORDER BY r.ordinal) AS n
    FROM backfill_ranges r JOIN backfills b ON b.id = r.backfill_id
    WHERE r.backfill_id = ANY(%(ids)s::uuid[]) AND r.state = 'pending'
      AND (r.last_error IS NOT NULL OR b.state <> 'running')
) f WHERE n <= %(limit)s ORDER BY backfill_id, ordinal
"""

_LATEST_FOR_SCOPE: LiteralString = """
SELECT id, state FROM backfills
WHERE project_id IS NOT DISTINCT FROM %(project_id)s AND scope = %(scope)s
ORDER BY started_at DESC LIMIT 1
"""

_RUNNING_OVERLAP: LiteralString = """
SELECT id FROM backfills
WHERE state = 'running'
  AND (%(project_id)s::uuid IS NULL OR project_id IS NULL OR project_id = %(project_id)s)
LIMIT 1
"""

_RESUME: LiteralString = """
UPDATE backfills SET state = 'running', attempt = attempt + 1, execution_arn = NULL, error = NULL,
       finished_at = NULL, updated_at = now()
WHERE id = %(id)s
"""

# Boundaries are every range_size-th thread id of a project in id order; each range runs to the next one.
_PLAN_TEMPLATE: LiteralString = """
INSERT INTO backfill_ranges (backfill_id, ordinal, project_id, first_id, next_id, planned)
SELECT %(id)s, (row_number() OVER (ORDER BY s.project_id, s.id) - 1)::int, s.project_id, s.id,
       lead(s.id) OVER (PARTITION BY s.project_id ORDER BY s.id), least(s.total - s.rn, %(size)s)
FROM (
    SELECT t.project_id, t.id,
           row_number() OVER (PARTITION BY t.project_id ORDER BY t.id) - 1 AS rn,
           count(*) OVER (PARTITION BY t.project_id) AS total
    FROM threads t
    WHERE (%(project_id)s::uuid IS NULL OR t.project_id = %(project_id)s) AND {in_scope}
) s
WHERE s.rn %% %(size)s = 0
"""

_RANGE_THREADS_TEMPLATE: LiteralString = """
SELECT t.id, t.first_question FROM threads t
WHERE t.project_id = %(project_id)s AND t.id >= %(first_id)s
  AND (%(next_id)s::uuid IS NULL OR t.id < %(next_id)s) AND {in_scope}
ORDER BY t.id
"""

# One statement per batch: the guard against user labels and the scope predicate are in the WHERE, and a
# category must belong to the thread's project.
_APPLY_TEMPLATE: LiteralString = """
UPDATE threads t
SET category_id = d.category_id, label_source = 'auto', label_confidence = d.confidence,
    label_model = d.model, label_runner_up_id = d.runner_up_id, labelled_at = now(), updated_at = now()
FROM unnest(%(ids)s::uuid[], %(categories)s::uuid[], %(confidences)s::real[], %(models)s::text[],
            %(runner_ups)s::uuid[])
     AS d(id, category_id, confidence, model, runner_up_id)
WHERE t.id = d.id AND t.project_id = %(project_id)s
  AND t.label_source IS DISTINCT FROM 'user'
  AND EXISTS (SELECT 1 FROM categories c WHERE c.id = d.category_id AND c.project_id = t.project_id)
  AND {in_scope}
"""

# Every range done is not enough to succeed: the threads of the scope are counted as they are now, and any
# still unlabelled make the job `incomplete` (a backfill started while an import ran said `succeeded` with
# 425 of 3001 threads labelled).
_FINISH: LiteralString = """
UPDATE backfills b
SET state = CASE
        WHEN %(error)s::text IS NOT NULL OR NOT b.planned
             OR EXISTS (SELECT 1 FROM backfill_ranges r WHERE r.backfill_id = b.id AND r.state = 'pending')
        THEN 'failed'
        WHEN %(remaining)s > 0 THEN 'incomplete'
        ELSE 'succeeded' END,
    threads_unlabelled = %(remaining)s,
    error = %(error)s, finished_at = now(), updated_at = now()
WHERE b.id = %(id)s AND b.state = 'running' AND b.attempt = %(attempt)s
"""

_REMAINING_TEMPLATE: LiteralString = """
SELECT count(*) AS n FROM threads t
WHERE (%(project_id)s::uuid IS NULL OR t.project_id = %(project_id)s) AND {in_scope}
"""


def _with_scope(template: LiteralString, scope: Scope) -> LiteralString:
    # Only the two fixed fragments above are ever substituted, never user input.
    return template.replace("{in_scope}", _IN_SCOPE[scope])


def _backfill(row: Row, failures: list[Row]) -> Backfill:
    return Backfill(
        id=row["id"],
        project_id=row["project_id"],
        scope=Scope(row["scope"]),
        state=State(row["state"]),
        attempt=row["attempt"],
        execution_arn=row["execution_arn"],
        ranges_total=row["ranges_total"],
        ranges_done=row["ranges_done"],
        threads_planned=int(row["threads_planned"]),
        threads_labelled=int(row["threads_labelled"]),
        threads_unlabelled=row["threads_unlabelled"],
        failures=[RangeFailure(**f) for f in failures],
        error=row["error"],
        cutoff=row["cutoff"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _key_range(row: Row) -> KeyRange:
    return KeyRange(
        backfill_id=row["backfill_id"],
        ordinal=row["ordinal"],
        project_id=row["project_id"],
        first_id=row["first_id"],
        next_id=row["next_id"],
        planned=row["planned"],
    )


class PostgresBackfills:
    """`BackfillRepository` over Postgres."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def begin(self, project_id: UUID | None, scope: Scope) -> Started:
        params = {"project_id": project_id, "scope": scope.value}
        with self._db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%(key)s)", {"key": _START_LOCK})
            running = conn.execute(_RUNNING_OVERLAP, params).fetchone()
            if running is not None:
                raise conflict(running["id"])
            latest = conn.execute(_LATEST_FOR_SCOPE, params).fetchone()
            if latest is not None and latest["state"] in (State.STOPPED, State.FAILED):
                conn.execute(_RESUME, {"id": latest["id"]})
                backfill_id, resumed = latest["id"], True
            else:
                row = conn.execute(
                    "INSERT INTO backfills (project_id, scope) VALUES (%(project_id)s, %(scope)s) RETURNING id",
                    params,
                ).fetchone()
                assert row is not None
                backfill_id, resumed = row["id"], False
            job = self._load(conn, backfill_id, None)
        return Started(backfill=job, resumed=resumed)

    def get(self, backfill_id: UUID, project_id: UUID | None) -> Backfill:
        with self._db.transaction() as conn:
            return self._load(conn, backfill_id, project_id)

    def list_backfills(self, project_id: UUID, page: PageRequest) -> list[Backfill]:
        """Up to `page.fetch` of the project's backfills, newest first (started_at, id), with their failures."""
        sql, params = page_sql(_LIST_BACKFILLS, {}, {}, _NEWEST_FIRST, page)
        with self._db.transaction() as conn:
            rows = conn.execute(sql, {**params, "project_id": project_id}).fetchall()
            failed = conn.execute(
                _SELECT_PAGE_FAILURES, {"ids": [r["id"] for r in rows], "limit": _MAX_FAILURES_SHOWN}
            ).fetchall()
        by_job: dict[UUID, list[Row]] = {}
        for f in failed:
            by_job.setdefault(f.pop("backfill_id"), []).append(f)
        return [_backfill(r, by_job.get(r["id"], [])) for r in rows]

    def _load(self, conn: psycopg.Connection[Row], backfill_id: UUID, project_id: UUID | None) -> Backfill:
        row = conn.execute(_SELECT_BACKFILL, {"id": backfill_id, "project_id": project_id}).fetchone()
        if row is None:
            raise NotFound("backfill not found")
        failures = conn.execute(_SELECT_FAILURES, {"id": backfill_id, "limit": _MAX_FAILURES_SHOWN}).fetchall()
        return _backfill(row, failures)

    def set_execution(self, backfill_id: UUID, attempt: int, execution_arn: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE backfills SET execution_arn = %(arn)s, updated_at = now()"
                " WHERE id = %(id)s AND attempt = %(attempt)s",
                {"id": backfill_id, "attempt": attempt, "arn": execution_arn},
            )

    def plan(self, backfill_id: UUID, attempt: int, range_size: int) -> list[KeyRange]:
        with self._db.transaction() as conn:
            job = conn.execute(
                "SELECT project_id, scope, state, attempt, planned, cutoff FROM backfills WHERE id = %(id)s FOR UPDATE",
                {"id": backfill_id},
            ).fetchone()
            if job is None:
                raise NotFound("backfill not found")
            if job["state"] != State.RUNNING or job["attempt"] != attempt:
                return []  # a stale execution: the job was closed or resumed by a newer attempt
            if not job["planned"]:
                # Planned once per job, so a resumed attempt keeps the ranges (and what was done in them).
                conn.execute(
                    _with_scope(_PLAN_TEMPLATE, Scope(job["scope"])),
                    {"id": backfill_id, "project_id": job["project_id"], "cutoff": job["cutoff"], "size": range_size},
                )
                conn.execute("UPDATE backfills SET planned = true WHERE id = %(id)s", {"id": backfill_id})
            rows = conn.execute(
                "SELECT backfill_id, ordinal, project_id, first_id, next_id, planned FROM backfill_ranges"
                " WHERE backfill_id = %(id)s AND state = 'pending' ORDER BY ordinal",
                {"id": backfill_id},
            ).fetchall()
        return [_key_range(r) for r in rows]

    def range_work(self, backfill_id: UUID, ordinal: int) -> RangeWork:
        with self._db.transaction() as conn:
            row = conn.execute(
                "UPDATE backfill_ranges r SET attempts = r.attempts + 1 FROM backfills b"
                " WHERE r.backfill_id = %(id)s AND r.ordinal = %(ordinal)s AND b.id = r.backfill_id"
                " RETURNING r.backfill_id, r.ordinal, r.project_id, r.first_id, r.next_id, r.planned,"
                " r.state, b.scope, b.cutoff",
                {"id": backfill_id, "ordinal": ordinal},
            ).fetchone()
            if row is None:
                raise NotFound("backfill range not found", ordinal=ordinal)
            key_range, scope = _key_range(row), Scope(row["scope"])
            if row["state"] == "done":
                return RangeWork(range=key_range, scope=scope, cutoff=row["cutoff"], done=True)
            threads = conn.execute(
                _with_scope(_RANGE_THREADS_TEMPLATE, scope),
                {
                    "project_id": key_range.project_id,
                    "first_id": key_range.first_id,
                    "next_id": key_range.next_id,
                    "cutoff": row["cutoff"],
                },
            ).fetchall()
        questions = [(t["id"], t["first_question"]) for t in threads]
        return RangeWork(range=key_range, scope=scope, cutoff=row["cutoff"], done=False, questions=questions)

    def apply_labels(self, work: RangeWork, decisions: Sequence[LabelDecision]) -> int:
        if not decisions:
            return 0
        params: dict[str, Any] = {
            "project_id": work.range.project_id,
            "cutoff": work.cutoff,
            "ids": [d.thread_id for d in decisions],
            "categories": [d.category_id for d in decisions],
            "confidences": [d.confidence for d in decisions],
            "models": [d.model for d in decisions],
            "runner_ups": [d.runner_up_id for d in decisions],
        }
        with self._db.transaction() as conn:
            conn.execute(LOCK_THREADS, {"project_id": work.range.project_id, "thread_ids": params["ids"]})
            labelled = conn.execute(_with_scope(_APPLY_TEMPLATE, work.scope), params).rowcount
            # Counted in the same transaction as the labels, so a retried range never counts twice.
            conn.execute(
                "UPDATE backfill_ranges SET labelled = labelled + %(n)s"
                " WHERE backfill_id = %(id)s AND ordinal = %(ordinal)s",
                {"n": labelled, "id": work.range.backfill_id, "ordinal": work.range.ordinal},
            )
        return labelled

    def finish_range(self, backfill_id: UUID, ordinal: int) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE backfill_ranges SET state = 'done', last_error = NULL, finished_at = now()"
                " WHERE backfill_id = %(id)s AND ordinal = %(ordinal)s AND state = 'pending'",
                {"id": backfill_id, "ordinal": ordinal},
            )

    def record_range_error(self, backfill_id: UUID, ordinal: int, error: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE backfill_ranges SET last_error = %(error)s"
                " WHERE backfill_id = %(id)s AND ordinal = %(ordinal)s AND state = 'pending'",
                {"id": backfill_id, "ordinal": ordinal, "error": error},
            )

    def finish(self, backfill_id: UUID, attempt: int, error: str | None) -> Backfill:
        with self._db.transaction() as conn:
            job = conn.execute(
                "SELECT project_id, scope, cutoff FROM backfills WHERE id = %(id)s", {"id": backfill_id}
            ).fetchone()
            if job is None:
                raise NotFound("backfill not found")
            # Threads of the scope left unlabelled: the same predicate the plan and the ranges use.
            remaining = conn.execute(
                _with_scope(_REMAINING_TEMPLATE, Scope(job["scope"])),
                {"project_id": job["project_id"], "cutoff": job["cutoff"]},
            ).fetchone()
            assert remaining is not None
            conn.execute(_FINISH, {"id": backfill_id, "attempt": attempt, "error": error, "remaining": remaining["n"]})
            return self._load(conn, backfill_id, None)

    def end(self, backfill_id: UUID, attempt: int, state: State, error: str | None) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE backfills SET state = %(state)s, error = %(error)s, finished_at = now(), updated_at = now()"
                " WHERE id = %(id)s AND state = 'running' AND attempt = %(attempt)s",
                {"id": backfill_id, "attempt": attempt, "state": state.value, "error": error},
            )
