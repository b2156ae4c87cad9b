"""Backfill benchmark: seed N threads, run the real state machine on the local cloud, print the figures.

    python -m bench.backfill --threads 1000000          # make bench-backfill N=1000000

Everything is real: Postgres + pgvector (embedded, or DATABASE_URL's server), the COPY seeder, moto in
server mode with template.yaml deployed, Step Functions executing Plan -> distributed Map -> Summarize,
and each Lambda task running our handler in this process with the real embedding model. The raw
embedding throughput is measured in the same run on the same questions, in batches of the same size.
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from threadline.adapters.embeddings import OnnxMiniLM
from threadline.adapters.postgres.migrate import migrate
from threadline.adapters.postgres.seed import Seeder
from threadline.bootstrap import Container
from threadline.domain import backfill
from threadline.settings import Settings, get_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.7
EMBED_SAMPLE = 8192


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__)
    parser.add_argument("--threads", type=int, default=20_000, help="threads to seed (the issue's scale: 1000000)")
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--range-size", type=int, default=1000, help="threads per keyset range (one Lambda call)")
    parser.add_argument("--concurrency", type=int, default=1, help="Map concurrency on this machine")
    parser.add_argument("--aws-concurrency", type=int, default=40, help="Map concurrency of the AWS projection")
    return parser.parse_args(argv)


def _database() -> tuple[str, object | None]:
    settings = get_settings()
    if settings.database_url:
        admin, server = settings.database_url, None
    else:
        from threadline.local.postgres import start_embedded

        admin, server = start_embedded(Path(tempfile.mkdtemp(prefix="tlbench")) / "pg")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(admin)
    params["dbname"] = name
    url = make_conninfo(**params)  # type: ignore[arg-type]
    migrate(url, REPO_ROOT / "infra" / "db" / "migrations")
    return url, server


def _raw_embedding_rate(container: Container) -> float:
    with container.db.transaction() as conn:
        rows = conn.execute(
            "SELECT first_question FROM threads TABLESAMPLE SYSTEM (10) LIMIT %(n)s", {"n": EMBED_SAMPLE}
        ).fetchall()
    questions = [r["first_question"] for r in rows]
    embedder: OnnxMiniLM = container.embedder
    embedder.embed(questions[:32])  # warm-up
    started = time.perf_counter()
    for first in range(0, len(questions), backfill.CLASSIFY_BATCH):
        embedder.embed(questions[first : first + backfill.CLASSIFY_BATCH])
    return len(questions) / (time.perf_counter() - started)


def _in_scope(container: Container) -> tuple[int, int]:
    with container.db.transaction() as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE category_id IS NULL AND first_question <> '') AS unlabelled,"
            " count(*) FILTER (WHERE label_source = 'user') AS user_labels FROM threads"
        ).fetchone()
    assert row is not None
    return int(row["unlabelled"]), int(row["user_labels"])


def _user_label_checksum(container: Container) -> str:
    with container.db.transaction() as conn:
        row = conn.execute(
            "SELECT md5(string_agg(id::text || category_id::text || labelled_at::text, ',' ORDER BY id)) AS sum"
            " FROM threads WHERE label_source = 'user'"
        ).fetchone()
    assert row is not None
    return str(row["sum"])


def _run_backfill(container: Container) -> tuple[backfill.Backfill, float]:
    started = time.perf_counter()
    job = backfill.start(container.backfills, container.backfill_runner, None, backfill.Scope.UNLABELLED).backfill
    last_report = started
    while job.state is backfill.State.RUNNING:
        time.sleep(1.0)
        job = backfill.status(container.backfills, container.backfill_runner, None, job.id)
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            print(f"  ... {job.ranges_done}/{job.ranges_total} ranges, {job.threads_labelled} threads", flush=True)
    return job, time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    """Seed, measure the raw model, run the backfill through the state machine, print the figures."""
    args = _arguments(argv)
    from threadline.local.cloud import LocalCloud
    from threadline.local.moto_server import start_moto

    url, _server = _database()
    base = Settings(database_url=url)
    container = Container(base)
    print(f"backfill benchmark: {args.threads:,} threads over {args.projects} projects", flush=True)
    seeded = Seeder(container.db, container.tenancy).seed(args.threads, args.projects)
    print(f"seed (COPY): {seeded.threads:,} threads + {seeded.messages:,} messages in {seeded.seconds:.1f} s")
    to_label, _ = _in_scope(container)
    user_labels_before = _user_label_checksum(container)
    raw_rate = _raw_embedding_rate(container)
    print(f"raw embedding throughput: {raw_rate:,.0f} questions/s (batches of {backfill.CLASSIFY_BATCH})")

    moto, endpoint = start_moto()
    cloud = LocalCloud.start(endpoint, parameters={"DatabaseUrl": url})
    environment = {
        "DATABASE_URL": url,
        "BACKFILL_RANGE_SIZE": str(args.range_size),
        "BACKFILL_MAP_CONCURRENCY": str(args.concurrency),
    }
    with cloud.session(**environment):
        get_settings.cache_clear()
        runner_container = Container(cloud.settings(base))
        job, wall = _run_backfill(runner_container)
        runner_container.close()
    moto.stop()

    remaining, _ = _in_scope(container)
    rate = job.threads_labelled / wall if wall else 0.0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ranges = max(job.ranges_total, 1)
    range_s = wall * args.concurrency / ranges  # mean seconds per range, as one Lambda would see it
    aws_s = math.ceil(ranges / args.aws_concurrency) * range_s
    print(
        f"backfill state: {job.state.value}, ranges {job.ranges_done}/{job.ranges_total}, failures {len(job.failures)}"
    )
    print(f"threads labelled: {job.threads_labelled:,} of {to_label:,} in scope; still unlabelled: {remaining:,}")
    print(f"user labels intact: {_user_label_checksum(container) == user_labels_before}")
    print(f"wall time: {wall:.1f} s  ({rate:,.0f} threads/s at Map concurrency {args.concurrency})")
    print(f"ratio to raw embedding: {rate / raw_rate:.2f} (target >= {TARGET_RATIO})")
    print(f"peak memory (this process: moto + handlers + model): {peak_mib:,.0f} MiB")
    print(
        f"projected AWS wall time at Map concurrency {args.aws_concurrency}: {aws_s / 60:.1f} min"
        f" ({ranges} ranges x {range_s:.2f} s per range, {math.ceil(ranges / args.aws_concurrency)} waves;"
        " assumes a ClassifyRange Lambda of 3008 MB (2 vCPU) matches one range here, and a database that"
        " keeps up)"
    )
    scale = 1_000_000 / max(args.threads, 1)
    local_1m = seeded.seconds * scale + 1_000_000 / max(rate, 1e-9)
    print(f"projected whole run at 1,000,000 threads on this machine: {local_1m / 60:.1f} min (target <= 60)")
    container.close()


if __name__ == "__main__":
    main()
