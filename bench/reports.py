"""Reports and analytics at scale.

    python -m bench.reports --threads 1000000 --projects 100

Seeds a fresh database with the shared COPY seeder (`threadline seed`: one team per three projects, a
few big projects and many small ones, threads over `--days`, 1-6 exchanges each), then prints:
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
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Pacific/Auckland"]
ANALYTICS_TABLES = (
    "threads",
    "messages",
    "analytics_thread_hours",
    "analytics_exchange_hours",
    "analytics_latency_bins",
)


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
    name = f"bench_reports_{args.threads}_{args.projects}_{args.days}"
    url = _with_dbname(admin, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        reuse = bool(exists and args.reuse)
        if reuse:
            print(f"reusing database {name}")
        else:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    # A reused database may predate a migration (0007 counts the existing rows into the rollups).
    migrate(url, REPO / "infra" / "db" / "migrations")
    if not reuse:
        seed(url, args)
    with psycopg.connect(url, autocommit=True) as conn:
        # The visibility map must be set for index-only scans, as autovacuum does on a live database.
        for table in ANALYTICS_TABLES:
            conn.execute(f"VACUUM (ANALYZE) {table}")
    return url


def seed(url: str, args: argparse.Namespace) -> None:
    """The shared COPY seeder (`threadline seed`), then weekly reports on for every team, in various zones."""
    from threadline.local.seed import Seeder

    container = Container(Settings(database_url=url))
    try:
        result = Seeder(container.db, container.tenancy).seed(args.threads, args.projects, args.days)
    finally:
        container.close()
    print(
        f"seeded {result.threads} threads, {result.messages} exchanges, {result.teams} teams in {result.seconds:.1f} s"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        teams = [r[0] for r in conn.execute("SELECT id FROM teams ORDER BY created_at, id").fetchall()]
        for i, team in enumerate(teams):
            conn.execute(
                "INSERT INTO report_settings (team_id, recipients, cadence, timezone, enabled)"
                " VALUES (%s, %s, 'weekly', %s, true)",
                (team, [f"ops{i}@example.com"], ZONES[i % len(ZONES)]),
            )


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


def _largest_project(container: Container) -> UUID:
    with container.db.transaction() as conn:
        row = conn.execute("SELECT project_id FROM threads GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()
    assert row is not None
    project: UUID = row["project_id"]
    return project


def bench_analytics(container: Container, samples: int, interval: str, only: UUID | None = None) -> None:
    """Latency of GET .../analytics/ for the last 365 days, through the app, on random projects (or `only`)."""
    from fastapi.testclient import TestClient

    from threadline.api.app import create_app, freeze_startup_objects

    rng = Random(11)
    projects = [only] if only else [p.id for p in container.tenancy.list_projects()]
    keys: dict[UUID, str] = {}
    to = datetime.now(UTC)
    params = {"from": (to - timedelta(days=365)).isoformat(), "to": to.isoformat(), "interval": interval}
    timings: list[float] = []
    threads = 0
    app = create_app(container)
    freeze_startup_objects()  # as the process-wide app of a Lambda environment does
    with TestClient(app) as client:
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
                threads = max(threads, response.json()["threads"])
    timings.sort()
    p95 = timings[max(int(len(timings) * 0.95) - 1, 0)]
    scope = f"largest project ({threads} threads in the year)" if only else f"random projects (max {threads} threads)"
    print(
        f"analytics one year by {interval}, {scope}: n={len(timings)} p50={statistics.median(timings):.1f} ms"
        f" p95={p95:.1f} ms max={timings[-1]:.1f} ms  target p95 <= 100 ms"
    )


def main(argv: list[str] | None = None) -> int:
    """Seed, then print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__)
    parser.add_argument("--threads", type=int, default=1_000_000)
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--days", type=int, default=365, help="threads are spread over this many past days")
    parser.add_argument("--samples", type=int, default=100, help="analytics requests to time")
    parser.add_argument("--database-url", default="", help="a superuser URL; default: an embedded server")
    parser.add_argument("--reuse", action="store_true", help="reuse a database seeded with the same sizes")
    parser.add_argument("--send", action="store_true", help="also send every report to a local SES")
    args = parser.parse_args(argv)
    print(f"reports bench: {args.threads} threads, {args.projects} projects, {args.days} days")
    url = prepare(args)
    container = Container(Settings(database_url=url))
    try:
        bench_build(container)
        bench_analytics(container, args.samples, "day")
        bench_analytics(container, max(args.samples // 4, 5), "week")
        bench_analytics(container, max(args.samples // 4, 5), "day", only=_largest_project(container))
        if args.send:
            bench_send(container)
    finally:
        container.close()
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
