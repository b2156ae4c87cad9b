"""ClassifyQueue, its DLQ and ClassifierFunction in template.yaml follow the SQS rules of the house style."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.infra
def test_classifier_function_reads_its_queue_with_partial_failures(resources: dict[str, Any]) -> None:
    function = resources["ClassifierFunction"]["Properties"]
    event = function["Events"]["Classify"]
    assert function["Handler"] == "threadline.handlers.classify.lambda_handler"
    assert event["Type"] == "SQS" and event["Properties"]["Queue"] == "ClassifyQueue.Arn"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= event["Properties"]["BatchSize"] <= 10_000
    assert {"SQSPollerPolicy"} <= {next(iter(p)) for p in function["Policies"]}


@pytest.mark.infra
def test_classify_queue_has_a_dlq_and_a_long_enough_visibility(resources: dict[str, Any]) -> None:
    queue = resources["ClassifyQueue"]["Properties"]
    timeout = resources["ClassifierFunction"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == "ClassifyDeadLetterQueue.Arn"
    assert 1 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    assert resources["ClassifyDeadLetterQueue"]["Type"] == "AWS::SQS::Queue"


@pytest.mark.infra
def test_api_function_may_enqueue_relabelling(resources: dict[str, Any]) -> None:
    api = resources["ApiFunction"]["Properties"]
    assert api["Environment"]["Variables"]["CLASSIFY_QUEUE_URL"] == "ClassifyQueue"
    assert {"SQSSendMessagePolicy"} <= {next(iter(p)) for p in api["Policies"]}


def _policy_queues(function: dict[str, Any], policy: str) -> set[str]:
    return {
        str(p[policy]["QueueName"]).removesuffix(".QueueName")
        for p in function.get("Policies", [])
        if isinstance(p, dict) and policy in p
    }


@pytest.mark.infra
def test_every_queue_a_function_is_told_about_it_may_send_to(resources: dict[str, Any]) -> None:
    # Given every function's environment: a *_QUEUE_URL it would send to (the importer's new threads, the chat's
    # classify and metrics messages, ...)
    functions = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    missing = [
        f"{name}: {variable}={queue} without an SQSSendMessagePolicy for it"
        for name, props in functions.items()
        for variable, queue in props.get("Environment", {}).get("Variables", {}).items()
        if variable.endswith("_QUEUE_URL") and str(queue) not in _policy_queues(props, "SQSSendMessagePolicy")
    ]
    # Then each one comes with the permission to send there (in AWS a missing policy is an AccessDenied)
    assert missing == []
    assert "ClassifyQueue" in _policy_queues(functions["ImportFunction"], "SQSSendMessagePolicy")
