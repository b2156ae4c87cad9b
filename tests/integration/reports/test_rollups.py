"""The analytics rollups (migration 0007) against the rows: kept exact by every write path, at any window.

The truth in these tests is plain SQL over threads and messages, written independently of the rollups and
of the adapters' queries; a recount (`analytics_recount`) inside a rolled-back transaction gives the rollups
that the rows imply.
"""

from __future__ import annotations

import math
import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from tests.integration.reports.conftest import Data, Seeded, estimates
from threadline import cli
from threadline.adapters.postgres import imports as import_sql
from threadline.adapters.postgres.chat import PostgresChat
from threadline.adapters.postgres.migrate import migrate
from threadline.bootstrap import Container
from threadline.domain import analytics
from threadline.domain.chat import Outcome
from threadline.domain.metrics import Interaction
from threadline.domain.ports import LabelDecision
from threadline.domain.usage import bin_value
from threadline.local.seed import Seeder

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 3, 2, tzinfo=UTC)
# Each rollup table: its key columns, then its counts.
_ROLLUPS = {
    "analytics_thread_hours": ("project_id, hour, category_id", "threads, user_labelled"),
    "analytics_exchange_hours": (
        "project_id, hour",
        "questions, incomplete, failed, answered, latency_sum_ms, prompt_tokens, completion_tokens, unanswered",
    ),
    "analytics_latency_bins": ("project_id, grain, period, metric, bin", "answers"),
    "analytics_channel_hours": ("project_id, hour, channel", "threads"),
}


def _rollups(conn: psycopg.Connection[Any]) -> dict[str, set[tuple[Any, ...]]]:
    # Rows that dropped to zero count for nothing; they are left in place by design.
    found: dict[str, set[tuple[Any, ...]]] = {}
    for table, (keys, counts) in _ROLLUPS.items():
        width = len(counts.split(","))
        rows = conn.execute(f"SELECT {keys}, {counts} FROM {table}").fetchall()  # type: ignore[call-overload]
        found[table] = {row for row in rows if any(row[-width:])}
    return found


def assert_rollups_match_the_rows(url: str) -> None:
    """The rollups as the triggers left them equal a recount from the rows."""
    with psycopg.connect(url) as conn:
        kept = _rollups(conn)
        conn.execute("SELECT analytics_recount(ARRAY(SELECT id FROM projects))")
        recounted = _rollups(conn)
        conn.rollback()
    assert kept == recounted
    assert kept["analytics_thread_hours"], "the test wrote no thread"


def _chat(container: Container, project_id: UUID, question: str, outcome: Outcome, thread: UUID | None = None) -> UUID:
    """The chat's own two writes: the question (with a new thread or into one), then its answer."""
    chat = PostgresChat(container.db)
    thread_id = thread or uuid4()
    message_id = uuid4()
    chat.record_question(project_id, thread_id, message_id, question, new_thread=thread is None)
    chat.finish_exchange(message_id, outcome)
    return thread_id


@pytest.mark.integration
def test_every_write_path_keeps_the_rollups_exact(container: Container, data: Data) -> None:
    # Given a project with threads written straight into the tables at chosen instants
    p = data.project()
    other = data.project("Other", "Other bot")
    discovery, trouble = p.categories["Discovery"], p.categories["Troubleshooting"]
    for i in range(6):
        data.thread(p.project_id, T0 + timedelta(minutes=37 * i), exchanges=(("complete", 100 * (i + 1), 10, 20),))
    # When the chat adds threads, follow-ups and answers of every status
    first = _chat(container, p.project_id, "How do I start?", Outcome(answer="So.", latency_ms=900, first_token_ms=90))
    _chat(container, p.project_id, "And then?", Outcome(status="incomplete", latency_ms=50), thread=first)
    _chat(container, p.project_id, "Broken?", Outcome(status="failed"))
    _chat(container, other.project_id, "Elsewhere", Outcome(answer="Yes.", latency_ms=12, prompt_tokens=5))
    # And the classifier labels in bulk, a user corrects and clears labels, a category is deleted
    with psycopg.connect(data.url) as conn:
        threads = [r[0] for r in conn.execute("SELECT id FROM threads WHERE project_id = %s", (p.project_id,))]
    container.labels.apply_auto_labels(
        p.project_id, [LabelDecision(t, (discovery, trouble)[i % 2], 0.9, "test") for i, t in enumerate(threads)]
    )
    container.labels.set_user_label(p.project_id, threads[0], trouble)
    container.labels.set_user_label(p.project_id, threads[1], discovery)
    container.labels.clear_label(p.project_id, threads[2])
    container.categories.delete_category(p.project_id, trouble)
    # And an import adds threads, then moves a thread's start earlier with a row of an earlier time
    imported = uuid4()
    rows = [
        Interaction(uuid4(), imported, p.project_id, "Old question", "Old answer", T0 - timedelta(days=3), 250.0),
        Interaction(uuid4(), uuid4(), p.project_id, "Another", "Answer", T0 - timedelta(days=40), None),
    ]
    earlier = [Interaction(uuid4(), imported, p.project_id, "Earlier", "A", T0 - timedelta(days=9), 75.0)]
    with psycopg.connect(data.url) as conn:
        for batch in (rows, earlier):
            conn.execute(import_sql._INSERT_THREADS, import_sql._thread_params(p.project_id, batch))
            conn.execute(import_sql._INSERT_MESSAGES, import_sql._message_params(p.project_id, batch))
    # And a thread is deleted with its messages, and a write is rolled back
    with psycopg.connect(data.url) as conn:
        conn.execute("DELETE FROM threads WHERE id = %s", (threads[3],))
    with psycopg.connect(data.url) as conn:
        conn.execute("INSERT INTO threads (project_id) VALUES (%s)", (p.project_id,))
        conn.rollback()
    # And the chat answers one question the documents do not cover and one they do
    _chat(container, p.project_id, "Off topic?", Outcome(answer="Not covered.", latency_ms=40, grounded=False))
    _chat(container, p.project_id, "Covered?", Outcome(answer="Yes [1].", latency_ms=40, grounded=True))
    # Then the rollups are exactly what the rows imply
    assert_rollups_match_the_rows(data.url)
    assert data.scalar("SELECT created_at FROM threads WHERE id = %s", imported) == T0 - timedelta(days=9)
    # And the unanswered question is counted once, the grounded and the imported ones not at all
    assert data.scalar("SELECT sum(unanswered) FROM analytics_exchange_hours WHERE project_id = %s", p.project_id) == 1


@pytest.mark.integration
def test_truncate_empties_the_rollups(data: Data) -> None:
    p = data.project()
    data.thread(p.project_id, T0, exchanges=(("complete", 100, 1, 1),))
    with psycopg.connect(data.url) as conn:
        conn.execute("TRUNCATE threads CASCADE")
    for table in _ROLLUPS:
        assert data.scalar(f"SELECT count(*) FROM {table}") == 0


@pytest.mark.integration
def test_concurrent_writers_neither_lose_counts_nor_deadlock(container: Container, data: Data) -> None:
    # Given one project whose new threads all land in the same hour's rollup row
    p = data.project()
    categories = list(p.categories.values())

    def chat_and_label(worker: int) -> None:
        rng = random.Random(worker)
        for i in range(15):
            thread = _chat(
                container, p.project_id, f"q{worker}-{i}", Outcome(answer="a", latency_ms=rng.randrange(5, 5000))
            )
            if i % 3 == 0:
                # Labelling many threads at once touches many rollup rows in one statement
                with psycopg.connect(data.url) as conn:
                    ids = [r[0] for r in conn.execute("SELECT id FROM threads WHERE project_id = %s", (p.project_id,))]
                rng.shuffle(ids)
                decisions = [LabelDecision(t, rng.choice(categories), 0.5, "test") for t in ids]
                container.labels.apply_auto_labels(p.project_id, decisions)
            elif i % 3 == 1:
                container.labels.set_user_label(p.project_id, thread, rng.choice(categories))

    # When eight writers chat and label at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(chat_and_label, range(8)))  # re-raises any error, a deadlock included
    # Then no count was lost
    assert data.scalar("SELECT sum(threads) FROM analytics_thread_hours") == 8 * 15
    assert_rollups_match_the_rows(data.url)


@pytest.mark.integration
def test_analytics_bin_is_the_domains_specification(data: Data) -> None:
    # Every value lands in a bin whose value (as the domain reads it) is within 1% of it
    with psycopg.connect(data.url) as conn:
        rows = conn.execute(
            "SELECT v, analytics_bin(v) FROM (SELECT generate_series(-3, 120000) UNION ALL"
            " SELECT generate_series(120000, 2000000000, 999983)) AS s (v)"
        ).fetchall()
    for value, bin_index in rows:
        assert abs(bin_value(bin_index) - max(value, 0)) <= 0.01 * max(value, 0) + 0.5, (value, bin_index)
        assert bin_index == (-1 if value < 1 else math.ceil(math.log(value) / 0.020000666706669435))


def _truth(url: str, project_id: UUID, window: analytics.AnalyticsWindow) -> dict[str, Any]:
    """The window's figures by plain SQL over the rows, bucketed with Postgres's own calendar arithmetic."""
    params = {"p": project_id, "a": window.start, "b": window.end, "unit": window.interval, "tz": window.timezone}
    where = " WHERE project_id = %(p)s AND created_at >= %(a)s AND created_at < %(b)s"
    with psycopg.connect(url) as conn:
        per_bucket = conn.execute(
            "SELECT date_trunc(%(unit)s, created_at, %(tz)s), coalesce(category_id::text, 'none'), count(*)"
            " FROM threads" + where + " GROUP BY 1, 2",
            params,
        ).fetchall()
        sources = dict(
            conn.execute(
                "SELECT coalesce(label_source, 'none'), count(*) FROM threads" + where + " GROUP BY 1", params
            ).fetchall()
        )
        questions = conn.execute(
            "SELECT date_trunc(%(unit)s, created_at, %(tz)s), count(*), sum(prompt_tokens)"
            " FROM messages" + where + " GROUP BY 1",
            params,
        ).fetchall()
        totals = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'incomplete'), count(*) FILTER (WHERE status = 'failed'),"
            " count(latency_ms), coalesce(sum(latency_ms), 0),"
            " percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms),"
            " percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms),"
            " percentile_disc(0.95) WITHIN GROUP (ORDER BY first_token_ms) FROM messages" + where,
            params,
        ).fetchone()
    assert totals is not None
    return {
        "threads": {(b.astimezone(UTC), c): n for b, c, n in per_bucket},
        "sources": {k: sources.get(k, 0) for k in ("auto", "user", "none")},
        "questions": {b.astimezone(UTC): (n, int(t)) for b, n, t in questions},
        "totals": totals,
    }


def _scatter(data: Data, p: Seeded, rng: random.Random, n: int) -> None:
    # Instants that stress the edges: on the hour, on local midnights of odd zones, anywhere.
    categories = [*p.categories.values(), None]
    specials = [T0 + timedelta(hours=h) for h in range(0, 40 * 24, 7)]
    specials += [T0 + timedelta(days=d, hours=18, minutes=30) for d in range(40)]  # Asia/Kolkata midnight
    specials += [T0 + timedelta(days=d, hours=18, minutes=15) for d in range(40)]  # Asia/Kathmandu midnight
    for i in range(n):
        at = rng.choice(specials) if i % 3 == 0 else T0 + timedelta(seconds=rng.randrange(0, 40 * 86_400))
        category = rng.choice(categories)
        exchanges = tuple(
            (
                rng.choice(("complete", "complete", "incomplete", "failed")),
                rng.choice((None, rng.randrange(1, 9000))),
                rng.randrange(0, 900),
                rng.randrange(0, 300),
            )
            for _ in range(rng.randrange(0, 3))
        )
        data.thread(p.project_id, at, category_id=category, source=rng.choice(("auto", "user")), exchanges=exchanges)


@pytest.mark.integration
@pytest.mark.parametrize(
    "tz", ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "America/New_York", "Pacific/Chatham"]
)
def test_analytics_equal_plain_sql_for_any_window_and_zone(container: Container, data: Data, tz: str) -> None:
    # Given 400 threads over 40 days, many on hour boundaries and odd local midnights
    rng = random.Random(tz)
    p = data.project()
    _scatter(data, p, rng, 400)
    with psycopg.connect(data.url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # also exercises index-only reads of the rollups
    for _ in range(6):
        # When a window with ragged edges is read by day or by week
        start = T0 + timedelta(seconds=rng.randrange(-86_400, 20 * 86_400))
        end = start + timedelta(seconds=rng.randrange(600, 30 * 86_400))
        window = analytics.make_window(start, end, rng.choice(("day", "week")), tz, end)
        result = analytics.project_analytics(container.analytics, p.project_id, window)
        truth = _truth(data.url, p.project_id, window)
        # Then every count per bucket and category is the one plain SQL gives
        got = {(b.start, str(c)): n for b in result.buckets for c, n in b.by_category.items() if n} | {
            (b.start, "none"): b.unlabelled for b in result.buckets if b.unlabelled
        }
        assert got == truth["threads"]
        assert result.label_sources == truth["sources"]
        questions = {
            b.start: (b.figures.questions, b.figures.prompt_tokens) for b in result.buckets if b.figures.questions
        }
        assert questions == truth["questions"]
        incomplete, failed, answered, latency_sum, p50, p95, first_p95 = truth["totals"]
        t = result.totals
        assert (t.incomplete, t.failed, t.answered, t.latency_sum_ms) == (incomplete, failed, answered, latency_sum)
        # And the percentiles are within 1% of the exact ones
        assert estimates(t.latency_p50_ms, p50) and estimates(t.latency_p95_ms, p95)
        assert estimates(t.first_token_p95_ms, first_p95)


@pytest.mark.integration
def test_rows_from_before_the_migration_are_counted(pg_admin_url: str, tmp_path: Path) -> None:
    # Given a database at migration 0006 with threads and exchanges in it
    name = f"m_{uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(pg_admin_url, dbname=name)
    try:
        earlier = tmp_path / "migrations"
        earlier.mkdir()
        for path in sorted((REPO / "infra" / "db" / "migrations").glob("*.sql"))[:6]:
            shutil.copy(path, earlier / path.name)
        migrate(url, earlier)
        with psycopg.connect(url) as conn:
            team = conn.execute("INSERT INTO teams (name) VALUES ('t') RETURNING id").fetchone()
            project = conn.execute(
                "INSERT INTO projects (team_id, name) VALUES (%s, 'p') RETURNING id", team
            ).fetchone()
            assert project is not None
            for i in range(50):
                thread = conn.execute(
                    "INSERT INTO threads (project_id, created_at) VALUES (%s, %s) RETURNING id",
                    (project[0], T0 + timedelta(minutes=17 * i)),
                ).fetchone()
                assert thread is not None
                conn.execute(
                    "INSERT INTO messages (thread_id, project_id, question, status, latency_ms, created_at)"
                    " VALUES (%s, %s, 'q', 'complete', %s, %s)",
                    (thread[0], project[0], 10 * i + 1, T0 + timedelta(minutes=17 * i)),
                )
        # When the rest of the migrations run
        assert migrate(url, REPO / "infra" / "db" / "migrations")[0] == "0007_analytics_rollups.sql"
        # Then the rollups hold the rows that were already there
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT sum(threads), count(DISTINCT hour) FROM analytics_thread_hours").fetchone() == (
                50,
                14,
            )
            assert conn.execute("SELECT sum(answered) FROM analytics_exchange_hours").fetchone() == (50,)
        assert_rollups_match_the_rows(url)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.integration
def test_rows_written_with_triggers_off_are_counted_by_the_seeder_and_the_admin_recount(
    container: Container, data: Data
) -> None:
    # Given the seeder, which loads in replica mode (no triggers) as a superuser
    Seeder(container.db, container.tenancy, seed=3).seed(3000, 4, days=20)
    # Then its rows are in the rollups
    assert data.scalar("SELECT sum(threads) FROM analytics_thread_hours") == 3000
    assert data.scalar("SELECT sum(questions) FROM analytics_exchange_hours") == data.scalar(
        "SELECT count(*) FROM messages"
    )
    assert_rollups_match_the_rows(data.url)
    # Given more rows written with the triggers off
    p = data.project()
    with psycopg.connect(data.url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "INSERT INTO threads (project_id, created_at) SELECT %s, %s FROM generate_series(1, 7)", (p.project_id, T0)
        )
    assert data.scalar("SELECT count(*) FROM analytics_thread_hours WHERE project_id = %s", p.project_id) == 0
    # When an operator recounts that project
    result = cli.run(["admin", "recount-analytics", "--project", str(p.project_id)], container)
    # Then they are counted too
    assert isinstance(result, dict) and result["projects"] == 1
    assert data.scalar("SELECT sum(threads) FROM analytics_thread_hours WHERE project_id = %s", p.project_id) == 7
    assert_rollups_match_the_rows(data.url)
    # And without --project, every project is recounted
    everything = cli.run(["admin", "recount-analytics"], container)
    assert isinstance(everything, dict) and everything["projects"] == data.scalar("SELECT count(*) FROM projects") == 5
    assert_rollups_match_the_rows(data.url)
