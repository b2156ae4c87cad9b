"""Usage figures from the rollups of migration 0007, with the uncovered minutes read from the rows.

Each query unions the rollup part and the row part of a `UsageQuery` and assigns buckets with
`width_bucket(instant, bounds)`: bucket i holds bounds[i] <= instant < bounds[i + 1] (SQL counts from 1).
The row parts count a row exactly as the triggers of migration 0007 do; tests compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import args_row

from threadline.domain.usage import (
    BinCount,
    ChannelTally,
    ExchangeTally,
    FeedbackTally,
    ThreadTally,
    UsageQuery,
    UsageRows,
)

_THREADS = """
SELECT project_id, bucket - 1 AS bucket, category_id, sum(threads)::int AS threads,
       sum(user_labelled)::int AS user_labelled
FROM (
    SELECT project_id, width_bucket(hour, %(bounds)s::timestamptz[]) AS bucket, category_id, threads, user_labelled
    FROM analytics_thread_hours
    WHERE project_id = ANY(%(project_ids)s::uuid[]) AND hour >= %(hours_from)s AND hour < %(hours_to)s
      AND hour <> ALL(%(cut_hours)s::timestamptz[])
    UNION ALL
    SELECT t.project_id, width_bucket(t.created_at, %(bounds)s::timestamptz[]), t.category_id, 1,
           (t.label_source IS NOT DISTINCT FROM 'user')::int
    FROM unnest(%(live_from)s::timestamptz[], %(live_to)s::timestamptz[]) AS live (lo, hi)
    JOIN threads t
      ON t.project_id = ANY(%(project_ids)s::uuid[]) AND t.created_at >= live.lo AND t.created_at < live.hi
) counted
GROUP BY 1, 2, 3
"""

# Threads per bucket and channel: the rollup of migration 0009 for whole hours, the rows for the rest.
_CHANNELS = """
SELECT bucket - 1 AS bucket, channel, sum(threads)::int AS threads
FROM (
    SELECT width_bucket(hour, %(bounds)s::timestamptz[]) AS bucket, channel, threads
    FROM analytics_channel_hours
    WHERE project_id = ANY(%(project_ids)s::uuid[]) AND hour >= %(hours_from)s AND hour < %(hours_to)s
      AND hour <> ALL(%(cut_hours)s::timestamptz[])
    UNION ALL
    SELECT width_bucket(t.created_at, %(bounds)s::timestamptz[]), t.channel, 1
    FROM unnest(%(live_from)s::timestamptz[], %(live_to)s::timestamptz[]) AS live (lo, hi)
    JOIN threads t
      ON t.project_id = ANY(%(project_ids)s::uuid[]) AND t.created_at >= live.lo AND t.created_at < live.hi
) counted
GROUP BY 1, 2
"""

# Ratings per bucket: the rollup of migration 0013 for whole hours, the rows for the rest (by first rating).
_FEEDBACK = """
SELECT project_id, bucket - 1 AS bucket, sum(up)::int AS up, sum(down)::int AS down
FROM (
    SELECT project_id, width_bucket(hour, %(bounds)s::timestamptz[]) AS bucket, up, down
    FROM analytics_feedback_hours
    WHERE project_id = ANY(%(project_ids)s::uuid[]) AND hour >= %(hours_from)s AND hour < %(hours_to)s
      AND hour <> ALL(%(cut_hours)s::timestamptz[])
    UNION ALL
    SELECT f.project_id, width_bucket(f.created_at, %(bounds)s::timestamptz[]), (f.rating = 'up')::int,
           (f.rating = 'down')::int
    FROM unnest(%(live_from)s::timestamptz[], %(live_to)s::timestamptz[]) AS live (lo, hi)
    JOIN answer_feedback f
      ON f.project_id = ANY(%(project_ids)s::uuid[]) AND f.created_at >= live.lo AND f.created_at < live.hi
) counted
GROUP BY 1, 2
"""

_EXCHANGES = """
SELECT project_id, bucket - 1 AS bucket, sum(questions)::int AS questions, sum(incomplete)::int AS incomplete,
       sum(failed)::int AS failed, sum(answered)::int AS answered, sum(latency_sum_ms)::bigint AS latency_sum_ms,
       sum(prompt_tokens)::bigint AS prompt_tokens, sum(completion_tokens)::bigint AS completion_tokens,
       sum(unanswered)::int AS unanswered
FROM (
    SELECT project_id, width_bucket(hour, %(bounds)s::timestamptz[]) AS bucket, questions, incomplete, failed,
           answered, latency_sum_ms, prompt_tokens, completion_tokens, unanswered
    FROM analytics_exchange_hours
    WHERE project_id = ANY(%(project_ids)s::uuid[]) AND hour >= %(hours_from)s AND hour < %(hours_to)s
      AND hour <> ALL(%(cut_hours)s::timestamptz[])
    UNION ALL
    SELECT m.project_id, width_bucket(m.created_at, %(bounds)s::timestamptz[]), 1, (m.status = 'incomplete')::int,
           (m.status = 'failed')::int, (m.latency_ms IS NOT NULL)::int, coalesce(m.latency_ms, 0),
           m.prompt_tokens, m.completion_tokens, (m.grounded IS FALSE)::int
    FROM unnest(%(live_from)s::timestamptz[], %(live_to)s::timestamptz[]) AS live (lo, hi)
    JOIN messages m
      ON m.project_id = ANY(%(project_ids)s::uuid[]) AND m.created_at >= live.lo AND m.created_at < live.hi
) counted
GROUP BY 1, 2
"""

_BINS = """
SELECT project_id, span, metric, bin, sum(answers)::int AS answers
FROM (
    SELECT b.project_id, p.span, b.metric, b.bin, b.answers
    FROM unnest(%(period_span)s::int[], %(period_grain)s::text[], %(period_start)s::timestamptz[])
         AS p (span, grain, period)
    JOIN analytics_latency_bins b
      ON b.project_id = ANY(%(project_ids)s::uuid[]) AND b.grain = p.grain AND b.period = p.period
    UNION ALL
    SELECT m.project_id, live.span, v.metric, analytics_bin(v.ms), 1
    FROM unnest(%(span_live)s::int[], %(span_from)s::timestamptz[], %(span_to)s::timestamptz[]) AS live (span, lo, hi)
    JOIN messages m
      ON m.project_id = ANY(%(project_ids)s::uuid[]) AND m.created_at >= live.lo AND m.created_at < live.hi
    CROSS JOIN LATERAL (VALUES ('latency', m.latency_ms), ('first_token', m.first_token_ms)) AS v (metric, ms)
    WHERE v.ms IS NOT NULL
) binned
GROUP BY 1, 2, 3, 4
"""


def _params(project_ids: Sequence[UUID], query: UsageQuery) -> dict[str, Any]:
    hours = query.hours
    periods: list[tuple[int, str, datetime]] = []
    span_live: list[tuple[int, datetime, datetime]] = []
    for span, cover in enumerate(query.span_covers):
        periods += [(span, "month", m) for m in cover.months] + [(span, "day", d) for d in cover.days]
        span_live += [(span, lo, hi) for lo, hi in cover.live]
    return {
        "project_ids": list(project_ids),
        "bounds": list(query.bounds),
        "hours_from": hours.hours_from,
        "hours_to": hours.hours_to,
        "cut_hours": list(hours.cut_hours),
        "live_from": [lo for lo, _ in hours.live],
        "live_to": [hi for _, hi in hours.live],
        "period_span": [p[0] for p in periods],
        "period_grain": [p[1] for p in periods],
        "period_start": [p[2] for p in periods],
        "span_live": [s[0] for s in span_live],
        "span_from": [s[1] for s in span_live],
        "span_to": [s[2] for s in span_live],
    }


def read_usage(conn: psycopg.Connection[Any], project_ids: Sequence[UUID], query: UsageQuery) -> UsageRows:
    """Run `query` for the projects on `conn`, inside the caller's transaction (and snapshot)."""
    params = _params(project_ids, query)
    # Rows straight into the tallies (columns in field order): no dict per row.
    return UsageRows(
        threads=conn.cursor(row_factory=args_row(ThreadTally)).execute(_THREADS, params).fetchall(),
        exchanges=conn.cursor(row_factory=args_row(ExchangeTally)).execute(_EXCHANGES, params).fetchall(),
        bins=conn.cursor(row_factory=args_row(BinCount)).execute(_BINS, params).fetchall(),
        feedback=conn.cursor(row_factory=args_row(FeedbackTally)).execute(_FEEDBACK, params).fetchall(),
    )


def read_channels(conn: psycopg.Connection[Any], project_ids: Sequence[UUID], query: UsageQuery) -> list[ChannelTally]:
    """Threads per bucket of `query` and channel, summed over the projects, inside the caller's snapshot."""
    cursor = conn.cursor(row_factory=args_row(ChannelTally))
    return cursor.execute(_CHANNELS, _params(project_ids, query)).fetchall()
