"""Property-based fuzzing of the whole OpenAPI schema (schemathesis) against the real app and database.

Every operation gets FUZZ_EXAMPLES generated requests (valid and invalid bodies, parameters and headers),
derandomized so a failure reproduces; each response must not be a 5xx and must conform to the documented
schema (status code and body). Requests carry the tenant's key and its project id, so they pass
authentication and reach the routes' own validation and the database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.integration.rag.conftest import Tenant, make_tenant
from threadline.bootstrap import Container
from threadline.settings import Settings

if TYPE_CHECKING:
    from threadline.local.cloud import LocalCloud


# The budget: examples per operation. At 10, the 45 operations took 250 s with the session's setup (Postgres,
# moto, the template deployed) on a 2-core machine shared with other test runs (load average ~13); at 30,
# 137 s on the same machine less loaded, with no failure. FUZZ_EXAMPLES raises it for a longer hunt.
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
# Every operation runs inside this one test item, so its timeout grows with the budget: at 500 examples the chat
# operation alone ran past the suite's 300 s (pytest-timeout stopped a hunt that had found nothing); at 400,
# all 49 operations took 340 s with the module's setup, on a quiet machine, with no failure.
pytestmark = [pytest.mark.integration, pytest.mark.fuzz, pytest.mark.timeout(300 + 3 * FUZZ_EXAMPLES)]


@pytest.fixture(scope="module")
def fuzz_target(
    pg_admin_url: str,
    template_db_url: str,
    embedder: object,
    tokenizer_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    local_cloud: LocalCloud,
) -> Iterator[tuple[FastAPI, Tenant]]:
    """The app on one database for the whole module (a copy per operation would cost more than the fuzzing),
    with template.yaml's buckets, queues and state machines in moto, so imports and backfills really start."""
    from threadline.api.app import create_app

    name = f"fuzz_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{conninfo_to_dict(template_db_url)["dbname"]}"')
    params: dict[str, Any] = {**conninfo_to_dict(pg_admin_url), "dbname": name}
    database_url = make_conninfo(**params)
    base = Settings(
        database_url=database_url,
        embedding_tokenizer_path=tokenizer_path,
        local_dir=tmp_path_factory.mktemp("fuzz") / "local",
        openai_base_url="",
        openai_api_key="",
    )
    container = Container(local_cloud.settings(base))
    container.__dict__["embedder"] = embedder
    container.__dict__["query_embedder"] = embedder
    try:
        with local_cloud.session(DATABASE_URL=database_url):
            yield create_app(container), make_tenant(container, "fuzz")
    finally:
        container.close()
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_target: tuple[FastAPI, Tenant]) -> Any:
    """The app's own OpenAPI document, every operation of it."""
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_target[0])


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_5xx_or_off_schema(case: Any, fuzz_target: tuple[FastAPI, Tenant]) -> None:
    # Given a generated request, authenticated as the tenant and aimed at its project
    _, tenant = fuzz_target
    if case.path_parameters and "project_id" in case.path_parameters:
        case.path_parameters["project_id"] = str(tenant.project_id)
    # When the app answers it
    # (the OpenAI-compatible routes take the same key as a bearer token; a slow machine gets a minute)
    response = case.call(headers={**tenant.headers, "Authorization": f"Bearer {tenant.key}"}, timeout=60)
    # Then it is no server error, and its status and body are those the schema documents
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance])
