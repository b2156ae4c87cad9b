"""The sweeper on the real database and moto: lost classify messages heal, full dead-letter queues are told."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import boto3
import psycopg
import pytest

from tests.integration.labelling.support import drain, make_queue
from threadline import bootstrap
from threadline import settings as settings_module
from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.domain.sweeper import sweep
from threadline.local.cloud import LocalCloud
from threadline.messages import ClassifyThread
from threadline.settings import Settings

EVENTS = Path(__file__).resolve().parents[3] / "events"


class Ops:
    """The test's queues and alert topic in moto."""

    def __init__(self, endpoint: str) -> None:
        suffix = uuid4().hex[:8]
        self.endpoint = endpoint
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        self.classify_url, self.classify_dlq_url = make_queue(endpoint, f"classify-{suffix}")
        _, self.metrics_dlq_url = make_queue(endpoint, f"metrics-{suffix}")
        # Operators subscribe to the topic; here an SQS queue does, so the test reads what they would get.
        sns = boto3.client("sns", endpoint_url=endpoint, region_name="us-east-1")
        self.topic_arn = sns.create_topic(Name=f"alerts-{suffix}")["TopicArn"]
        self.inbox_url = self.sqs.create_queue(QueueName=f"inbox-{suffix}")["QueueUrl"]
        inbox_arn = self.sqs.get_queue_attributes(QueueUrl=self.inbox_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=inbox_arn)

    def alerts(self) -> list[dict[str, Any]]:
        return [json.loads(json.dumps(body)) for body in drain(self.endpoint, self.inbox_url)]


@pytest.fixture
def ops(aws_endpoint: str) -> Ops:
    return Ops(aws_endpoint)


@pytest.fixture
def ops_settings(settings: Settings, ops: Ops) -> Settings:
    return settings.model_copy(
        update={
            "aws_endpoint_url": ops.endpoint,
            "classify_queue_url": ops.classify_url,
            "dead_letter_queue_urls": f"{ops.classify_dlq_url},{ops.metrics_dlq_url}",
            "operator_alerts_topic_arn": ops.topic_arn,
        }
    )


@pytest.fixture
def ops_container(ops_settings: Settings) -> Iterator[Container]:
    built = Container(ops_settings)
    yield built
    built.close()


def _thread(url: str, project_id: UUID, age: timedelta, question: str | None = "How?") -> UUID:
    thread_id = uuid4()
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO threads (id, project_id, first_question, created_at, updated_at) VALUES (%s, %s, %s, %s, %s)",
            (thread_id, project_id, question, datetime.now(UTC) - age, datetime.now(UTC) - age),
        )
    return thread_id


def _project(container: Container, with_categories: bool = True) -> UUID:
    team = tenancy.create_team(container.tenancy, f"Team {uuid4().hex[:6]}")
    project = tenancy.create_project(container.tenancy, team.id, "Bot")
    if not with_categories:
        with psycopg.connect(container.settings.database_url) as conn:
            conn.execute("DELETE FROM categories WHERE project_id = %s", (project.id,))
    return project.id


def _queued(ops: Ops) -> set[UUID]:
    return {ClassifyThread.model_validate(body).thread_id for body in drain(ops.endpoint, ops.classify_url)}


@pytest.mark.integration
def test_threads_left_unlabelled_are_asked_for_again_once_per_retry_period(ops_container: Container, ops: Ops) -> None:
    # Given threads whose classify messages were lost, a fresh one, a labelled one, a thread with no question,
    # and an old unlabelled thread in a project that has no categories left to label it with
    url = ops_container.settings.database_url
    project, bare = _project(ops_container), _project(ops_container, with_categories=False)
    lost = [_thread(url, project, timedelta(hours=2)), _thread(url, project, timedelta(minutes=11))]
    fresh = _thread(url, project, timedelta(minutes=2))
    no_question = _thread(url, project, timedelta(hours=2), question=None)
    labelled = _thread(url, project, timedelta(hours=2))
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE threads SET category_id = (SELECT id FROM categories WHERE project_id = %s LIMIT 1),"
            " label_source = 'user', labelled_at = now() WHERE id = %s",
            (project, labelled),
        )
    unlabellable = _thread(url, bare, timedelta(hours=2))
    # When the sweep runs, and runs again right after
    first = sweep(ops_container.sweeper, datetime.now(UTC))
    queued_first = _queued(ops)
    second = sweep(ops_container.sweeper, datetime.now(UTC))
    queued_second = _queued(ops)
    # And once more after the retry period (an hour later)
    third = sweep(ops_container.sweeper, datetime.now(UTC) + timedelta(minutes=61))
    # Then only the lost threads were asked for, once within the retry period, and again after it (with the
    # fresh thread, which an hour later is past its grace period too)
    assert queued_first == set(lost) and first.requeued == first.asked == 2
    assert not {fresh, no_question, labelled, unlabellable} & queued_first
    assert queued_second == set() and second.asked == 0
    assert third.asked == 3 and _queued(ops) == {*lost, fresh}


@pytest.mark.integration
def test_a_filling_dead_letter_queue_is_told_once_then_when_it_grows(ops_container: Container, ops: Ops) -> None:
    # Given two messages that exhausted their receives and sit in the classify dead-letter queue
    for _ in range(2):
        ops.sqs.send_message(QueueUrl=ops.classify_dlq_url, MessageBody="{}")
    now = datetime.now(UTC)
    # When the sweep runs three times: the queue unchanged, then grown by one
    reports = [sweep(ops_container.sweeper, now), sweep(ops_container.sweeper, now + timedelta(minutes=15))]
    ops.sqs.send_message(QueueUrl=ops.classify_dlq_url, MessageBody="{}")
    reports.append(sweep(ops_container.sweeper, now + timedelta(minutes=30)))
    # Then the operators heard of it when it filled and when it grew, not in between
    assert [r.notified for r in reports] == [True, False, True]
    name = ops.classify_dlq_url.rsplit("/", 1)[-1]
    assert all(r.dead_letters == {name: d} for r, d in zip(reports, (2, 2, 3), strict=True))
    messages = [json.loads(json.dumps(a)) for a in ops.alerts()]
    assert len(messages) == 2
    assert [m["Subject"] for m in messages] == [
        "Threadline: 2 message(s) in dead-letter queues",
        "Threadline: 3 message(s) in dead-letter queues",
    ]
    assert f"{name}: 3 message(s)" in messages[1]["Message"] and "StartMessageMoveTask" in messages[1]["Message"]


@pytest.mark.integration
def test_the_handler_runs_a_sweep_from_the_sample_event(
    ops_settings: Settings, ops: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the environment a deployed SweeperFunction gets, and a thread whose classify message was lost
    for name in ("database_url", "aws_endpoint_url", "classify_queue_url", "dead_letter_queue_urls"):
        monkeypatch.setenv(name.upper(), str(getattr(ops_settings, name)))
    monkeypatch.setenv("OPERATOR_ALERTS_TOPIC_ARN", ops_settings.operator_alerts_topic_arn)
    settings_module.get_settings.cache_clear()
    bootstrap.get_container.cache_clear()
    container = bootstrap.get_container()
    try:
        lost = _thread(ops_settings.database_url, _project(container), timedelta(hours=1))
        from threadline.handlers.sweeper import lambda_handler

        event = json.loads((EVENTS / "schedule" / "sweep_tick.json").read_text())
        # When the schedule's event is handled
        result = lambda_handler(event, _Context())
    finally:
        container.close()
        bootstrap.get_container.cache_clear()
        settings_module.get_settings.cache_clear()
    # Then the lost thread is queued again, and the result says so
    assert result == {"requeued": 1, "asked": 1, "dead_letters": {}, "notified": False}
    assert _queued(ops) == {lost}


class _Context:
    function_name = "SweeperFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:SweeperFunction"
    aws_request_id = "sweep-test"


@pytest.mark.integration
def test_after_a_crash_the_sweep_schedule_heals_the_lost_labels(cloud: LocalCloud, container: Container) -> None:
    # Given the deployed template, and two threads whose classify messages died with a killed stack
    project = _project(container)
    lost = [_thread(container.settings.database_url, project, timedelta(minutes=30)) for _ in range(2)]
    # When SweepSchedule fires (SweeperFunction in its own worker, with its own environment), then the
    # ClassifyQueue poller runs ClassifierFunction
    sweep_result = cloud.fire("SweepSchedule").wait().last
    drained = cloud.drain("ClassifyQueue")
    # Then both threads were asked for again and are labelled now
    assert not sweep_result.errored and sweep_result.payload["requeued"] == 2
    assert len(drained.succeeded("ClassifyQueue")) == 2
    with psycopg.connect(container.settings.database_url) as conn:
        labels = conn.execute("SELECT label_source FROM threads WHERE id = ANY(%s)", (lost,)).fetchall()
    assert labels == [("auto",), ("auto",)]
