"""What the labelling benchmarks share: a migrated database, a project, percentiles."""

from __future__ import annotations

import os
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from threadline.adapters.postgres.migrate import migrate
from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh migrated database: on BENCH_DATABASE_URL's server if set, else an embedded one; dropped after."""
    with ExitStack() as stack:
        admin = os.environ.get("BENCH_DATABASE_URL", "")
        if not admin:
            from threadline.local.postgres import embedded_server

            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="tlbench"))
            admin = stack.enter_context(embedded_server(Path(tmp) / "data"))
        name = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        params = conninfo_to_dict(admin)
        params["dbname"] = name
        url = make_conninfo(**params)  # type: ignore[arg-type]
        migrate(url, REPO_ROOT / "infra" / "db" / "migrations")
        try:
            yield url
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_settings(database_url: str) -> Settings:
    """Settings for a benchmark: its database, the repo's tokenizer, no LLM."""
    return Settings(
        database_url=database_url,
        embedding_tokenizer_path=REPO_ROOT / "layers" / "model" / "tokenizer.json",
        openai_base_url="",
        openai_api_key="",
    )


def new_project(container: Container, name: str) -> uuid.UUID:
    """A team and a project with the default categories."""
    team = tenancy.create_team(container.tenancy, f"bench {name}")
    return tenancy.create_project(container.tenancy, team.id, name).id


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]
