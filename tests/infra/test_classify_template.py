"""ClassifyQueue, its DLQ and ClassifierFunction in template.yaml follow the SQS rules of the house style."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class _Loader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !GetAtt, ...) as plain values."""


def _tag(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    template: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_Loader)
    return template["Resources"]


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
