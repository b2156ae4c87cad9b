"""ChatFunction (Function URL, response streaming, Web Adapter) and the ingest path in template.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from threadline.local.template import translate

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    resources: dict[str, Any] = translate(ROOT / "template.yaml").cfn["Resources"]
    return resources


def test_chat_function_streams_through_a_function_url_under_the_web_adapter(cfn: dict[str, Any]) -> None:
    url = next(r["Properties"] for r in cfn.values() if r["Type"] == "AWS::Lambda::Url")
    assert url["InvokeMode"] == "RESPONSE_STREAM" and url["AuthType"] == "NONE"
    function = cfn["ChatFunction"]["Properties"]
    env = function["Environment"]["Variables"]
    assert function["Handler"] == "run.sh" and (ROOT / "functions" / "run.sh").stat().st_mode & 0o111
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap" and env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    adapter = [layer for layer in function["Layers"] if "LambdaAdapterLayerX86" in str(layer)]
    assert len(adapter) == 1 and ":753240598075:layer:LambdaAdapterLayerX86:" in str(adapter[0])
    # The Globals layers (dependencies, model) are merged in, not replaced.
    assert len(function["Layers"]) == 3


def test_run_sh_execs_uvicorn_on_the_app_factory() -> None:
    script = (ROOT / "functions" / "run.sh").read_text()
    assert "exec python3 -m uvicorn --factory threadline.api.app:create_app" in script


def test_bucket_notifies_the_ingest_queue_which_may_receive_from_it(cfn: dict[str, Any]) -> None:
    bucket = cfn["DocumentsBucket"]
    target = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"][0]
    assert target["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]} and target["Event"] == "s3:ObjectCreated:*"
    # No cycle: the bucket waits for the policy, and the policy names the bucket without referring to it.
    assert bucket["DependsOn"] == "IngestQueuePolicy"
    policy = cfn["IngestQueuePolicy"]["Properties"]
    assert "DocumentsBucket" not in str(policy)
    assert policy["PolicyDocument"]["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}


def test_ingest_function_polls_with_partial_failures_dlq_and_visibility(cfn: dict[str, Any]) -> None:
    mapping = next(
        r["Properties"]
        for r in cfn.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and r["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    )
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = cfn["IngestQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * cfn["IngestFunction"]["Properties"]["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    assert cfn["IngestFunction"]["Properties"]["Handler"] == "threadline.handlers.ingest.lambda_handler"


@pytest.mark.parametrize("function", ["ChatFunction", "ApiFunction"])
def test_both_chat_paths_may_send_classify_and_metrics_messages(cfn: dict[str, Any], function: str) -> None:
    env = cfn[function]["Properties"]["Environment"]["Variables"]
    assert env["CLASSIFY_QUEUE_URL"] == {"Ref": "ClassifyQueue"}
    assert env["METRICS_QUEUE_URL"] == {"Ref": "MetricsQueue"}


def test_api_stores_uploads_in_the_bucket_and_ingest_function_continues_itself(cfn: dict[str, Any]) -> None:
    # Given the translated template
    api = cfn["ApiFunction"]["Properties"]
    ingest = cfn["IngestFunction"]["Properties"]
    # Then ApiFunction stores uploads in the DocumentsBucket (and never ingests inline: 30 s is too short)
    assert api["Environment"]["Variables"]["DOCUMENTS_BUCKET"] == {"Ref": "DocumentsBucket"}
    assert "INGEST_INLINE" not in api["Environment"]["Variables"]
    puts = [s for s in _statements(cfn, "ApiFunctionRole") if "s3:PutObject" in s["Action"]]
    assert any('"Ref": "DocumentsBucket"' in json.dumps(s["Resource"]) for s in puts)
    # And IngestFunction may send its continuations to the queue it polls
    assert ingest["Environment"]["Variables"]["INGEST_QUEUE_URL"] == {"Ref": "IngestQueue"}
    sends = [s for s in _statements(cfn, "IngestFunctionRole") if "sqs:SendMessage*" in s["Action"]]
    assert [json.dumps(s["Resource"]).count('["IngestQueue", "QueueName"]') for s in sends] == [1]


def _statements(cfn: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [s for p in cfn[role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
