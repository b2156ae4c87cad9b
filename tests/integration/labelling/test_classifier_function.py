"""ClassifierFunction through its real handler: SQS-shaped batches, idempotency, poison messages.

The DLQ path runs on the local cloud's pollers in test_local_cloud.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from tests.fixtures.app import ProjectKey
from tests.integration.labelling.conftest import SeedThreads
from tests.integration.labelling.support import thread_label
from threadline.bootstrap import Container
from threadline.handlers.classify import lambda_handler
from threadline.messages import ClassifyThread

Make = Callable[[str], ProjectKey]
EVENT = Path(__file__).resolve().parents[3] / "events" / "sqs" / "classify_thread.json"


class _Context:
    """The attributes Powertools reads from a Lambda context."""

    function_name = "ClassifierFunction"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ClassifierFunction"
    aws_request_id = "test-request"


def _event(bodies: list[str]) -> dict[str, Any]:
    """The sample event from events/sqs/, with one record per body."""
    sample = json.loads(EVENT.read_text())
    template = sample["Records"][0]
    records = []
    for index, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"] = f"m-{index}"
        record["body"] = body
        records.append(record)
    return {"Records": records}


def _labels(database_url: str, threads: list[UUID]) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        return [
            conn.execute(
                "SELECT category_id, label_source, label_confidence, label_model, labelled_at"
                " FROM threads WHERE id = %s",
                (t,),
            ).fetchone()
            or ()
            for t in threads
        ]


@pytest.mark.integration
def test_sample_event_is_a_valid_batch(lambda_env: Container) -> None:
    # Given the sample event (its project and threads do not exist here) / When handled
    response = lambda_handler(json.loads(EVENT.read_text()), _Context())  # type: ignore[arg-type]
    # Then both records succeed: a message about a thread that no longer exists has nothing left to do
    assert response == {"batchItemFailures": []}


@pytest.mark.integration
def test_batch_is_labelled_and_redelivery_changes_nothing(
    lambda_env: Container, make_project: Make, seed_threads: SeedThreads
) -> None:
    # Given a batch of new threads and one the user already labelled
    project = make_project("batch")
    questions = ["How do I reset my password?", "Error 502 when uploading", "Can I export to CSV?", "Login broken"]
    threads = seed_threads(project.id, questions)
    categories = {c.name: c.id for c in lambda_env.categories.list_categories(project.id)}
    lambda_env.labels.set_user_label(project.id, threads[3], categories["Discovery"])
    event = _event([ClassifyThread(project_id=project.id, thread_id=t).model_dump_json() for t in threads])
    # When the handler processes it, and the same batch is delivered again
    first = lambda_handler(event, _Context())  # type: ignore[arg-type]
    after_first = _labels(lambda_env.settings.database_url, threads)
    second = lambda_handler(event, _Context())  # type: ignore[arg-type]
    after_second = _labels(lambda_env.settings.database_url, threads)
    # Then every record succeeded, each new thread has a complete auto label, and the user label is untouched
    assert first == second == {"batchItemFailures": []}
    assert [row[0] for row in after_first[:3]] == [
        categories["Discovery"],
        categories["Troubleshooting"],
        categories["Discovery"],
    ]
    for category_id, source, confidence, model, labelled_at in after_first[:3]:
        assert category_id and source == "auto" and 0 < confidence <= 1 and model.startswith("embedding:")
        assert labelled_at is not None
    assert after_first[3][:2] == (categories["Discovery"], "user")
    # And the redelivery rewrote nothing (same labelled_at)
    assert after_second == after_first


@pytest.mark.integration
def test_editing_categories_makes_auto_labels_eligible_again(
    lambda_env: Container, make_project: Make, seed_threads: SeedThreads
) -> None:
    # Given an auto-labelled thread
    project = make_project("stale")
    (thread,) = seed_threads(project.id, ["Our invoices show the wrong VAT amount"])
    event = _event([ClassifyThread(project_id=project.id, thread_id=thread).model_dump_json()])
    lambda_handler(event, _Context())  # type: ignore[arg-type]
    before = _labels(lambda_env.settings.database_url, [thread])[0]
    # When the project adds a Billing category and the message is delivered again
    lambda_env.categories.create_category(project.id, "Billing", "Invoices, VAT, payments, refunds", ("Refund?",))
    lambda_handler(event, _Context())  # type: ignore[arg-type]
    after = _labels(lambda_env.settings.database_url, [thread])[0]
    # Then it is reclassified against the current categories
    billing = {c.name: c.id for c in lambda_env.categories.list_categories(project.id)}["Billing"]
    assert before[0] != billing and after[0] == billing and after[4] > before[4]


@pytest.mark.integration
def test_poison_message_fails_alone(lambda_env: Container, make_project: Make, seed_threads: SeedThreads) -> None:
    # Given a batch with two good messages around a malformed one
    project = make_project("poison")
    threads = seed_threads(project.id, ["How do I add a user?", "Crash on startup"])
    bodies = [
        ClassifyThread(project_id=project.id, thread_id=threads[0]).model_dump_json(),
        '{"kind": "classify_thread", "thread_id": 7',
        ClassifyThread(project_id=project.id, thread_id=threads[1]).model_dump_json(),
    ]
    # When handled
    response = lambda_handler(_event(bodies), _Context())  # type: ignore[arg-type]
    # Then only the poison record is reported failed; the others are labelled
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert all(thread_label(lambda_env.settings.database_url, t)[1] == "auto" for t in threads)
