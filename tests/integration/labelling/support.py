"""Helpers shared by the labelling tests."""

from __future__ import annotations

import json
from uuid import UUID

import boto3
import psycopg
from fastapi.testclient import TestClient

from tests.fixtures.app import ProjectKey


def category_ids(client: TestClient, project: ProjectKey) -> dict[str, UUID]:
    """The project's categories by name."""
    response = client.get(f"/query/v1/projects/{project.id}/categories/", headers=project.headers)
    assert response.status_code == 200
    return {c["name"]: UUID(c["id"]) for c in response.json()["results"]}


def thread_label(database_url: str, thread_id: UUID) -> tuple[UUID | None, str | None]:
    """(category_id, label_source) of a thread, read straight from the table."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT category_id, label_source FROM threads WHERE id = %s", (thread_id,)).fetchone()
    assert row is not None
    return row[0], row[1]


def make_queue(endpoint: str, name: str, max_receive: int = 2, visibility: int = 1) -> tuple[str, str]:
    """A queue with a dead-letter queue in moto: (queue URL, DLQ URL)."""
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)})
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": str(visibility)})[
        "QueueUrl"
    ]
    return url, dlq_url


def drain(endpoint: str, queue_url: str, wait: int = 0) -> list[dict[str, object]]:
    """Receive and delete every visible message; returns their JSON bodies."""
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    bodies: list[dict[str, object]] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        messages = got.get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
