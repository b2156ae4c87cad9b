"""The SQS pollers behave like Lambda's event source mapping."""

from __future__ import annotations

import hashlib

import pytest

from tests.integration.localcloud.conftest import recorded
from threadline.local.cloud import LocalCloud
from threadline.local.deploy import aws_client

pytestmark = pytest.mark.integration


def _send(cloud: LocalCloud, body: str, **attributes: str) -> str:
    sqs = aws_client("sqs", cloud.deployment.endpoint, cloud.deployment.region)
    message_attributes = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
    queue_url = cloud.deployment.queues["WorkQueue"].url
    message_id: str = sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=message_attributes)[
        "MessageId"
    ]
    return message_id


def test_poison_message_reaches_the_dlq_while_its_batch_mates_succeed(lcloud: LocalCloud) -> None:
    # Given a batch with one poison message among good ones (the queue's maxReceiveCount is 2)
    good = [_send(lcloud, f"good {i}") for i in range(3)]
    poison = _send(lcloud, "poison pill")

    # When the poller drains the queue
    report = lcloud.drain("WorkQueue")

    # Then the good messages succeeded once each, the poison failed twice and now sits in the DLQ alone
    assert sorted(report.succeeded("WorkQueue")) == sorted(good)
    assert report.failed("WorkQueue") == [poison, poison]
    dead = lcloud.queue_messages("WorkDeadLetterQueue")
    assert [m["Body"] for m in dead] == ["poison pill"]
    assert lcloud.queue_messages("WorkQueue") == []


def test_the_handler_gets_the_real_sqs_event(lcloud: LocalCloud) -> None:
    # Given one message with an attribute
    message_id = _send(lcloud, "poison once", tenant="acme")

    # When it is handled, fails, and is handled again
    lcloud.drain("WorkQueue")

    # Then each record is shaped as Lambda shapes it, with the true receive count
    batches = [event for name, event, _ in recorded() if name == "worker"]
    records = [batch["Records"][0] for batch in batches]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in records] == ["1", "2"]
    first = records[0]
    assert first["messageId"] == message_id
    assert first["body"] == "poison once"
    assert first["md5OfBody"] == hashlib.md5(b"poison once").hexdigest()
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == lcloud.deployment.queues["WorkQueue"].arn
    assert first["awsRegion"] == lcloud.deployment.region
    assert first["messageAttributes"]["tenant"]["stringValue"] == "acme"
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"} <= set(first["attributes"])


def test_an_exception_fails_the_whole_batch(lcloud: LocalCloud) -> None:
    # Given a batch where the handler raises
    ids = [_send(lcloud, "fine"), _send(lcloud, "explode")]

    # When the poller drains the queue
    report = lcloud.drain("WorkQueue")

    # Then nothing of the batch was deleted: both went round twice and into the DLQ
    assert sorted(report.failed("WorkQueue")) == sorted(ids * 2)
    assert report.succeeded("WorkQueue") == []
    assert sorted(m["Body"] for m in lcloud.queue_messages("WorkDeadLetterQueue")) == ["explode", "fine"]


def test_handlers_see_the_deployment_environment(lcloud: LocalCloud) -> None:
    # Given a message
    _send(lcloud, "hello")

    # When it is handled
    lcloud.drain("WorkQueue")

    # Then the handler saw the template's parameters, the resolved !Ref values, and its /opt path mapped to
    # the same file in its layer's ContentUri folder
    _, _, env = recorded()[0]
    assert env["GREETING"] == "hello"
    assert env["DATABASE_URL"] == "postgresql://fixture-db/unused"
    assert env["MODEL_PATH"].endswith("tests/fixtures/localcloud/layer/model/marker.txt")
    assert env["WORK_QUEUE_URL"] == lcloud.deployment.queues["WorkQueue"].url
