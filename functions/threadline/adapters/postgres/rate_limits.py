"""Fixed-window request counts in Postgres, shared by every instance of the app (migration 0013)."""

from __future__ import annotations

from typing import LiteralString

from threadline.adapters.postgres.db import Database
from threadline.domain.access import Limit

# One statement per request: count the request in each bucket's current minute, and prune up to 10 windows
# that ended over a minute ago. Each request adds at most two rows and removes up to ten, so the table stays
# at about the current minute's buckets without a scheduled job. SKIP LOCKED: concurrent requests prune
# different rows instead of queueing on the same ones. Buckets are counted in sorted order, so two requests
# that share a bucket (one client address, two keys) always take their rows in the same order (no deadlock).
_HIT: LiteralString = (
    "WITH pruned AS ("
    "  DELETE FROM rate_limit_windows WHERE ctid IN (SELECT ctid FROM rate_limit_windows"
    "   WHERE window_start < date_trunc('minute', now()) - interval '1 minute' LIMIT 10 FOR UPDATE SKIP LOCKED))"
    " INSERT INTO rate_limit_windows AS w (bucket, window_start, hits)"
    " SELECT b.bucket, date_trunc('minute', now()), 1 FROM unnest(%(buckets)s::text[]) AS b (bucket) ORDER BY 1"
    " ON CONFLICT (bucket, window_start) DO UPDATE SET hits = w.hits + 1"
    " RETURNING w.bucket, w.hits,"
    "  ceil(extract(epoch FROM w.window_start + interval '1 minute' - now()))::int AS retry_after_s"
)


class PostgresRateCounter:
    """`RateCounter` over the unlogged table rate_limit_windows."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def hit(self, limits: list[Limit]) -> int | None:
        allowed = {limit.bucket: limit.per_minute for limit in limits}
        with self._db.transaction() as conn:
            rows = conn.execute(_HIT, {"buckets": sorted(allowed)}).fetchall()
        over = [max(1, r["retry_after_s"]) for r in rows if r["hits"] > allowed[r["bucket"]]]
        return max(over) if over else None
