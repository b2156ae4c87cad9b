"""Step Functions Lambda tasks run our real handlers, and Retry/Catch see our exception names."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.integration.localcloud.conftest import recorded
from threadline.local.cloud import LocalCloud
from threadline.local.deploy import aws_client

pytestmark = pytest.mark.integration


def _run(cloud: LocalCloud, payload: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
    sfn = aws_client("stepfunctions", cloud.deployment.endpoint, cloud.deployment.region)
    arn = cloud.deployment.state_machines["PipelineStateMachine"].arn
    execution = sfn.start_execution(stateMachineArn=arn, name=uuid.uuid4().hex, input=json.dumps(payload))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.2)
    raise TimeoutError("execution still running")


def test_a_transient_error_is_retried_by_name_and_the_real_handler_succeeds(lmoto: LocalCloud) -> None:
    # Given a task input whose first attempt raises TransientStepError
    key = uuid.uuid4().hex

    # When the state machine runs
    result = _run(lmoto, {"mode": "transient", "key": key})

    # Then the Retry on "TransientStepError" ran the handler again and the execution succeeded
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert output["key"] == key
    assert output["attempts"] == 2
    assert output["remaining_ms"] > 0
    assert [event["key"] for name, event, _ in recorded() if name == "step"] == [key, key]


def test_a_permanent_error_is_caught_by_its_class_name(lmoto: LocalCloud) -> None:
    # Given a task input whose handler always raises PermanentStepError
    key = uuid.uuid4().hex

    # When the state machine runs
    result = _run(lmoto, {"mode": "permanent", "key": key})

    # Then the Catch on "PermanentStepError" routed it to the recovery state with our error name and message
    assert result["status"] == "SUCCEEDED"
    error = json.loads(result["output"])["error"]
    assert error["Error"] == "PermanentStepError"
    assert json.loads(error["Cause"])["errorMessage"] == f"cannot process {key}"


def test_the_invoke_api_runs_the_real_handler(lmoto: LocalCloud) -> None:
    # Given the Lambda API of the endpoint
    lam = aws_client("lambda", lmoto.deployment.endpoint, lmoto.deployment.region)

    # When a function is invoked through it, once successfully and once with an error
    ok = lam.invoke(FunctionName="lct-TickFunction", Payload=json.dumps({"n": 1}).encode())
    failed = lam.invoke(FunctionName="lct-StepFunction", Payload=json.dumps({"mode": "permanent", "key": "k"}).encode())

    # Then the results and exceptions come back as Lambda reports them
    assert json.loads(ok["Payload"].read())["received"] == '{"n": 1}'
    assert "FunctionError" not in ok
    assert failed["FunctionError"] == "Unhandled"  # what Lambda says for any function error
    assert json.loads(failed["Payload"].read())["errorType"] == "PermanentStepError"
