"""The local cloud's fixes to moto's Step Functions: bounded state machine copies, tolerated-failure thresholds."""

from __future__ import annotations

import gc
import json
import time
import uuid
from typing import Any

import pytest

from threadline.local.deploy import aws_client

pytestmark = pytest.mark.integration

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/local"


def _sfn(endpoint: str) -> Any:
    return aws_client("stepfunctions", endpoint, REGION)


def _create(endpoint: str, definition: dict[str, Any]) -> str:
    name = f"fix-{uuid.uuid4().hex[:12]}"
    arn: str = _sfn(endpoint).create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    return arn


def _wait(endpoint: str, execution_arn: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described: dict[str, Any] = _sfn(endpoint).describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.1)
    raise TimeoutError(f"{execution_arn} still running")


def _run(endpoint: str, arn: str, payload: object) -> dict[str, Any]:
    started = _sfn(endpoint).start_execution(stateMachineArn=arn, name=uuid.uuid4().hex, input=json.dumps(payload))
    return _wait(endpoint, started["executionArn"])


def _machines_reachable_from(root: object, backend: object) -> int:
    """How many state machine objects can be reached from `root` without going through the shared backend."""
    from moto.stepfunctions.models import StateMachineInstance

    seen: set[int] = {id(backend)}
    stack = [root]
    found = 0
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type):
            continue
        seen.add(id(item))
        found += isinstance(item, StateMachineInstance)
        stack.extend(gc.get_referents(item))
    return found


def test_each_start_copies_the_machine_once_so_the_backend_grows_linearly(moto_endpoint: str) -> None:
    # Given a one-state machine in the in-process moto
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    arn = _create(moto_endpoint, {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    backend = stepfunctions_parser_backends["123456789012"][REGION]
    machine = backend.describe_state_machine(arn)

    # When it is started 30 times, each start waiting for the one before to finish
    results = [_run(moto_endpoint, arn, {"n": n}) for n in range(30)]

    # Then every execution succeeded, each holds one definition snapshot with no executions of its own and the
    # shared backend, and its executions reach one machine copy each (moto 5.2.1 reached copies of copies)
    assert {r["status"] for r in results} == {"SUCCEEDED"}
    assert len(machine.executions) == 30
    assert all(e.state_machine.executions == [] for e in machine.executions)
    assert all(e.state_machine.backend is backend for e in machine.executions)
    assert _machines_reachable_from(machine.executions, backend) == 30


def _map_machine(**thresholds: float) -> dict[str, Any]:
    """A distributed Map over $.items whose child fails for items {"fail": true}, with a Catch."""
    child = {
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Broken"}],
                "Default": "Fine",
            },
            "Broken": {"Type": "Fail", "Error": "RangeBroken", "Cause": "this item fails"},
            "Fine": {"Type": "Pass", "End": True},
        },
    }
    mapping = {
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, **child},
        "MaxConcurrency": 4,
        "ResultPath": None,
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Summarize"}],
        "Next": "Summarize",
        **thresholds,
    }
    return {"StartAt": "Classify", "States": {"Classify": mapping, "Summarize": {"Type": "Pass", "End": True}}}


def _items(failing: int, total: int = 10) -> dict[str, Any]:
    return {"items": [{"n": n, "fail": n < failing} for n in range(total)]}


@pytest.mark.parametrize(
    ("thresholds", "failing", "caught"),
    [
        ({}, 0, False),
        ({}, 1, True),  # neither declared: both are 0, so one failure fails the Map Run
        ({"ToleratedFailurePercentage": 0.0}, 1, True),
        ({"ToleratedFailurePercentage": 10.0}, 1, False),  # 10% is not more than 10%
        ({"ToleratedFailurePercentage": 10.0}, 2, True),
        ({"ToleratedFailureCount": 2}, 2, False),
        ({"ToleratedFailureCount": 2}, 3, True),
        ({"ToleratedFailurePercentage": 50.0, "ToleratedFailureCount": 1}, 2, True),  # either one exceeded
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else str(v),
)
def test_a_distributed_map_fails_past_its_tolerated_failures_and_the_catch_sees_it(
    moto_endpoint: str, thresholds: dict[str, float], failing: int, caught: bool
) -> None:
    # Given a distributed Map over 10 items with the given thresholds, and `failing` of its children failing
    arn = _create(moto_endpoint, _map_machine(**thresholds))

    # When it runs
    result = _run(moto_endpoint, arn, _items(failing))

    # Then the execution ended through Summarize; past a threshold with the Map Run's error in $.error
    history = _sfn(moto_endpoint).get_execution_history(executionArn=result["executionArn"], maxResults=1000)
    types = [e["type"] for e in history["events"]]
    output = json.loads(result["output"])
    assert result["status"] == "SUCCEEDED"
    if caught:
        assert output["error"]["Error"] == "States.ExceedToleratedFailureThreshold"
        assert f"{failing} of 10 items failed" in output["error"]["Cause"]
        assert "MapRunFailed" in types and "MapRunSucceeded" not in types
    else:
        assert "error" not in output
        assert "MapRunSucceeded" in types and "MapRunFailed" not in types
