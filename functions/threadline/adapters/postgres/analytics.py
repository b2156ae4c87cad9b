"""Analytics reads: a project's categories and its usage over a window, in one snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from threadline.adapters.postgres.db import Database
from threadline.adapters.postgres.usage import read_channels, read_usage
from threadline.domain.analytics import AnalyticsRows, CategoryRef
from threadline.domain.usage import UsageQuery


class PostgresAnalytics:
    """`AnalyticsRepository` over Postgres."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def read(self, project_id: UUID, query: UsageQuery) -> AnalyticsRows:
        # One read-only snapshot, so the series, the categories and the totals agree with each other.
        with self._db.transaction() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            categories = conn.execute(
                "SELECT id, name FROM categories WHERE project_id = %(project_id)s ORDER BY lower(name), id",
                {"project_id": project_id},
            ).fetchall()
            usage = read_usage(conn, [project_id], query)
            channels = read_channels(conn, [project_id], query)
        return AnalyticsRows(
            categories=[CategoryRef(id=r["id"], name=r["name"]) for r in categories], usage=usage, channels=channels
        )

    def recount(self, project_ids: Sequence[UUID] | None = None) -> int:
        """Rebuild the rollups of these projects (all when None) from their rows; returns how many projects.

        For rows written with the triggers off (session_replication_role = replica). Writes to threads and
        messages wait until it is done.
        """
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT analytics_recount(ids), cardinality(ids) AS projects"
                " FROM (SELECT coalesce(%(ids)s::uuid[], ARRAY(SELECT id FROM projects ORDER BY id)) AS ids) chosen",
                {"ids": list(project_ids) if project_ids is not None else None},
            ).fetchone()
        assert row is not None
        projects: int = row["projects"]
        return projects
