"""MetricsQueue/ImportQueue, their DLQs and functions, and the ImportBucket in template.yaml follow the SQS rules."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.infra
@pytest.mark.parametrize(
    ("function", "queue", "handler"),
    [
        ("MetricsFunction", "MetricsQueue", "threadline.handlers.metrics.lambda_handler"),
        ("ImportFunction", "ImportQueue", "threadline.handlers.imports.lambda_handler"),
    ],
)
def test_worker_reads_its_queue_with_partial_failures_and_a_dlq(
    resources: dict[str, Any], function: str, queue: str, handler: str
) -> None:
    # Given the function and its queue
    props = resources[function]["Properties"]
    events = list(props["Events"].values())
    queue_props = resources[queue]["Properties"]
    # Then the function is the handler, triggered by the queue with partial batch failures
    assert props["Handler"] == handler
    assert len(events) == 1 and events[0]["Type"] == "SQS"
    assert events[0]["Properties"]["Queue"] == f"{queue}.Arn"
    assert events[0]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert {"SQSPollerPolicy"} <= {next(iter(p)) for p in props["Policies"]}
    # And the queue hides a batch for six function timeouts and gives up into its DLQ
    assert queue_props["VisibilityTimeout"] >= 6 * props["Timeout"]
    dlq = queue_props["RedrivePolicy"]["deadLetterTargetArn"]
    assert dlq == f"{queue.removesuffix('Queue')}DeadLetterQueue.Arn"
    assert resources[dlq.removesuffix(".Arn")]["Type"] == "AWS::SQS::Queue"
    assert 1 <= queue_props["RedrivePolicy"]["maxReceiveCount"] <= 10


@pytest.mark.infra
def test_imports_have_their_own_private_bucket(resources: dict[str, Any]) -> None:
    bucket = resources["ImportBucket"]
    api = resources["ApiFunction"]["Properties"]
    worker = resources["ImportFunction"]["Properties"]
    assert bucket["Type"] == "AWS::S3::Bucket"
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    # The API writes the upload and enqueues chunks; the worker only reads.
    assert api["Environment"]["Variables"]["IMPORT_BUCKET"] == "ImportBucket"
    assert api["Environment"]["Variables"]["IMPORT_QUEUE_URL"] == "ImportQueue"
    assert {"S3WritePolicy": {"BucketName": "ImportBucket"}} in api["Policies"]
    assert {"S3ReadPolicy": {"BucketName": "ImportBucket"}} in worker["Policies"]
    assert worker["Environment"]["Variables"]["IMPORT_BUCKET"] == "ImportBucket"


@pytest.mark.infra
@pytest.mark.parametrize("function", ["ApiFunction", "ChatFunction"])
def test_chat_paths_announce_answers_on_the_metrics_queue(resources: dict[str, Any], function: str) -> None:
    props = resources[function]["Properties"]
    assert props["Environment"]["Variables"]["METRICS_QUEUE_URL"] == "MetricsQueue"
    assert {"SQSSendMessagePolicy": {"QueueName": "MetricsQueue.QueueName"}} in props["Policies"]
