"""Shared fixtures: real Postgres + pgvector, a migrated template database, and a fresh copy per test."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from threadline.adapters.postgres.migrate import migrate
from threadline.bootstrap import Container
from threadline.settings import Settings

if TYPE_CHECKING:
    from threadline.local.cloud import LocalCloud

pytest_plugins = ["tests.fixtures.app", "tests.fixtures.llama"]

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DB = "threadline_template"


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A superuser URL: TEST_DATABASE_URL if set, else an embedded server in a temporary folder."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    from threadline.local.postgres import start_embedded

    with tempfile.TemporaryDirectory(prefix="tlpg") as tmp:
        url, server = start_embedded(Path(tmp) / "data")
        yield url
        server.cleanup()


def _with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_db_url(pg_admin_url: str) -> str:
    """A database migrated once per session; each test copies it (cheap, like procrastinate's fixtures)."""
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    url = _with_dbname(pg_admin_url, TEMPLATE_DB)
    migrate(url, REPO_ROOT / "infra" / "db" / "migrations")
    return url


@pytest.fixture
def database_url(pg_admin_url: str, template_db_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    yield _with_dbname(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def tokenizer_path() -> Path:
    """The MiniLM tokenizer (built by `make model`)."""
    path = REPO_ROOT / "layers" / "model" / "tokenizer.json"
    assert path.is_file(), "run `make model` first (make test does)"
    return path


@pytest.fixture(scope="session")
def embedder(tokenizer_path: Path) -> object:
    """One real embedding model per session (loading it costs ~0.3 s)."""
    from threadline.adapters.embeddings import OnnxMiniLM

    return OnnxMiniLM(tokenizer_path, Settings().embedding_model_path)


@pytest.fixture
def settings(database_url: str, tokenizer_path: Path, tmp_path: Path) -> Settings:
    """Settings for one test: its own database, no LLM, no AWS unless a test adds them.

    Without a cloud, uploads are ingested within the request (INGEST_INLINE); tests of the bucket path turn it off.
    """
    return Settings(
        database_url=database_url,
        ingest_inline=True,
        embedding_tokenizer_path=tokenizer_path,
        local_dir=tmp_path / "local",
        openai_base_url="",
        openai_api_key="",
    )


@pytest.fixture
def container(settings: Settings, embedder: object) -> Iterator[Container]:
    """A container on the test's database, sharing the session's embedding model."""
    built = Container(settings)
    built.__dict__["embedder"] = embedder
    built.__dict__["query_embedder"] = embedder
    yield built
    built.close()


def _external_endpoint() -> str | None:
    """The endpoint of an AWS look-alike started outside the tests: AWS_ENDPOINT_URL, or LOCALSTACK_HOST's under
    THREADLINE_CLOUD=localstack (whose clients then come from localstack_client, adapters/aws/clients.py)."""
    if url := os.environ.get("AWS_ENDPOINT_URL"):
        return url
    settings = Settings()
    return f"http://{settings.localstack_host}" if settings.cloud == "localstack" else None


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """An AWS endpoint for the session: an external one if given (LocalStack, a moto server), else moto in server
    mode in this process.

    Step Functions really executes in moto only with `execute_state_machine` on; MOTO_PORT tells its
    interpreter where the server is.
    """
    if url := _external_endpoint():
        yield url
        return
    from threadline.local.moto_server import start_moto

    server, url = start_moto()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def local_cloud(aws_endpoint: str, template_db_url: str) -> Iterator[LocalCloud]:
    """template.yaml deployed into the session's AWS endpoint, with Lambda invocations running our handlers.

    Gives the Deployment (`local_cloud.deployment`: logical id -> queue URLs, ARNs, functions' env) and
    `drain()`, `fire()`, `invoke()`, `mail()`, `settings()`. Tests that drive handlers should use `cloud`.
    """
    from threadline.local import invoke
    from threadline.local.cloud import LocalCloud

    # Lambda waits about 1 and 2 minutes between asynchronous retries; tests wait a fraction of a second.
    cloud = LocalCloud.start(aws_endpoint, parameters={"DatabaseUrl": template_db_url}, retry_delays_s=(0.2, 0.4))
    yield cloud
    cloud.close()
    invoke.uninstall()


@pytest.fixture
def cloud(local_cloud: LocalCloud, settings: Settings) -> Iterator[LocalCloud]:
    """The session's local cloud for one test: empty queues, and functions on this test's database.

    Functions keep their own environment otherwise (their tokenizer comes from the ModelLayer's folder).
    """
    with local_cloud.session(DATABASE_URL=settings.database_url):
        yield local_cloud


@pytest.fixture(scope="session")
def moto_endpoint(aws_endpoint: str) -> Iterator[str]:
    """A moto server in this process, even when the session's endpoint is external (see `aws_endpoint`).

    Only an in-process moto can run our handlers behind Step Functions tasks and give sent mail back;
    without an external endpoint this is the session's endpoint itself.
    """
    if _external_endpoint() is None:
        yield aws_endpoint
        return
    from threadline.local.moto_server import start_moto

    server, url = start_moto()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def local_moto_cloud(local_cloud: LocalCloud, moto_endpoint: str, template_db_url: str) -> LocalCloud:
    """Like `local_cloud`, on the in-process moto (the same object unless the endpoint is external)."""
    from threadline.local.cloud import LocalCloud

    if local_cloud.deployment.endpoint == moto_endpoint:
        return local_cloud
    return LocalCloud.start(moto_endpoint, parameters={"DatabaseUrl": template_db_url}, retry_delays_s=(0.2, 0.4))


@pytest.fixture
def moto_cloud(local_moto_cloud: LocalCloud, settings: Settings) -> Iterator[LocalCloud]:
    """Like `cloud`, on the in-process moto: for Step Functions flows and mail."""
    with local_moto_cloud.session(DATABASE_URL=settings.database_url):
        yield local_moto_cloud
