"""Every state machine file is created in moto and executed there, with our real handlers behind its tasks."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from threadline.local.cloud import LocalCloud
from threadline.local.deploy import aws_client
from threadline.local.template import translate

pytestmark = pytest.mark.infra

REPO_ROOT = Path(__file__).resolve().parents[2]
FOLDER = REPO_ROOT / "infra" / "statemachines"
EVENTS = REPO_ROOT / "events" / "stepfunctions"
# An empty folder still gets one test case: it checks that the template then declares no state machine.
FILES: list[Path | None] = [*sorted(FOLDER.glob("*.asl.json"))] or [None]
# Errors that mean the interpreter could not run the definition (not that a task failed).
INTERPRETER_ERRORS = ("States.Runtime", "States.QueryEvaluationError", "InvalidDefinition")


def _declared_definitions() -> dict[Path, str]:
    translated = translate(REPO_ROOT / "template.yaml", {"DatabaseUrl": "x"})
    return {path: logical_id for (logical_id, key), path in translated.local_paths.items() if key == "DefinitionUri"}


def _execution_input(path: Path) -> str:
    # events/stepfunctions/<name>_execution.json is the sample input of <name>.asl.json, when there is one.
    sample = EVENTS / f"{path.name.removesuffix('.asl.json')}_execution.json"
    return sample.read_text(encoding="utf-8") if sample.is_file() else "{}"


def _wait(sfn: Any, execution_arn: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.2)
    raise TimeoutError(f"{execution_arn} still running after {timeout_s}s")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name if p else "no-state-machine-files")
def test_the_state_machine_is_created_and_executed_in_moto(moto_cloud: LocalCloud, path: Path | None) -> None:
    declared = _declared_definitions()
    if path is None:
        # Given no state machine file / Then the template declares none either
        assert declared == {}
        return
    # Given a definition file the template declares, deployed with its substitutions resolved to local ARNs
    assert path.resolve() in declared, f"{path.name} is not the DefinitionUri of any state machine in template.yaml"
    machine = moto_cloud.deployment.state_machines[declared[path.resolve()]]
    sfn = aws_client("stepfunctions", moto_cloud.deployment.endpoint, moto_cloud.deployment.region)
    definition = sfn.describe_state_machine(stateMachineArn=machine.arn)["definition"]

    # When it is executed on its sample input
    execution = sfn.start_execution(stateMachineArn=machine.arn, name=uuid.uuid4().hex, input=_execution_input(path))
    result = _wait(sfn, execution["executionArn"])

    # Then it ran to an end, its tasks reached our handlers, and the interpreter understood every state
    history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    types = {event["type"] for event in history}
    errors = [result.get("error", "")] + [
        details.get("error", "") for event in history for key, details in event.items() if key.endswith("EventDetails")
    ]
    assert "${" not in definition
    assert result["status"] in ("SUCCEEDED", "FAILED")
    assert types & {"LambdaFunctionScheduled", "TaskScheduled"}
    assert not [error for error in errors if error and error.startswith(INTERPRETER_ERRORS)]


def test_every_state_machine_of_the_template_has_its_file_in_the_folder() -> None:
    # Given the state machines template.yaml declares
    declared = _declared_definitions()

    # When their definition files are located
    outside = [path for path in declared if path.parent != FOLDER.resolve()]

    # Then each is a file in infra/statemachines, so the parametrized test above executes it
    assert outside == []
    assert all(path.is_file() for path in declared)
