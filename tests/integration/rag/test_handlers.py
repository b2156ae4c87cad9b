"""ApiFunction (Mangum) and IngestFunction driven by the sample events under events/, and the S3 -> SQS ->
IngestFunction path through the local cloud; the OpenAI and MCP routes through Mangum."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from tests.integration.rag.conftest import Tenant, make_tenant
from threadline.bootstrap import Container
from threadline.local.cloud import LocalCloud
from threadline.settings import Settings

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[3] / "events"
SAMPLE_PROJECT = "8d0a6f3e-2f4b-4a57-9a55-0c3f3c1a9b10"
SAMPLE_THREAD = "0b6e1d7a-3c2f-4e9b-8a1d-5f4c3b2a1e01"
SAMPLE_KEY = "tl_00000000_example-key-replace-me"
SAMPLE_BUCKET = "threadline-documents-example"
GUIDE = b"# Getting started\n\n## Password\n\nTo reset your password open Settings and press Reset.\n"


class _Context:
    """The attributes Powertools and Mangum read from a Lambda context."""

    function_name = "Function"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:Function"
    aws_request_id = "test-request"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _load(relative: str, **replacements: str) -> dict[str, Any]:
    text = (EVENTS / relative).read_text()
    for old, new in replacements.items():
        text = text.replace(old, new)
    event: dict[str, Any] = json.loads(text)
    return event


@pytest.fixture
def lambda_env(
    settings: Settings, embedder: object, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Container]:
    """The process-wide container a handler builds, from this test's environment."""
    from threadline.bootstrap import get_container
    from threadline.handlers import api
    from threadline.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("EMBEDDING_TOKENIZER_PATH", str(settings.embedding_tokenizer_path))
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "CLASSIFY_QUEUE_URL", "METRICS_QUEUE_URL"):
        monkeypatch.setenv(name, "")
    caches = (get_settings, get_container, api._asgi)
    for cache in caches:
        cache.cache_clear()
    built = get_container()
    built.__dict__["embedder"] = embedder
    built.__dict__["query_embedder"] = embedder
    yield built
    built.close()
    for cache in caches:
        cache.cache_clear()


def test_mangum_handler_answers_chat_and_thread_events(lambda_env: Container) -> None:
    from threadline.domain import documents
    from threadline.domain.documents import Upload
    from threadline.handlers.api import lambda_handler

    # Given a project with a document, and the sample API Gateway events addressed to it
    tenant = make_tenant(lambda_env, "api")
    other = make_tenant(lambda_env, "other")
    documents.ingest(lambda_env.documents, lambda_env.embedder, tenant.project_id, Upload(GUIDE, "guide.md"))
    chat = _load("apigw/post_chat.json", **{SAMPLE_PROJECT: str(tenant.project_id), SAMPLE_KEY: tenant.key})
    # When the chat event is handled
    response = lambda_handler(chat, _Context())  # type: ignore[arg-type]
    # Then the JSON answer is grounded in the document
    assert response["statusCode"] == 200, response["body"]
    answer = json.loads(response["body"])
    assert "open Settings and press Reset" in answer["answer"] and answer["sources"][0]["title"] == "guide.md"
    # And the thread event returns it, for its own project only
    thread = _load("apigw/get_thread.json", **{SAMPLE_THREAD: answer["thread_id"], SAMPLE_KEY: tenant.key})
    foreign = _load("apigw/get_thread.json", **{SAMPLE_THREAD: answer["thread_id"], SAMPLE_KEY: other.key})
    got = lambda_handler(thread, _Context())  # type: ignore[arg-type]
    assert got["statusCode"] == 200 and json.loads(got["body"])["messages"][0]["answer"] == answer["answer"]
    assert lambda_handler(foreign, _Context())["statusCode"] == 404  # type: ignore[arg-type]


def test_chat_completions_and_mcp_answer_through_mangum(lambda_env: Container) -> None:
    from threadline.domain import documents
    from threadline.domain.documents import Upload
    from threadline.handlers.api import lambda_handler

    # Given a project with a document, and the sample events carrying its key
    tenant = make_tenant(lambda_env, "reach")
    documents.ingest(lambda_env.documents, lambda_env.embedder, tenant.project_id, Upload(GUIDE, "guide.md"))
    completion_event = _load("apigw/post_chat_completions.json", **{SAMPLE_KEY: tenant.key})
    mcp_event = _load("apigw/post_mcp.json", **{SAMPLE_KEY: tenant.key})
    # When API Gateway delivers them to ApiFunction
    completion = lambda_handler(completion_event, _Context())  # type: ignore[arg-type]
    searched = lambda_handler(mcp_event, _Context())  # type: ignore[arg-type]
    # Then the completion is grounded in the document, in OpenAI's shape
    assert completion["statusCode"] == 200, completion["body"]
    body = json.loads(completion["body"])
    assert body["object"] == "chat.completion" and "press Reset" in body["choices"][0]["message"]["content"]
    assert body["sources"][0]["title"] == "guide.md"
    # And the stateless MCP server answers the tool call without a session
    assert searched["statusCode"] == 200, searched["body"]
    result = json.loads(searched["body"])["result"]
    assert result["structuredContent"]["results"][0]["title"] == "guide.md"


def _s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def _documents(database_url: str, project: Tenant) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT title, status, source, chunk_count, error FROM documents WHERE project_id = %s ORDER BY title",
            (project.project_id,),
        ).fetchall()


def test_ingest_handler_ingests_the_sample_event_once_and_reports_bad_records(
    lambda_env: Container, aws_endpoint: str
) -> None:
    from threadline.handlers.ingest import lambda_handler

    # Given the object the sample notification names, in a project's folder
    tenant = make_tenant(lambda_env, "ingest")
    s3 = _s3(aws_endpoint)
    s3.create_bucket(Bucket=SAMPLE_BUCKET)
    s3.put_object(Bucket=SAMPLE_BUCKET, Key=f"{tenant.project_id}/guides/Getting started.md", Body=GUIDE)
    event = _load("sqs/document_uploaded.json", **{SAMPLE_PROJECT: str(tenant.project_id)})
    # When it is handled twice (SQS delivers at least once)
    first = lambda_handler(event, _Context())  # type: ignore[arg-type]
    again = lambda_handler(event, _Context())  # type: ignore[arg-type]
    # Then the document is ingested once; the S3 test event is ignored
    assert first == again == {"batchItemFailures": []}
    [(title, status, source, chunks, _)] = _documents(lambda_env.settings.database_url, tenant)
    assert (title, status, chunks) == ("Getting started.md", "ready", 1)
    assert source == f"s3://{SAMPLE_BUCKET}/{tenant.project_id}/guides/Getting started.md"
    # When a batch holds a key outside any project and an unsupported file
    s3.put_object(Bucket=SAMPLE_BUCKET, Key=f"{tenant.project_id}/sheet.xlsx", Body=b"PK\x03\x04")
    bad = copy.deepcopy(event)
    body = json.loads(bad["Records"][0]["body"])
    body["Records"][0]["s3"]["object"]["key"] = "no-project/file.md"
    bad["Records"][0]["body"] = json.dumps(body)
    body["Records"][0]["s3"]["object"]["key"] = f"{tenant.project_id}/sheet.xlsx"
    bad["Records"][1]["body"] = json.dumps(body)
    response = lambda_handler(bad, _Context())  # type: ignore[arg-type]
    # Then only the unaddressable record fails (to be retried, then dead-lettered); the other is recorded as failed
    assert response == {"batchItemFailures": [{"itemIdentifier": bad["Records"][0]["messageId"]}]}
    failed = [d for d in _documents(lambda_env.settings.database_url, tenant) if d[0] == "sheet.xlsx"]
    assert failed and failed[0][1] == "failed" and "unsupported" in failed[0][4]


def test_object_put_in_the_documents_bucket_is_ingested_through_the_queue(
    cloud: LocalCloud, container: Container
) -> None:
    # Given the deployed template: bucket -> notification -> IngestQueue -> IngestFunction
    tenant = make_tenant(container, "cloud")
    bucket = cloud.deployment.buckets["DocumentsBucket"]
    # When a Markdown file is put under the project's prefix and the pollers run
    _s3(cloud.deployment.endpoint).put_object(Bucket=bucket, Key=f"{tenant.project_id}/faq.md", Body=GUIDE)
    cloud.drain("IngestQueue")
    # Then the document is ready with its chunks
    [(title, status, _, chunks, _)] = _documents(container.settings.database_url, tenant)
    assert (title, status, chunks) == ("faq.md", "ready", 1)


def test_chat_on_the_local_cloud_queues_classification_and_metrics(
    cloud: LocalCloud, settings: Settings, embedder: object
) -> None:
    from fastapi.testclient import TestClient

    from threadline.api.app import create_app

    # Given the app configured as the template configures ApiFunction (queue URLs from the deployment)
    deployed = Container(cloud.settings(settings))
    deployed.__dict__["embedder"] = embedder
    deployed.__dict__["query_embedder"] = embedder
    tenant = make_tenant(deployed, "queues")
    # When a new thread gets its first question
    with TestClient(create_app(deployed)) as client:
        answer = client.post(
            f"/query/v1/projects/{tenant.project_id}/chat/", json={"query": "Hello?"}, headers=tenant.headers
        ).json()
    deployed.chat_events.flush()
    deployed.close()
    # Then ClassifyQueue and MetricsQueue each hold the contract's message
    classify = [json.loads(m["Body"]) for m in cloud.queue_messages("ClassifyQueue")]
    metrics = [json.loads(m["Body"]) for m in cloud.queue_messages("MetricsQueue")]
    assert classify == [
        {"kind": "classify_thread", "project_id": str(tenant.project_id), "thread_id": answer["thread_id"]}
    ]
    assert [m["message_id"] for m in metrics] == [answer["question_answer_id"]]
