"""The backfill state machine's definition: what the issue asks of it, in a form the local interpreter runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
ASL = REPO_ROOT / "infra" / "statemachines" / "backfill.asl.json"

pytestmark = pytest.mark.infra


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Ref, !GetAtt, !Sub) as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}


_CfnLoader.add_multi_constructor("!", _tag)


def _definition() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ASL.read_text())
    return data


def _template() -> dict[str, Any]:
    data: dict[str, Any] = yaml.load((REPO_ROOT / "template.yaml").read_text(), Loader=_CfnLoader)
    return data


def test_plan_then_distributed_map_over_s3_then_summarize() -> None:
    # Given the definition
    states = _definition()["States"]
    # When its flow is followed from the start
    plan, mapped, summarize = states["Plan"], states["ClassifyRanges"], states["Summarize"]
    # Then Plan feeds a distributed Map reading its JSON manifest from S3, and everything ends in Summarize
    assert _definition()["StartAt"] == "Plan" and plan["Next"] == "ClassifyRanges"
    assert mapped["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert mapped["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert mapped["ItemReader"]["ReaderConfig"]["InputType"] == "JSON"
    assert mapped["Next"] == "Summarize" and summarize["End"] is True
    assert {c["Next"] for c in plan["Catch"] + mapped["Catch"]} == {"Summarize"}


def test_map_is_bounded_tolerant_and_runs_on_the_local_interpreter() -> None:
    # Given the Map state
    mapped = _definition()["States"]["ClassifyRanges"]
    text = ASL.read_text()
    # When its limits are read
    tolerated = mapped["ToleratedFailurePercentage"]
    # Then concurrency comes from Plan's output, the tolerance is a decimal, and no unsupported feature is used
    assert mapped["MaxConcurrencyPath"] == "$.max_concurrency"
    assert isinstance(tolerated, float) and 0 < tolerated < 100
    assert "ItemBatcher" not in text and "JSONata" not in text and "{%" not in text


@pytest.mark.parametrize("path", [("Plan",), ("ClassifyRanges", "ClassifyRange"), ("Summarize",)])
def test_every_task_retries_our_transient_error_and_lambda_throttling_with_backoff(path: tuple[str, ...]) -> None:
    # Given one task of the definition
    states = _definition()["States"]
    task = states[path[0]] if len(path) == 1 else states[path[0]]["ItemProcessor"]["States"][path[1]]
    # When its first retrier is read
    retrier = task["Retry"][0]
    # Then it names our exception and Lambda's throttling, and backs off
    assert {"TransientError", "Lambda.TooManyRequestsException"} <= set(retrier["ErrorEquals"])
    assert retrier["BackoffRate"] > 1 and retrier["MaxAttempts"] >= 3


def test_template_deploys_it_as_a_standard_machine_with_every_substitution() -> None:
    # Given the template and the definition's placeholders
    resources = _template()["Resources"]
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL.read_text()))
    # When the state machine resource is read
    machine = resources["BackfillStateMachine"]["Properties"]
    # Then it is STANDARD, loads the file, and substitutes each placeholder with one of our functions
    assert machine["Type"] == "STANDARD"
    assert machine["DefinitionUri"] == "infra/statemachines/backfill.asl.json"
    assert set(machine["DefinitionSubstitutions"]) == placeholders
    for name, value in machine["DefinitionSubstitutions"].items():
        function = value["GetAtt"].split(".")[0]
        assert name == f"{function}Arn" and resources[function]["Type"] == "AWS::Serverless::Function"
    assert {"BackfillBucket", "BackfillPlanFunction", "BackfillSummarizeFunction"} <= set(resources)
