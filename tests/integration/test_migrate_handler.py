"""MigrateFunction as CloudFormation's custom resource: the sample events in events/cloudformation against a real
database, answered to a real HTTP server standing in for the pre-signed S3 URL."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.conftest import _with_dbname
from threadline.adapters.aws.custom_resource import NotACustomResourceRequest
from threadline.handlers.migrate import PHYSICAL_ID, lambda_handler
from threadline.local.moto_server import free_port
from threadline.settings import get_settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events" / "cloudformation"
MIGRATIONS = sorted(p.name for p in (REPO / "infra" / "db" / "migrations").glob("*.sql"))


class _Context:
    """The attributes Powertools reads from a Lambda context."""

    function_name = "MigrateFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:MigrateFunction:live"
    aws_request_id = "test-request"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@dataclass
class ResponseServer:
    """What the pre-signed URL received: one (path, headers, JSON body) per PUT."""

    url: str
    received: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def response_server() -> Iterator[ResponseServer]:
    """A real HTTP server on 127.0.0.1 that records PUTs, as S3 does for CloudFormation's pre-signed URL."""
    port = free_port()
    server_state = ResponseServer(url=f"http://127.0.0.1:{port}/stack-response?X-Amz-Signature=test")

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            server_state.received.append((self.path, dict(self.headers.items()), json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server_state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def empty_database_url(pg_admin_url: str) -> Iterator[str]:
    """A database with nothing in it, dropped afterwards."""
    name = f"cfn_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_dbname(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def use_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point the handler's settings (DATABASE_URL) at a database for one test."""

    def use(url: str) -> None:
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def _event(name: str, response_url: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    event["ResponseURL"] = response_url
    return event


def _applied(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute("SELECT name FROM schema_migrations ORDER BY version").fetchall()]


def test_create_migrates_an_empty_database_and_answers_success(
    empty_database_url: str, response_server: ResponseServer, use_database: Any
) -> None:
    # Given an empty database and CloudFormation's Create request
    url = empty_database_url
    use_database(url)
    event = _event("migrate_create", response_server.url)

    # When MigrateFunction handles it
    result = lambda_handler(event, _Context())  # type: ignore[arg-type]

    # Then every migration is applied, and CloudFormation got one SUCCESS answer at its URL
    assert _applied(url) == MIGRATIONS
    assert result["Status"] == "SUCCESS" and result["delivered"] is True
    [(path, headers, body)] = response_server.received
    assert path == "/stack-response?X-Amz-Signature=test"
    # The URL is signed for an empty Content-Type: anything else and S3 refuses the answer.
    assert headers["Content-Type"] == ""
    assert body["Status"] == "SUCCESS" and body["PhysicalResourceId"] == PHYSICAL_ID
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (
        event["StackId"],
        event["RequestId"],
        "DatabaseMigrations",
    )
    assert body["Data"] == {"Applied": str(len(MIGRATIONS)), "Last": MIGRATIONS[-1]}


def test_update_of_a_migrated_database_applies_nothing_and_keeps_the_physical_id(
    database_url: str, response_server: ResponseServer, use_database: Any
) -> None:
    # Given a database already migrated and an Update request naming the resource's physical id
    use_database(database_url)
    event = _event("migrate_update", response_server.url)
    event["PhysicalResourceId"] = "migrations-created-by-an-earlier-version"

    # When MigrateFunction handles it
    lambda_handler(event, _Context())  # type: ignore[arg-type]

    # Then nothing is applied twice, and the physical id is the one sent (a new one would delete the old resource)
    [(_, _, body)] = response_server.received
    assert body["Status"] == "SUCCESS" and body["Data"]["Applied"] == "0"
    assert body["PhysicalResourceId"] == "migrations-created-by-an-earlier-version"
    assert _applied(database_url) == MIGRATIONS


def test_delete_answers_success_without_touching_any_database(
    response_server: ResponseServer, use_database: Any
) -> None:
    # Given a database that cannot be reached at all
    use_database(f"postgresql://nobody@127.0.0.1:{free_port()}/gone?connect_timeout=2")
    event = _event("migrate_delete", response_server.url)

    # When the stack is deleted
    result = lambda_handler(event, _Context())  # type: ignore[arg-type]

    # Then the delete succeeds (a failed delete would leave the stack stuck) and the schema is left alone
    [(_, _, body)] = response_server.received
    assert result["Status"] == body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == event["PhysicalResourceId"]


def test_a_failed_migration_answers_failed_with_the_reason_and_no_secret(
    pg_admin_url: str, response_server: ResponseServer, use_database: Any
) -> None:
    # Given a database URL (with a password) naming a database that does not exist
    params: dict[str, Any] = conninfo_to_dict(pg_admin_url)
    params.update(dbname="no_such_database", password="s3cret-pw")
    use_database(make_conninfo(**params))

    # When CloudFormation asks for the migrations
    result = lambda_handler(_event("migrate_create", response_server.url), _Context())  # type: ignore[arg-type]

    # Then the handler returns (never raises: CloudFormation must hear back) and the stack gets FAILED with why
    [(_, _, body)] = response_server.received
    assert result["Status"] == body["Status"] == "FAILED"
    assert body["Reason"].startswith("migrations failed: OperationalError")
    assert "no_such_database" in body["Reason"] and "s3cret-pw" not in body["Reason"]


def test_an_unreachable_response_url_is_logged_and_the_handler_returns(database_url: str, use_database: Any) -> None:
    # Given a response URL nobody listens on
    use_database(database_url)
    event = _event("migrate_update", f"http://127.0.0.1:{free_port()}/stack-response")

    # When MigrateFunction answers
    started = time.monotonic()
    result = lambda_handler(event, _Context())  # type: ignore[arg-type]

    # Then it reports the answer as undelivered instead of raising or hanging
    assert result["Status"] == "SUCCESS" and result["delivered"] is False
    assert time.monotonic() - started < 15


def test_a_request_without_a_response_url_is_refused(use_database: Any, database_url: str) -> None:
    # Given a custom resource request that lost its ResponseURL
    use_database(database_url)
    event = _event("migrate_create", "unused")
    del event["ResponseURL"]

    # When it is handled, Then it is refused naming what is missing
    with pytest.raises(NotACustomResourceRequest, match="ResponseURL"):
        lambda_handler(event, _Context())  # type: ignore[arg-type]


def test_an_operator_invoke_without_a_request_just_migrates(empty_database_url: str, use_database: Any) -> None:
    # Given an empty database
    url = empty_database_url
    use_database(url)

    # When an operator invokes MigrateFunction with {}
    result = lambda_handler({}, _Context())  # type: ignore[arg-type]

    # Then the pending migrations are applied and listed
    assert result == {"applied": MIGRATIONS} and _applied(url) == MIGRATIONS
