"""Fixtures for metrics, alerts and imports: projects with keys, stored interactions, moto queues, SQS draining."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.app import ProjectKey, new_project
from threadline import bootstrap
from threadline import settings as settings_module
from threadline.bootstrap import Container
from threadline.settings import Settings

EVENTS = Path(__file__).resolve().parents[3] / "events" / "sqs"


@dataclass(frozen=True)
class Cloud:
    """Per-test moto resources."""

    endpoint: str
    bucket: str
    import_queue_url: str
    metrics_queue_url: str
    classify_queue_url: str


@pytest.fixture
def cloud(aws_endpoint: str) -> Cloud:
    """A bucket and three queues of its own in the session's moto server."""
    suffix = uuid.uuid4().hex[:10]
    s3 = boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=aws_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=f"imports-{suffix}")
    import_url = sqs.create_queue(QueueName=f"import-{suffix}")["QueueUrl"]
    metrics_url = sqs.create_queue(QueueName=f"metrics-{suffix}")["QueueUrl"]
    classify_url = sqs.create_queue(QueueName=f"classify-{suffix}")["QueueUrl"]
    return Cloud(aws_endpoint, f"imports-{suffix}", import_url, metrics_url, classify_url)


@pytest.fixture
def cloud_settings(settings: Settings, cloud: Cloud) -> Settings:
    """The test's settings pointed at its moto resources, in chunks of 4 rows so small files span chunks."""
    return settings.model_copy(
        update={
            "aws_endpoint_url": cloud.endpoint,
            "import_bucket": cloud.bucket,
            "import_queue_url": cloud.import_queue_url,
            "metrics_queue_url": cloud.metrics_queue_url,
            "classify_queue_url": cloud.classify_queue_url,
            "import_chunk_rows": 4,
        }
    )


@pytest.fixture
def app_container(cloud_settings: Settings) -> Iterator[Container]:
    """A container on the test's database and moto resources."""
    built = Container(cloud_settings)
    yield built
    built.close()


@pytest.fixture
def api(app_container: Container) -> Iterator[TestClient]:
    """The real app over the test's container."""
    from threadline.api.app import create_app

    with TestClient(create_app(app_container)) as client:
        yield client


@pytest.fixture
def make_project(app_container: Container) -> Callable[[str], ProjectKey]:
    """Projects with keys on this folder\'s container (its moto resources), not the shared `container`."""
    return lambda name: new_project(app_container, name)


@pytest.fixture
def add_message(cloud_settings: Settings) -> Callable[..., tuple[uuid.UUID, uuid.UUID]]:
    """Store an answered exchange the way the chat saves one; returns (thread_id, message_id)."""

    def add(
        project_id: uuid.UUID,
        answer: str = "An answer.",
        question: str = "A question?",
        thread_id: uuid.UUID | None = None,
        at: datetime | None = None,
        **columns: Any,
    ) -> tuple[uuid.UUID, uuid.UUID]:
        with psycopg.connect(cloud_settings.database_url) as conn:
            if thread_id is None:
                row = conn.execute(
                    "INSERT INTO threads (project_id, first_question, message_count) VALUES (%s, %s, 1) RETURNING id",
                    (project_id, question),
                ).fetchone()
                assert row is not None
                thread_id = row[0]
            values = {"status": "complete", "created_at": at or datetime.now(UTC), **columns}
            names = ", ".join(values)
            holders = ", ".join(["%s"] * len(values))
            row = conn.execute(
                f"INSERT INTO messages (thread_id, project_id, question, answer, {names})"
                f" VALUES (%s, %s, %s, %s, {holders}) RETURNING id",
                (thread_id, project_id, question, answer, *values.values()),
            ).fetchone()
            assert row is not None
            return thread_id, row[0]

    return add


class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name = "test-function"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, cloud_settings: Settings) -> Iterator[None]:
    """The environment a deployed function gets (handlers build their container from it)."""
    names = ("database_url", "aws_endpoint_url", "import_bucket", "import_queue_url", "metrics_queue_url")
    for name in (*names, "classify_queue_url"):
        monkeypatch.setenv(name.upper(), str(getattr(cloud_settings, name)))
    monkeypatch.setenv("EMBEDDING_TOKENIZER_PATH", str(cloud_settings.embedding_tokenizer_path))
    settings_module.get_settings.cache_clear()
    bootstrap.get_container.cache_clear()
    yield
    bootstrap.get_container().close()
    bootstrap.get_container.cache_clear()
    settings_module.get_settings.cache_clear()


def sqs_event(sample: str, bodies: list[str]) -> dict[str, Any]:
    """A real-shaped SQS event: the sample's record with each body, and distinct message ids."""
    template = json.loads((EVENTS / sample).read_text())["Records"][0]
    return {"Records": [{**template, "messageId": str(uuid.uuid4()), "body": body} for body in bodies]}


def drain(queue_url: str, endpoint: str, handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> int:
    """Deliver a queue's messages to a handler in batches as Lambda's poller does; returns records handled."""
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    handled = 0
    while True:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = received.get("Messages", [])
        if not messages:
            return handled
        template = json.loads((EVENTS / "import_chunk.json").read_text())["Records"][0]
        event = {
            "Records": [
                {**template, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
                for m in messages
            ]
        }
        response = handler(event, FakeLambdaContext())
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        assert not failed, f"records failed: {failed}"
        for m in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        handled += len(messages)
