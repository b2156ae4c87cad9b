"""Ingestion off the request path (issue 17 point 3): the API stores the file and answers 202 `pending`; the
IngestFunction embeds in batches while its invocation has time, and a continuation carries a document that
outlasts one invocation on to the next, without duplicating chunks under redelivery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import boto3
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.integration.rag.conftest import Tenant, make_tenant
from threadline.bootstrap import Container
from threadline.domain.documents import EMBED_BATCH, SAFETY_MS
from threadline.local.cloud import LocalCloud
from threadline.settings import Settings

pytestmark = pytest.mark.integration

# Sections of a few sentences each: every one becomes its own chunk, so the document makes SECTIONS chunks.
SECTIONS = 5 * EMBED_BATCH + 7


def _manual() -> bytes:
    parts = ["# Appliance manual\n"]
    for i in range(SECTIONS):
        parts.append(
            f"\n## Topic {i}\n\nStep {i}: open panel {i}, turn dial {i} to position {i % 9} and wait {i} seconds."
            f" If lamp {i} blinks, call support line {i}.\n"
        )
    return "".join(parts).encode()


class _Context:
    """A Lambda context whose time runs out after `batches` checks: each check precedes one embedded batch."""

    function_name = "IngestFunction"
    memory_limit_in_mb = 3008
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:IngestFunction"
    aws_request_id = "test-request"

    def __init__(self, batches: int) -> None:
        self._left = batches

    def get_remaining_time_in_millis(self) -> int:
        self._left -= 1
        return 10 * SAFETY_MS + 60_000 if self._left >= 0 else SAFETY_MS - 1


@pytest.fixture
def ingest_env(
    cloud: LocalCloud, settings: Settings, embedder: object, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Container]:
    """The process-wide container IngestFunction's handler builds, on this test's database and the local cloud."""
    from threadline.bootstrap import get_container
    from threadline.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("EMBEDDING_TOKENIZER_PATH", str(settings.embedding_tokenizer_path))
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.deployment.endpoint)
    monkeypatch.setenv("INGEST_QUEUE_URL", cloud.deployment.queues["IngestQueue"].url)
    for cache in (get_settings, get_container):
        cache.cache_clear()
    built = get_container()
    built.__dict__["embedder"] = embedder
    yield built
    built.close()
    for cache in (get_settings, get_container):
        cache.cache_clear()


def _receive(cloud: LocalCloud) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", endpoint_url=cloud.deployment.endpoint, region_name=cloud.deployment.region)
    url = cloud.deployment.queues["IngestQueue"].url
    messages: list[dict[str, Any]] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    )
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def _event(bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid4()),
                "receiptHandle": "handle",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:IngestQueue",
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


def _progress(database_url: str, tenant: Tenant) -> tuple[str, int | None, int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT status, chunks_total, chunks_done, chunk_count FROM documents WHERE project_id = %s",
            (tenant.project_id,),
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


def _chunks(database_url: str, tenant: Tenant) -> list[tuple[int, int]]:
    with psycopg.connect(database_url) as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                "SELECT ordinal, id FROM chunks WHERE project_id = %s ORDER BY ordinal", (tenant.project_id,)
            )
        ]


def test_a_document_longer_than_an_invocation_is_continued_until_ready(
    cloud: LocalCloud, ingest_env: Container
) -> None:
    from threadline.handlers.ingest import lambda_handler

    # Given a manual of SECTIONS chunks put in the DocumentsBucket, and invocations with time for two batches
    tenant = make_tenant(ingest_env, "manuals")
    bucket = cloud.deployment.buckets["DocumentsBucket"]
    s3 = boto3.client("s3", endpoint_url=cloud.deployment.endpoint, region_name=cloud.deployment.region)
    s3.put_object(Bucket=bucket, Key=f"{tenant.project_id}/manual.md", Body=_manual())
    # When IngestFunction handles what the IngestQueue holds until it is empty (the notification, then its own
    # continuations), each delivery an invocation that runs out of time after two batches
    progress: list[tuple[str, int | None, int, int]] = []
    delivered: list[str] = []
    while messages := _receive(cloud):
        bodies = [m["Body"] for m in messages]
        delivered += bodies
        response = lambda_handler(_event(bodies), _Context(batches=2))  # type: ignore[arg-type]
        assert response == {"batchItemFailures": []}
        progress.append(_progress(ingest_env.settings.database_url, tenant))
    # Then it took one invocation per two batches, progress only grew, and the document ended ready and complete
    invocations = -(-SECTIONS // (2 * EMBED_BATCH))
    assert len(progress) == invocations, progress
    assert [p[2] for p in progress] == sorted(p[2] for p in progress)
    assert progress[0][:3] == ("pending", SECTIONS, 2 * EMBED_BATCH)
    assert progress[-1] == ("ready", SECTIONS, SECTIONS, SECTIONS)
    chunks = _chunks(ingest_env.settings.database_url, tenant)
    assert [ordinal for ordinal, _ in chunks] == list(range(SECTIONS))

    # When every message is delivered again (the notification and each continuation)
    response = lambda_handler(_event(delivered), _Context(batches=100))  # type: ignore[arg-type]
    # Then nothing changes: no chunk added or replaced, no new continuation, progress as it was
    assert response == {"batchItemFailures": []}
    assert _chunks(ingest_env.settings.database_url, tenant) == chunks
    assert _progress(ingest_env.settings.database_url, tenant) == progress[-1]
    assert _receive(cloud) == []


def test_a_continuation_for_a_stale_upload_changes_nothing(cloud: LocalCloud, ingest_env: Container) -> None:
    from threadline.handlers.ingest import lambda_handler
    from threadline.messages import ContinueIngest

    # Given a document still pending after one short invocation
    tenant = make_tenant(ingest_env, "stale")
    bucket = cloud.deployment.buckets["DocumentsBucket"]
    s3 = boto3.client("s3", endpoint_url=cloud.deployment.endpoint, region_name=cloud.deployment.region)
    s3.put_object(Bucket=bucket, Key=f"{tenant.project_id}/manual.md", Body=_manual())
    lambda_handler(_event([m["Body"] for m in _receive(cloud)]), _Context(batches=1))  # type: ignore[arg-type]
    [continuation] = [ContinueIngest.model_validate_json(m["Body"]) for m in _receive(cloud)]
    before = _progress(ingest_env.settings.database_url, tenant)
    # When a continuation arrives naming other content (an older upload) and one naming a deleted document
    stale = continuation.model_copy(update={"content_hash": "0" * 64})
    gone = continuation.model_copy(update={"document_id": uuid4()})
    response = lambda_handler(
        _event([stale.model_dump_json(), gone.model_dump_json()]),
        _Context(batches=100),  # type: ignore[arg-type]
    )
    # Then neither touches the document nor sends anything on
    assert response == {"batchItemFailures": []}
    assert _progress(ingest_env.settings.database_url, tenant) == before == ("pending", SECTIONS, EMBED_BATCH, 0)
    assert _receive(cloud) == []

    # When the document is deleted mid-ingestion and its continuation then arrives
    ingest_env.documents.delete(tenant.project_id, continuation.document_id)
    response = lambda_handler(_event([continuation.model_dump_json()]), _Context(batches=100))  # type: ignore[arg-type]
    # Then nothing is stored for it and nothing goes on
    assert response == {"batchItemFailures": []}
    assert _chunks(ingest_env.settings.database_url, tenant) == []
    assert _receive(cloud) == []


def test_api_upload_answers_202_pending_and_the_ingest_function_makes_it_ready(
    cloud: LocalCloud, settings: Settings, embedder: object
) -> None:
    from threadline.api.app import create_app

    # Given the app configured as the template configures ApiFunction (the documents bucket, no inline ingest)
    deployed = Container(cloud.settings(settings).model_copy(update={"ingest_inline": False}))
    deployed.__dict__["embedder"] = embedder
    tenant = make_tenant(deployed, "async")
    url = f"/query/v1/projects/{tenant.project_id}/documents/"
    with TestClient(create_app(deployed)) as client:
        # When a file is uploaded
        started = time.monotonic()
        response = client.post(url, files={"file": ("manual.md", _manual(), "text/markdown")}, headers=tenant.headers)
        answered_s = time.monotonic() - started
        # Then it is answered 202 with the document pending and no progress yet, its file stored in the bucket
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["status"], body["chunks_total"], body["chunks_done"]) == ("pending", None, 0)
        assert body["title"] == "manual.md" and body["source"].startswith("s3://")
        assert answered_s < 5, answered_s
        # When the IngestFunction (through the local Lambda runtime) has run
        cloud.drain("IngestQueue")
        # Then GET shows it ready with every chunk done
        done = client.get(f"{url}{body['id']}/", headers=tenant.headers).json()
        assert (done["status"], done["chunks_total"], done["chunks_done"], done["chunk_count"]) == (
            "ready",
            SECTIONS,
            SECTIONS,
            SECTIONS,
        )
        # And the same content again is the same document (200), not a second object or ingestion
        again = client.post(url, files={"file": ("copy.md", _manual(), "text/markdown")}, headers=tenant.headers)
        assert again.status_code == 200 and again.json()["id"] == body["id"]
    deployed.close()


def test_an_unreadable_upload_is_accepted_then_shown_failed_with_its_reason(
    cloud: LocalCloud, settings: Settings, embedder: object
) -> None:
    from threadline.api.app import create_app

    # Given the app as ApiFunction runs it
    deployed = Container(cloud.settings(settings).model_copy(update={"ingest_inline": False}))
    deployed.__dict__["embedder"] = embedder
    tenant = make_tenant(deployed, "corrupt")
    url = f"/query/v1/projects/{tenant.project_id}/documents/"
    with TestClient(create_app(deployed)) as client:
        # When a corrupt PDF is uploaded (its format is known, its content is only read by the ingester)
        files = {"file": ("broken.pdf", b"%PDF-1.4 this is not a pdf", "application/pdf")}
        accepted = client.post(url, files=files, headers=tenant.headers)
        cloud.drain("IngestQueue")
        shown = client.get(f"{url}{accepted.json()['id']}/", headers=tenant.headers).json()
        # And an unsupported one is uploaded
        refused = client.post(
            url, files={"file": ("a.xlsx", b"PK\x03\x04", "application/vnd.ms-excel")}, headers=tenant.headers
        )
    deployed.close()
    # Then the first is accepted pending and ends failed with the parser's reason; the second is a 415 at once
    assert accepted.status_code == 202 and accepted.json()["status"] == "pending"
    assert shown["status"] == "failed" and "PDF" in shown["error"] and shown["chunks_done"] == 0
    assert refused.status_code == 415


def test_an_upload_deleted_before_its_ingestion_is_not_brought_back(
    cloud: LocalCloud, settings: Settings, embedder: object
) -> None:
    from threadline.api.app import create_app

    # Given a document uploaded through the API and deleted before the IngestFunction got to it
    deployed = Container(cloud.settings(settings).model_copy(update={"ingest_inline": False}))
    deployed.__dict__["embedder"] = embedder
    tenant = make_tenant(deployed, "regret")
    url = f"/query/v1/projects/{tenant.project_id}/documents/"
    with TestClient(create_app(deployed)) as client:
        accepted = client.post(url, json={"title": "Draft", "text": "Refunds take a week."}, headers=tenant.headers)
        deleted = client.delete(f"{url}{accepted.json()['id']}/", headers=tenant.headers)
        # When the IngestFunction handles the stored file's notification
        report = cloud.drain("IngestQueue")
        listed = client.get(url, headers=tenant.headers).json()["results"]
    deployed.close()
    # Then the document stays deleted: the file does not create a new one, and the record succeeded
    assert (accepted.status_code, deleted.status_code) == (202, 204)
    assert listed == []
    assert cloud.queue_messages("IngestDeadLetterQueue") == [], report


def test_without_a_bucket_or_inline_ingestion_an_upload_is_503(settings: Settings, embedder: object) -> None:
    from threadline.api.app import create_app

    # Given an app with neither DOCUMENTS_BUCKET nor INGEST_INLINE
    container = Container(settings.model_copy(update={"ingest_inline": False, "documents_bucket": ""}))
    container.__dict__["embedder"] = embedder
    tenant = make_tenant(container, "nowhere")
    with TestClient(create_app(container)) as bare:
        # When a document is uploaded
        response = bare.post(
            f"/query/v1/projects/{tenant.project_id}/documents/",
            json={"title": "Guide", "text": "Refunds take a week."},
            headers=tenant.headers,
        )
    # Then it is refused with a clear 503 and nothing is stored
    assert response.status_code == 503 and "DOCUMENTS_BUCKET" in response.json()["error"]["message"]
    with psycopg.connect(container.settings.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM documents").fetchone() == (0,)
    container.close()
