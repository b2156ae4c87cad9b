"""Analytics aggregates in SQL: one pass over threads, one over messages, both index-only on 0005's indexes."""

from __future__ import annotations

from uuid import UUID

from threadline.adapters.postgres.db import Database, Row
from threadline.domain.analytics import AnalyticsRows, AnalyticsWindow, CategoryRef, ExchangeFigures, ThreadCount

# Bucketing with date_trunc(unit, ts, zone) follows the local calendar (DST included) and returns the
# bucket's start as an instant, which is exactly what domain.analytics.bucket_starts produces.
_THREAD_COUNTS = """
SELECT date_trunc(%(unit)s, created_at, %(tz)s) AS bucket, category_id, label_source, count(*)::int AS threads
FROM threads
WHERE project_id = %(project_id)s AND created_at >= %(start)s AND created_at < %(end)s
GROUP BY 1, 2, 3
"""

_COUNTS = """
    count(*)::int AS questions,
    count(*) FILTER (WHERE status = 'incomplete')::int AS incomplete,
    count(*) FILTER (WHERE status = 'failed')::int AS failed,
    count(latency_ms)::int AS answered,
    coalesce(sum(latency_ms), 0)::bigint AS latency_sum_ms,
    coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
    coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens"""

# Exact percentiles need every value sorted; one array-form call sorts each column once for both.
EXCHANGE_AGGREGATES = (
    _COUNTS
    + """,
    percentile_disc(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY latency_ms) AS latency_ms_pct,
    percentile_disc(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY first_token_ms) AS first_token_ms_pct
"""
)

_WHERE = "\nFROM messages\nWHERE project_id = %(project_id)s AND created_at >= %(start)s AND created_at < %(end)s\n"

# Per bucket: counts and sums only (a percentile per bucket would cost a sort per bucket).
_BUCKET_FIGURES = "SELECT date_trunc(%(unit)s, created_at, %(tz)s) AS bucket," + _COUNTS + _WHERE + "GROUP BY 1"
# The window's totals, with exact percentiles (they cannot be derived from the buckets).
_TOTAL_FIGURES = "SELECT" + EXCHANGE_AGGREGATES + _WHERE


def _pct(row: Row, key: str, index: int) -> int | None:
    values = row.get(key)
    return values[index] if values else None


def exchange_figures(row: Row, bucket_key: str | None = "bucket") -> ExchangeFigures:
    """Build figures from a row carrying EXCHANGE_AGGREGATES."""
    return ExchangeFigures(
        bucket=row[bucket_key] if bucket_key else None,
        questions=row["questions"],
        incomplete=row["incomplete"],
        failed=row["failed"],
        answered=row["answered"],
        latency_sum_ms=int(row["latency_sum_ms"]),
        latency_p50_ms=_pct(row, "latency_ms_pct", 0),
        latency_p95_ms=_pct(row, "latency_ms_pct", 1),
        first_token_p50_ms=_pct(row, "first_token_ms_pct", 0),
        first_token_p95_ms=_pct(row, "first_token_ms_pct", 1),
        prompt_tokens=int(row["prompt_tokens"]),
        completion_tokens=int(row["completion_tokens"]),
    )


class PostgresAnalytics:
    """`AnalyticsRepository` over Postgres."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _params(project_id: UUID, window: AnalyticsWindow) -> dict[str, object]:
        return {
            "project_id": project_id,
            "unit": window.interval,
            "tz": window.timezone,
            "start": window.start,
            "end": window.end,
        }

    def read(self, project_id: UUID, window: AnalyticsWindow) -> AnalyticsRows:
        # One read-only snapshot, so the series, the categories and the totals agree with each other.
        params = self._params(project_id, window)
        with self._db.transaction() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            categories = conn.execute(
                "SELECT id, name FROM categories WHERE project_id = %(project_id)s ORDER BY lower(name), id", params
            ).fetchall()
            counts = conn.execute(_THREAD_COUNTS, params).fetchall()
            figures = conn.execute(_BUCKET_FIGURES, params).fetchall()
            totals = conn.execute(_TOTAL_FIGURES, params).fetchall()
        return AnalyticsRows(
            categories=[CategoryRef(id=r["id"], name=r["name"]) for r in categories],
            thread_counts=[ThreadCount(**r) for r in counts],
            exchange_figures=[exchange_figures(r) for r in figures] + [exchange_figures(r, None) for r in totals],
        )
