"""The deployed template in moto: chat -> MetricsQueue -> MetricsFunction; API -> ImportQueue -> ImportFunction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.local.cloud import LocalCloud
from threadline.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def deployed(local_cloud: LocalCloud, settings: Settings) -> Iterator[LocalCloud]:
    """The session's deployment with empty queues, its functions on this test's database."""
    with local_cloud.session(
        DATABASE_URL=settings.database_url, EMBEDDING_TOKENIZER_PATH=str(settings.embedding_tokenizer_path)
    ):
        yield local_cloud


@pytest.fixture
def deployed_api(deployed: LocalCloud, settings: Settings, embedder: object) -> Iterator[tuple[TestClient, Container]]:
    """The API as ApiFunction is configured by the template (queue URLs, bucket), on this test's database."""
    from threadline.api.app import create_app

    container = Container(deployed.settings(settings))
    container.__dict__["embedder"] = embedder
    with TestClient(create_app(container)) as client:
        yield client, container
    container.close()


def _project(container: Container) -> tuple[str, dict[str, str]]:
    team = tenancy.create_team(container.tenancy, "cloud team")
    project = tenancy.create_project(container.tenancy, team.id, "cloud project")
    return str(project.id), {"X-API-KEY": tenancy.issue_api_key(container.tenancy, project.id).key}


def _rows(container: Container, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(container.settings.database_url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def test_an_answer_is_measured_by_metrics_function_off_the_chat_path(
    deployed: LocalCloud, deployed_api: tuple[TestClient, Container]
) -> None:
    client, container = deployed_api
    # Given a project, and the chat configured from the template (METRICS_QUEUE_URL set)
    project_id, headers = _project(container)
    assert container.settings.metrics_queue_url
    # When a question is answered and the MetricsQueue poller runs MetricsFunction
    answer = client.post(f"/query/v1/projects/{project_id}/chat/", json={"query": "How do I export?"}, headers=headers)
    container.chat_events.flush()
    report = deployed.drain("MetricsQueue")
    # Then the interaction's metrics are stored, timings included
    assert answer.status_code == 200 and len(report.succeeded("MetricsQueue")) == 1
    assert report.failed() == []
    metrics = {
        name
        for (name,) in _rows(
            container,
            "SELECT metric FROM interaction_metrics WHERE message_id = %s",
            answer.json()["question_answer_id"],
        )
    }
    assert {"question_length", "answer_length", "latency_ms", "first_token_ms", "source_count"} <= metrics


def test_an_upload_is_imported_by_import_function(
    deployed: LocalCloud, deployed_api: tuple[TestClient, Container]
) -> None:
    client, container = deployed_api
    # Given a project and a CSV of 3 rows (one malformed)
    project_id, headers = _project(container)
    data = b"question,answer,timestamp\nHi?,Hello.,2026-02-01T10:00:00Z\nBye?,Bye.,2026-02-01T10:05:00Z\nx,y,never\n"
    # When it is uploaded to the API and the ImportQueue poller runs ImportFunction
    created = client.post(
        f"/query/v1/projects/{project_id}/interactions/import/", files={"file": ("a.csv", data)}, headers=headers
    )
    report = deployed.drain("ImportQueue")
    job = client.get(f"/query/v1/projects/{project_id}/interactions/import/{created.json()['id']}/", headers=headers)
    # Then the job is done with two rows imported and one rejected
    assert created.status_code == 202 and report.failed() == [] and len(report.succeeded("ImportQueue")) == 1
    assert {k: job.json()[k] for k in ("status", "rows_done", "rows_rejected")} == {
        "status": "done",
        "rows_done": 2,
        "rows_rejected": 1,
    }
    assert _rows(container, "SELECT count(*) FROM messages WHERE project_id = %s", project_id) == [(2,)]


def test_a_traced_function_records_its_aws_calls_as_in_aws(
    deployed: LocalCloud, deployed_api: tuple[TestClient, Container]
) -> None:
    client, container = deployed_api
    # Given ImportFunction, deployed with `Tracing: Active` as every function is, and an upload
    assert deployed.deployment.function("ImportFunction").tracing
    project_id, headers = _project(container)
    data = b"question,answer,timestamp\nHi?,Hello.,2026-02-01T10:00:00Z\n"
    client.post(
        f"/query/v1/projects/{project_id}/interactions/import/", files={"file": ("t.csv", data)}, headers=headers
    )
    seen = len(deployed.runtime.xray.documents())

    # When its worker imports it, with X-Ray on and botocore and httpx patched as in Lambda
    report = deployed.drain("ImportQueue")

    # Then the import succeeded through the traced clients, and the daemon got the invocation's handler
    # subsegment with its S3 read and its SQS send, all in the invocation's one trace
    assert report.failed() == [] and len(report.succeeded("ImportQueue")) == 1
    documents = deployed.runtime.xray.documents()[seen:]
    handler = [d for d in documents if d["name"] == "## lambda_handler"]
    assert len(handler) == 1
    trace = deployed.runtime.xray.documents(handler[0]["trace_id"])
    aws_calls = {(d["name"], d["aws"]["operation"]) for d in trace if d.get("namespace") == "aws"}
    assert {("s3", "GetObject"), ("sqs", "SendMessageBatch")} <= aws_calls
    assert all(d["parent_id"] == handler[0]["id"] for d in trace if d.get("namespace") == "aws")
    # and no document carries the database password or the project's key
    password = psycopg.conninfo.conninfo_to_dict(container.settings.database_url).get("password")
    text = json.dumps(trace)
    assert headers["X-API-KEY"] not in text
    assert not password or str(password) not in text
