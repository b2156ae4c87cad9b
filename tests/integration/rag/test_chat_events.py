"""The classify and metrics messages reach SQS (moto in server mode) and never hold up or break the chat."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from fastapi.testclient import TestClient

from tests.integration.rag.conftest import Tenant
from threadline.adapters.aws.chat_events import SqsChatEvents
from threadline.bootstrap import Container

pytestmark = pytest.mark.integration


def _sqs(endpoint: str, config: Config | None = None) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def _drain(sqs: Any, url: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            return found
        found += [json.loads(m["Body"]) for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_first_question_is_sent_for_classification_and_every_answer_for_metrics(
    client: TestClient, container: Container, tenant: Tenant, aws_endpoint: str
) -> None:
    # Given queues, and the chat's producer pointed at them
    sqs = _sqs(aws_endpoint)
    classify = sqs.create_queue(QueueName=f"classify-{tenant.project_id}")["QueueUrl"]
    metrics = sqs.create_queue(QueueName=f"metrics-{tenant.project_id}")["QueueUrl"]
    events = SqsChatEvents(classify, metrics, lambda: sqs)
    container.__dict__["chat_events"] = events
    # When a new thread gets its first question and then a follow-up
    first = client.post(
        f"/query/v1/projects/{tenant.project_id}/chat/", json={"query": "Hello?"}, headers=tenant.headers
    )
    thread_id = first.json()["thread_id"]
    second = client.post(f"/query/v1/threads/{thread_id}/chat/", json={"query": "Again?"}, headers=tenant.headers)
    events.flush()
    # Then classification is asked once, for the thread, and metrics once per answer, per the contract
    project = str(tenant.project_id)
    assert _drain(sqs, classify) == [{"kind": "classify_thread", "project_id": project, "thread_id": thread_id}]
    measured = _drain(sqs, metrics)
    assert sorted(m["message_id"] for m in measured) == sorted(
        [first.json()["question_answer_id"], second.json()["question_answer_id"]]
    )
    assert all(m["kind"] == "measure_interaction" and m["thread_id"] == thread_id for m in measured)


def test_a_thread_created_empty_is_classified_on_its_first_question(
    client: TestClient, container: Container, tenant: Tenant, aws_endpoint: str
) -> None:
    sqs = _sqs(aws_endpoint)
    classify = sqs.create_queue(QueueName=f"classify-empty-{tenant.project_id}")["QueueUrl"]
    events = SqsChatEvents(classify, "", lambda: sqs)
    container.__dict__["chat_events"] = events
    thread = client.post(f"/query/v1/projects/{tenant.project_id}/threads/", json={}, headers=tenant.headers).json()
    for question in ("First?", "Second?"):
        client.post(f"/query/v1/threads/{thread['id']}/chat/", json={"query": question}, headers=tenant.headers)
    events.flush()
    assert [m["thread_id"] for m in _drain(sqs, classify)] == [thread["id"]]


def test_an_unreachable_queue_never_fails_the_chat(client: TestClient, container: Container, tenant: Tenant) -> None:
    # Given a producer whose queue does not exist
    def broken() -> Any:
        # Nothing listens on the discard port; one attempt keeps the test short.
        return _sqs("http://127.0.0.1:9", Config(retries={"max_attempts": 1}, connect_timeout=1))

    events = SqsChatEvents("http://127.0.0.1:9/000000000000/nope", "http://127.0.0.1:9/000000000000/nope", broken)
    container.__dict__["chat_events"] = events
    # When a question is asked, Then the answer is still given
    response = client.post(
        f"/query/v1/projects/{tenant.project_id}/chat/", json={"query": "Still there?"}, headers=tenant.headers
    )
    events.flush(timeout_s=30)
    assert response.status_code == 200 and response.json()["answer"]
