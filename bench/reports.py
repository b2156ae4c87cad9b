"""Reports and analytics at scale.

    python -m bench.reports --threads 1000000 --projects 100 --teams 20

Seeds a fresh database (threads spread over `--days`, 1-3 exchanges each, 30% unlabelled), then prints:
- the wall time to build (gather + render, charts included) every team's weekly and monthly report
  (target <= 5 s for 1,000,000 threads across 100 projects);
- the analytics endpoint's latency (through the FastAPI app, in process) for a one-year daily range,
  over `--samples` requests on random projects (target p95 <= 100 ms).
`--reuse` keeps a database seeded with the same sizes; `--send` also sends every report to a local SES.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from uuid import UUID

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from threadline.adapters.postgres.migrate import migrate
from threadline.bootstrap import Container
from threadline.domain import reports, tenancy
from threadline.domain.report_render import render_mail
from threadline.settings import Settings

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "How do I reset my password?",
    "Where can I download my invoices?",
    "The export fails with a timeout",
    "Can I use the API from Python?",
    "How do I invite a colleague?",
    "Why is my dashboard empty?",
    "Is there a dark mode?",
    "How do I configure single sign-on?",
    "I get an error 500 when I upload a file",
    "How do I cancel my subscription?",
]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Pacific/Auckland"]
EXTRA_CATEGORIES = ["Billing", "Account", "Integrations"]

_THREADS = """
INSERT INTO threads (project_id, first_question, category_id, label_source, label_confidence, labelled_at,
                     created_at, updated_at, message_count)
SELECT %(project_id)s, q, c, CASE WHEN c IS NULL THEN NULL WHEN r2 < 0.1 THEN 'user' ELSE 'auto' END,
       CASE WHEN c IS NULL THEN NULL ELSE 0.8 END, CASE WHEN c IS NULL THEN NULL ELSE ts END, ts, ts, n
FROM (
    SELECT (%(questions)s::text[])[1 + floor(random() * cardinality(%(questions)s::text[]))::int] AS q,
           CASE WHEN random() < 0.3 THEN NULL
                ELSE (%(categories)s::uuid[])[1 + floor(random() * cardinality(%(categories)s::uuid[]))::int] END AS c,
           random() AS r2,
           %(end)s::timestamptz - random() * %(span)s::interval AS ts,
           1 + floor(random() * 3)::int AS n
    FROM generate_series(1, %(count)s)
) g
"""

_MESSAGES = """
INSERT INTO messages (thread_id, project_id, question, answer, status, model, prompt_tokens, completion_tokens,
                      latency_ms, first_token_ms, created_at, completed_at)
SELECT t.id, t.project_id, t.first_question, 'an answer',
       CASE WHEN r < 0.05 THEN 'incomplete' WHEN r < 0.06 THEN 'failed' ELSE 'complete' END, 'bench',
       300 + floor(random() * 900)::int, 50 + floor(random() * 300)::int,
       CASE WHEN r < 0.06 THEN NULL ELSE 400 + floor(random() * random() * 6000)::int END,
       CASE WHEN r < 0.06 THEN NULL ELSE 150 + floor(random() * 400)::int END,
       t.created_at + k * interval '40 seconds', t.created_at + k * interval '40 seconds'
FROM (SELECT id, project_id, first_question, created_at, message_count FROM threads
      WHERE project_id = %(project_id)s) t,
     LATERAL (SELECT k, random() AS r FROM generate_series(0, t.message_count - 1) k) e
"""


def _with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)  # type: ignore[arg-type]


def _admin_url(args: argparse.Namespace) -> str:
    if args.database_url:
        return str(args.database_url)
    from threadline.local.postgres import start_embedded

    url, _ = start_embedded(REPO / ".local" / "bench-pg")
    return url


def prepare(args: argparse.Namespace) -> str:
    """A migrated, seeded database; reused when `--reuse` and its sizes match."""
    admin = _admin_url(args)
    name = f"bench_reports_{args.threads}_{args.projects}_{args.teams}"
    url = _with_dbname(admin, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and args.reuse:
            print(f"reusing database {name}")
            return url
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    migrate(url, REPO / "infra" / "db" / "migrations")
    seed(url, args)
    return url


def seed(url: str, args: argparse.Namespace) -> None:
    """Teams, projects, categories, settings, then threads and their exchanges, server-side in bulk."""
    rng = Random(7)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        teams = [
            conn.execute("INSERT INTO teams (name) VALUES (%s) RETURNING id", (f"Team {i}",)).fetchone()[0]  # type: ignore[index]
            for i in range(args.teams)
        ]
        for i, team in enumerate(teams):
            conn.execute(
                "INSERT INTO report_settings (team_id, recipients, cadence, timezone, enabled)"
                " VALUES (%s, %s, 'weekly', %s, true)",
                (team, [f"ops{i}@example.com"], ZONES[i % len(ZONES)]),
            )
        per_project, extra = divmod(args.threads, args.projects)
        end = datetime.now(UTC)
        for p in range(args.projects):
            project = conn.execute(
                "INSERT INTO projects (team_id, name) VALUES (%s, %s) RETURNING id", (teams[p % len(teams)], f"Bot {p}")
            ).fetchone()[0]  # type: ignore[index]
            names = [c.name for c in tenancy.DEFAULT_CATEGORIES] + EXTRA_CATEGORIES[: rng.randint(0, 3)]
            categories = [
                conn.execute(
                    "INSERT INTO categories (project_id, name) VALUES (%s, %s) RETURNING id", (project, n)
                ).fetchone()[0]  # type: ignore[index]
                for n in names
            ]
            params = {
                "project_id": project,
                "questions": QUESTIONS,
                "categories": categories,
                "end": end,
                "span": timedelta(days=args.days),
                "count": per_project + (1 if p < extra else 0),
            }
            conn.execute(_THREADS, params)
            conn.execute(_MESSAGES, params)
            if (p + 1) % max(args.projects // 10, 1) == 0:
                print(f"  seeded {p + 1}/{args.projects} projects ({time.perf_counter() - started:.0f} s)")
        # The visibility map must be set for index-only scans, as autovacuum does on a live database.
        conn.execute("VACUUM (ANALYZE) threads")
        conn.execute("VACUUM (ANALYZE) messages")
        counts = conn.execute("SELECT (SELECT count(*) FROM threads), (SELECT count(*) FROM messages)").fetchone()
    assert counts is not None
    print(f"seeded {counts[0]} threads, {counts[1]} exchanges in {time.perf_counter() - started:.1f} s")


def bench_build(container: Container) -> None:
    """Build (gather + render) every enabled team's weekly and monthly report."""
    settings = container.reports.enabled_report_settings()
    now = datetime.now(UTC)
    for cadence in reports.CADENCES:
        started = time.perf_counter()
        size = projects = 0
        for s in settings:
            period = reports.last_complete_period(cadence, s.timezone, now)
            report = reports.build_team_report(container.reports, s.team_id, period)
            mail = render_mail(report, container.settings.report_sender, s.recipients)
            size += len(mail.html) + len(mail.text) + sum(len(i.png) for i in mail.images)
            projects += len(report.projects)
        elapsed = time.perf_counter() - started
        print(
            f"build {cadence} reports: {len(settings)} teams, {projects} projects in {elapsed:.2f} s"
            f" ({elapsed / max(len(settings), 1) * 1000:.0f} ms/team, {size / 1e6:.1f} MB of mail)  target <= 5 s"
        )


def bench_send(container: Container) -> None:
    """Send every due report to a local SES (moto server), once."""
    from threadline.adapters.aws.mailer import ses_client
    from threadline.local.moto_server import start_moto

    server, endpoint = start_moto()
    try:
        sending = Container(container.settings.model_copy(update={"aws_endpoint_url": endpoint}))
        ses_client(sending.settings).verify_email_identity(EmailAddress=sending.settings.report_sender)
        started = time.perf_counter()
        summary = reports.run_reports(sending.report_services, datetime.now(UTC), render_mail)
        print(f"build + send to local SES: {summary.counts} in {time.perf_counter() - started:.2f} s")
        sending.close()
    finally:
        server.stop()


def bench_analytics(container: Container, samples: int, interval: str) -> None:
    """Latency of GET .../analytics/ for the last 365 days, through the app, on random projects."""
    from fastapi.testclient import TestClient

    from threadline.api.app import create_app

    rng = Random(11)
    projects = [p.id for p in container.tenancy.list_projects()]
    keys: dict[UUID, str] = {}
    to = datetime.now(UTC)
    params = {"from": (to - timedelta(days=365)).isoformat(), "to": to.isoformat(), "interval": interval}
    timings: list[float] = []
    with TestClient(create_app(container)) as client:
        for i in range(samples + 3):
            project = rng.choice(projects)
            if project not in keys:
                keys[project] = tenancy.issue_api_key(container.tenancy, project, "bench").key
            started = time.perf_counter()
            response = client.get(
                f"/query/v1/projects/{project}/analytics/", params=params, headers={"X-API-KEY": keys[project]}
            )
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.text
            if i >= 3:  # the first requests warm the pool and the caches
                timings.append(elapsed)
    timings.sort()
    p95 = timings[max(int(len(timings) * 0.95) - 1, 0)]
    print(
        f"analytics one year by {interval}: n={len(timings)} p50={statistics.median(timings):.1f} ms"
        f" p95={p95:.1f} ms max={timings[-1]:.1f} ms  target p95 <= 100 ms"
    )


def main(argv: list[str] | None = None) -> int:
    """Seed, then print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__)
    parser.add_argument("--threads", type=int, default=1_000_000)
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--days", type=int, default=365, help="threads are spread over this many past days")
    parser.add_argument("--samples", type=int, default=100, help="analytics requests to time")
    parser.add_argument("--database-url", default="", help="a superuser URL; default: an embedded server")
    parser.add_argument("--reuse", action="store_true", help="reuse a database seeded with the same sizes")
    parser.add_argument("--send", action="store_true", help="also send every report to a local SES")
    args = parser.parse_args(argv)
    args.teams = min(args.teams, args.projects)
    print(f"reports bench: {args.threads} threads, {args.projects} projects, {args.teams} teams, {args.days} days")
    url = prepare(args)
    container = Container(Settings(database_url=url))
    try:
        bench_build(container)
        bench_analytics(container, args.samples, "day")
        bench_analytics(container, max(args.samples // 4, 5), "week")
        if args.send:
            bench_send(container)
    finally:
        container.close()
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
