"""The whole labelling path on the local cloud: chat -> ClassifyQueue -> pollers -> ClassifierFunction -> listing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.app import ProjectKey
from threadline.adapters.aws.chat_events import SqsChatEvents
from threadline.adapters.aws.clients import sqs_for
from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.local.cloud import LocalCloud
from threadline.messages import ClassifyThread
from threadline.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def deployed(cloud: LocalCloud, settings: Settings, embedder: object) -> Iterator[Container]:
    """The app's container configured as the template configures it (queue URLs from the deployment)."""
    built = Container(cloud.settings(settings))
    built.__dict__["embedder"] = embedder
    built.__dict__["query_embedder"] = embedder
    yield built
    built.close()


def _project(container: Container) -> ProjectKey:
    team = tenancy.create_team(container.tenancy, "cloud team")
    project = tenancy.create_project(container.tenancy, team.id, "cloud")
    return ProjectKey(project.id, tenancy.issue_api_key(container.tenancy, project.id).key)


def _listed(client: TestClient, project: ProjectKey) -> list[dict[str, Any]]:
    response = client.get(f"/query/v1/projects/{project.id}/threads/", headers=project.headers)
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def test_the_stream_closes_only_once_its_messages_are_queued(cloud: LocalCloud, deployed: Container) -> None:
    # Given a producer whose SQS client answers slowly (a cold connection, a busy endpoint)
    settings = deployed.settings

    def slow_client() -> Any:
        time.sleep(0.3)
        return sqs_for(settings.aws_endpoint_url, settings.aws_region)

    deployed.__dict__["chat_events"] = SqsChatEvents(
        settings.classify_queue_url, settings.metrics_queue_url, slow_client
    )
    project = _project(deployed)
    with TestClient(_app(deployed)) as client:
        # When a new thread's answer is streamed to its end
        with client.stream(
            "POST",
            f"/query/v1/projects/{project.id}/chat/stream/",
            json={"query": "How do I export my data?"},
            headers=project.headers,
        ) as response:
            body = "".join(response.iter_text())
        # Then the client had `done`, and by the time the stream closed both messages were queued
        # (in Lambda nothing may run after the response ends)
        assert "event: done" in body
        assert len(cloud.queue_messages("ClassifyQueue")) == 1
        assert len(cloud.queue_messages("MetricsQueue")) == 1


def test_chat_answers_without_waiting_for_sqs_and_the_thread_is_labelled_after(
    cloud: LocalCloud, deployed: Container
) -> None:
    # Given the chat's producer held up: its SQS client is only handed out once the test allows it
    released = threading.Event()
    settings = deployed.settings

    def held_client() -> Any:
        released.wait(timeout=30)
        return sqs_for(settings.aws_endpoint_url, settings.aws_region)

    events = SqsChatEvents(settings.classify_queue_url, settings.metrics_queue_url, held_client)
    deployed.__dict__["chat_events"] = events
    project = _project(deployed)
    with TestClient(_app(deployed)) as client:
        # When a new thread gets its first question
        answer = client.post(
            f"/query/v1/projects/{project.id}/chat/",
            json={"query": "The upload fails with a timeout error every time"},
            headers=project.headers,
        )
        # Then the answer comes while the message is still unsent, and the thread is not labelled yet
        assert answer.status_code == 200 and answer.json()["answer"]
        assert cloud.queue_messages("ClassifyQueue") == []
        assert _listed(client, project)[0]["category"] is None
        # When SQS is reachable again and the pollers run ClassifierFunction
        released.set()
        events.flush(timeout_s=30)
        report = cloud.drain("ClassifyQueue")
        # Then the listing shows the thread labelled automatically
        [thread] = _listed(client, project)
        assert report.failed("ClassifyQueue") == [] and len(report.succeeded("ClassifyQueue")) == 1
        assert thread["id"] == answer.json()["thread_id"]
        assert thread["category"]["name"] == "Troubleshooting" and thread["label_source"] == "auto"


def test_a_correction_sticks_through_reclassification(cloud: LocalCloud, deployed: Container) -> None:
    # Given a thread labelled by the classifier through the queue
    project = _project(deployed)
    with TestClient(_app(deployed)) as client:
        answer = client.post(
            f"/query/v1/projects/{project.id}/chat/",
            json={"query": "How do I export my data?"},
            headers=project.headers,
        ).json()
        deployed.chat_events.flush()
        cloud.drain("ClassifyQueue")
        thread_id = answer["thread_id"]
        troubleshooting = next(
            c.id for c in deployed.categories.list_categories(project.id) if c.name == "Troubleshooting"
        )
        # When the user corrects it, and the classify message is delivered again
        client.patch(
            f"/query/v1/threads/{thread_id}/", json={"category_id": str(troubleshooting)}, headers=project.headers
        )
        sqs = sqs_for(deployed.settings.aws_endpoint_url, deployed.settings.aws_region)
        sqs.send_message(
            QueueUrl=deployed.settings.classify_queue_url,
            MessageBody=ClassifyThread(project_id=project.id, thread_id=thread_id).model_dump_json(),
        )
        report = cloud.drain("ClassifyQueue")
        # Then the redelivery succeeds and the user's label stays
        [thread] = _listed(client, project)
        assert len(report.succeeded("ClassifyQueue")) == 1
        assert thread["category"]["name"] == "Troubleshooting" and thread["label_source"] == "user"


def test_poison_message_ends_in_the_dead_letter_queue_while_the_batch_succeeds(
    cloud: LocalCloud, deployed: Container
) -> None:
    # Given ClassifyQueue holding a malformed message between two good ones
    project = _project(deployed)
    sqs = sqs_for(deployed.settings.aws_endpoint_url, deployed.settings.aws_region)
    url = deployed.settings.classify_queue_url
    with TestClient(_app(deployed)) as client:
        for question in ("Can I pay by invoice?", "The app crashes on start"):
            client.post(f"/query/v1/projects/{project.id}/chat/", json={"query": question}, headers=project.headers)
        deployed.chat_events.flush()
        poison = sqs.send_message(QueueUrl=url, MessageBody='{"kind": "classify_thread", "thread_id": 1}')
        # When the pollers drain the queue (failed messages are retried until the redrive moves them)
        report = cloud.drain("ClassifyQueue")
        listed = _listed(client, project)
    # Then the good threads are labelled, and the DLQ holds the poison message alone
    assert all(t["label_source"] == "auto" for t in listed) and len(listed) == 2
    assert set(report.failed("ClassifyQueue")) == {poison["MessageId"]}
    dead = cloud.queue_messages("ClassifyDeadLetterQueue")
    assert [json.loads(m["Body"]) for m in dead] == [{"kind": "classify_thread", "thread_id": 1}]


def _app(container: Container) -> Any:
    from threadline.api.app import create_app

    return create_app(container)
