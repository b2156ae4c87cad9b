"""Metrics, running statistics, alert rules and alerts in Postgres."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, LiteralString
from uuid import UUID

import psycopg

from threadline.adapters.postgres.db import Database, Row
from threadline.adapters.postgres.pagination import Keyset, page_sql
from threadline.domain.alerts import (
    DEFAULT_RULES,
    Alert,
    AlertDraft,
    AlertFilter,
    AlertRule,
    Judge,
    RuleSpec,
    validate_rule,
)
from threadline.domain.errors import NotFound
from threadline.domain.metrics import Interaction, Measurement, RunningStats

_RULE_COLUMNS: LiteralString = (
    "id, project_id, name, kind, metric, operator, threshold, stddevs, min_samples, enabled, created_at, updated_at"
)
_ALERT_COLUMNS: LiteralString = (
    "id, project_id, rule_id, rule_name, message_id, thread_id, metric, value, kind, operator, threshold,"
    " stddevs, mean, stddev, sample_count, occurred_at, created_at"
)

_INSERT_RULE = (
    "INSERT INTO alert_rules (project_id, name, kind, metric, operator, threshold, stddevs, min_samples, enabled)"
    " VALUES (%(project_id)s, %(name)s, %(kind)s, %(metric)s, %(operator)s, %(threshold)s, %(stddevs)s,"
    " %(min_samples)s, %(enabled)s) RETURNING " + _RULE_COLUMNS
)

# Only rows that are new come back, so statistics and alerts follow each value exactly once.
_INSERT_METRICS = """
INSERT INTO interaction_metrics (message_id, metric, project_id, value)
SELECT t.message_id, t.metric, %(project_id)s, t.value
FROM unnest(%(message_ids)s::uuid[], %(metrics)s::text[], %(values)s::float8[]) AS t(message_id, metric, value)
ON CONFLICT (message_id, metric) DO NOTHING
RETURNING message_id, metric
"""

_CREATE_STATS = """
INSERT INTO metric_stats (project_id, metric)
SELECT %(project_id)s, m FROM unnest(%(metrics)s::text[]) AS m ORDER BY m
ON CONFLICT (project_id, metric) DO NOTHING
"""

# A statement of its own after _CREATE_STATS, so its snapshot sees rows another worker just created;
# locking in metric order keeps two workers of one project from deadlocking.
_LOCK_STATS = """
SELECT metric, n, mean, m2 FROM metric_stats
WHERE project_id = %(project_id)s AND metric = ANY(%(metrics)s::text[])
ORDER BY metric FOR UPDATE
"""

# Chan et al.'s combination of the stored (n, mean, M2) with the batch's: exact, order-free, O(1) per metric.
_UPDATE_STATS = """
UPDATE metric_stats s SET
    n = s.n + b.n,
    mean = s.mean + (b.mean - s.mean) * b.n::float8 / (s.n + b.n),
    m2 = s.m2 + b.m2 + (b.mean - s.mean) ^ 2 * s.n::float8 * b.n::float8 / (s.n + b.n),
    updated_at = now()
FROM (
    SELECT metric, count(*) AS n, avg(value) AS mean, coalesce(var_pop(value), 0) * count(*) AS m2
    FROM unnest(%(metrics)s::text[], %(values)s::float8[]) AS t(metric, value)
    GROUP BY metric
) b
WHERE s.project_id = %(project_id)s AND s.metric = b.metric
"""

_INSERT_ALERT = """
INSERT INTO alerts (project_id, rule_id, rule_name, message_id, thread_id, metric, value, kind, operator,
                    threshold, stddevs, mean, stddev, sample_count, occurred_at)
VALUES (%(project_id)s, %(rule_id)s, %(rule_name)s, %(message_id)s, %(thread_id)s, %(metric)s, %(value)s,
        %(kind)s, %(operator)s, %(threshold)s, %(stddevs)s, %(mean)s, %(stddev)s, %(sample_count)s, %(occurred_at)s)
ON CONFLICT (rule_id, message_id) DO NOTHING
"""

# The alert listing's filters, each a fixed fragment (see adapters/postgres/pagination.py for why).
_ALERT_FILTERS: dict[str, LiteralString] = {
    "thread_id": " AND thread_id = %(thread_id)s",
    "message_id": " AND message_id = %(message_id)s",
    "metric": " AND metric = %(metric)s",
    "kind": " AND kind = %(kind)s",
    "since": " AND occurred_at >= %(since)s",
    "until": " AND occurred_at < %(until)s",
}
_ALERTS_NEWEST_FIRST = Keyset("occurred_at", "id")


def _rule_params(project_id: UUID, spec: RuleSpec) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "name": spec.name,
        "kind": spec.kind,
        "metric": spec.metric,
        "operator": spec.operator,
        "threshold": spec.threshold,
        "stddevs": spec.stddevs,
        "min_samples": spec.min_samples,
        "enabled": spec.enabled,
    }


def seed_default_rules(
    conn: psycopg.Connection[Row], project_id: UUID, rules: Sequence[RuleSpec] = DEFAULT_RULES
) -> bool:
    """Give a project the default rules once, inside the caller's transaction; True if they were added now."""
    seeded = conn.execute(
        "INSERT INTO alert_rule_defaults (project_id) VALUES (%(project_id)s)"
        " ON CONFLICT (project_id) DO NOTHING RETURNING project_id",
        {"project_id": project_id},
    ).fetchone()
    if seeded is None:
        return False
    with conn.cursor() as cur:
        cur.executemany(_INSERT_RULE, [_rule_params(project_id, validate_rule(spec)) for spec in rules])
    return True


def record_measurements(
    conn: psycopg.Connection[Row], project_id: UUID, measurements: Sequence[Measurement], judge: Judge
) -> list[AlertDraft]:
    """Store measurements, fold the new ones into the statistics and store their alerts, in the caller's transaction."""
    if not measurements:
        return []
    inserted = conn.execute(
        _INSERT_METRICS,
        {
            "project_id": project_id,
            "message_ids": [m.message_id for m in measurements],
            "metrics": [m.metric for m in measurements],
            "values": [m.value for m in measurements],
        },
    ).fetchall()
    fresh_keys = {(r["message_id"], r["metric"]) for r in inserted}
    fresh = [m for m in measurements if (m.message_id, m.metric) in fresh_keys]
    if not fresh:
        return []
    metrics = sorted({m.metric for m in fresh})
    conn.execute(_CREATE_STATS, {"project_id": project_id, "metrics": metrics})
    rows = conn.execute(_LOCK_STATS, {"project_id": project_id, "metrics": metrics}).fetchall()
    prior = {r["metric"]: RunningStats(int(r["n"]), float(r["mean"]), float(r["m2"])) for r in rows}
    drafts = judge(fresh, prior)
    conn.execute(
        _UPDATE_STATS,
        {"project_id": project_id, "metrics": [m.metric for m in fresh], "values": [m.value for m in fresh]},
    )
    if drafts:
        with conn.cursor() as cur:
            cur.executemany(_INSERT_ALERT, [_alert_params(project_id, d) for d in drafts])
    return drafts


def _alert_params(project_id: UUID, draft: AlertDraft) -> dict[str, Any]:
    rule, m = draft.rule, draft.measurement
    return {
        "project_id": project_id,
        "rule_id": rule.id,
        "rule_name": rule.name,
        "message_id": m.message_id,
        "thread_id": m.thread_id,
        "metric": m.metric,
        "value": m.value,
        "kind": rule.kind,
        "operator": rule.operator,
        "threshold": rule.threshold,
        "stddevs": rule.stddevs,
        "mean": draft.mean,
        "stddev": draft.stddev,
        "sample_count": draft.sample_count,
        "occurred_at": m.occurred_at,
    }


def _source_scores(sources: object) -> tuple[float | None, ...]:
    if isinstance(sources, str):
        sources = json.loads(sources)
    if not isinstance(sources, list):
        return ()
    scores: list[float | None] = []
    for source in sources:
        score = source.get("score") if isinstance(source, dict) else None
        scores.append(float(score) if isinstance(score, int | float) else None)
    return tuple(scores)


class PostgresAlerts:
    """`AlertRepository` over Postgres."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def ensure_default_rules(self, project_id: UUID, rules: Sequence[RuleSpec]) -> None:
        with self._db.transaction() as conn:
            seed_default_rules(conn, project_id, rules)

    def list_rules(self, project_id: UUID) -> list[AlertRule]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT " + _RULE_COLUMNS + " FROM alert_rules WHERE project_id = %(project_id)s"
                " ORDER BY created_at, id",
                {"project_id": project_id},
            ).fetchall()
        return [AlertRule(**r) for r in rows]

    def get_rule(self, project_id: UUID, rule_id: UUID) -> AlertRule:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT " + _RULE_COLUMNS + " FROM alert_rules WHERE id = %(id)s AND project_id = %(project_id)s",
                {"id": rule_id, "project_id": project_id},
            ).fetchone()
        if row is None:
            raise NotFound("alert rule not found")
        return AlertRule(**row)

    def create_rule(self, project_id: UUID, spec: RuleSpec) -> AlertRule:
        with self._db.transaction() as conn:
            row = conn.execute(_INSERT_RULE, _rule_params(project_id, spec)).fetchone()
        assert row is not None
        return AlertRule(**row)

    def update_rule(self, project_id: UUID, rule_id: UUID, spec: RuleSpec) -> AlertRule:
        with self._db.transaction() as conn:
            row = conn.execute(
                "UPDATE alert_rules SET name = %(name)s, kind = %(kind)s, metric = %(metric)s,"
                " operator = %(operator)s, threshold = %(threshold)s, stddevs = %(stddevs)s,"
                " min_samples = %(min_samples)s, enabled = %(enabled)s, updated_at = now()"
                " WHERE id = %(id)s AND project_id = %(project_id)s RETURNING " + _RULE_COLUMNS,
                {**_rule_params(project_id, spec), "id": rule_id},
            ).fetchone()
        if row is None:
            raise NotFound("alert rule not found")
        return AlertRule(**row)

    def delete_rule(self, project_id: UUID, rule_id: UUID) -> None:
        with self._db.transaction() as conn:
            row = conn.execute(
                "DELETE FROM alert_rules WHERE id = %(id)s AND project_id = %(project_id)s RETURNING id",
                {"id": rule_id, "project_id": project_id},
            ).fetchone()
        if row is None:
            raise NotFound("alert rule not found")

    def list_alerts(self, project_id: UUID, filters: AlertFilter) -> list[Alert]:
        wanted = {
            "thread_id": filters.thread_id,
            "message_id": filters.message_id,
            "metric": filters.metric,
            "kind": filters.kind,
            "since": filters.since,
            "until": filters.until,
        }
        select: LiteralString = "SELECT " + _ALERT_COLUMNS + " FROM alerts WHERE project_id = %(project_id)s"
        sql, params = page_sql(select, _ALERT_FILTERS, wanted, _ALERTS_NEWEST_FIRST, filters.page)
        with self._db.transaction() as conn:
            rows = conn.execute(sql, {**params, "project_id": project_id}).fetchall()
        return [Alert(**r) for r in rows]

    def answer_metrics(self, project_id: UUID, message_id: UUID) -> tuple[UUID, dict[str, float]]:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT thread_id FROM messages WHERE id = %(id)s AND project_id = %(project_id)s",
                {"id": message_id, "project_id": project_id},
            ).fetchone()
            if row is None:
                raise NotFound("answer not found")
            values = conn.execute(
                "SELECT metric, value FROM interaction_metrics WHERE message_id = %(id)s ORDER BY metric",
                {"id": message_id},
            ).fetchall()
        return row["thread_id"], {v["metric"]: float(v["value"]) for v in values}

    def load_interaction(self, project_id: UUID, message_id: UUID) -> Interaction | None:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT id, thread_id, project_id, question, answer, created_at, latency_ms, first_token_ms,"
                " prompt_tokens + completion_tokens AS tokens, retrieval_score, sources, grounded FROM messages"
                " WHERE id = %(id)s AND project_id = %(project_id)s AND status IN ('complete', 'incomplete')",
                {"id": message_id, "project_id": project_id},
            ).fetchone()
        if row is None:
            return None
        return Interaction(
            message_id=row["id"],
            thread_id=row["thread_id"],
            project_id=row["project_id"],
            question=row["question"],
            answer=row["answer"],
            occurred_at=row["created_at"],
            latency_ms=row["latency_ms"],
            first_token_ms=row["first_token_ms"],
            tokens_used=row["tokens"],
            retrieval_score=row["retrieval_score"],
            source_scores=_source_scores(row["sources"]),
            grounded=row["grounded"],
        )

    def record(self, project_id: UUID, measurements: Sequence[Measurement], judge: Judge) -> list[AlertDraft]:
        with self._db.transaction() as conn:
            return record_measurements(conn, project_id, measurements, judge)

    def stats(self, project_id: UUID) -> dict[str, RunningStats]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT metric, n, mean, m2 FROM metric_stats WHERE project_id = %(project_id)s ORDER BY metric",
                {"project_id": project_id},
            ).fetchall()
        return {r["metric"]: RunningStats(int(r["n"]), float(r["mean"]), float(r["m2"])) for r in rows}
