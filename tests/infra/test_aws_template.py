"""What AWS needs of template.yaml beyond lint: the VPC, bounded connections, SES, async failures, migrations.

Each check names the function (and the property path) that breaks it.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest

from threadline.local.template import translate

pytestmark = pytest.mark.infra

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    """The CloudFormation of template.yaml with its parameter defaults (a plain account: no VPC)."""
    translated: dict[str, Any] = translate(TEMPLATE, {"DatabaseUrl": "postgresql://proxy.example/threadline"}).cfn
    return translated


def _of_type(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: res for lid, res in cfn["Resources"].items() if res["Type"] == kind}


def _functions(cfn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: res["Properties"] for lid, res in _of_type(cfn, "AWS::Lambda::Function").items()}


def test_every_function_runs_in_the_vpc_when_subnets_are_given_and_outside_it_otherwise(cfn: dict[str, Any]) -> None:
    # Given every function of the stack (each one reaches the database)
    functions = _functions(cfn)
    expected = {
        "Fn::If": [
            "InVpc",
            {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": {"Ref": "SecurityGroupIds"}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    # Then each one's VpcConfig follows the InVpc condition
    wrong = [f"{lid}.Properties.VpcConfig" for lid, props in functions.items() if props.get("VpcConfig") != expected]
    assert wrong == []
    # And the condition is off with the defaults, so a plain account deploys without a VPC
    assert cfn["Conditions"]["InVpc"] == {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": [",", {"Ref": "SubnetIds"}]}, ""]}]}
    assert cfn["Parameters"]["SubnetIds"]["Default"] == ""
    # And the optional endpoints exist only behind their conditions
    endpoints = _of_type(cfn, "AWS::EC2::VPCEndpoint")
    assert endpoints and all(res.get("Condition") in ("S3Endpoint", "InterfaceEndpoints") for res in endpoints.values())


def _pool(props: dict[str, Any]) -> int:
    return int(props.get("Environment", {}).get("Variables", {}).get("DB_POOL_MAX", 8))


def test_every_sqs_mapping_bounds_its_concurrency_with_a_pool_of_one(cfn: dict[str, Any]) -> None:
    # Given the SQS event source mappings and their functions
    functions = _functions(cfn)
    mappings = _of_type(cfn, "AWS::Lambda::EventSourceMapping")
    assert mappings

    # Then each one bounds how many instances poll at once (AWS: 2..1000), and each instance opens one connection
    problems = []
    total = 0
    for lid, res in mappings.items():
        props = res["Properties"]
        function = props["FunctionName"]["Ref"]
        concurrency = props.get("ScalingConfig", {}).get("MaximumConcurrency")
        if not isinstance(concurrency, int) or not 2 <= concurrency <= 1000:
            problems.append(f"{lid} ({function}): ScalingConfig.MaximumConcurrency is {concurrency!r}")
            continue
        if _pool(functions[function]) != 1:
            problems.append(f"{function}: Environment.Variables.DB_POOL_MAX must be 1 (one batch at a time)")
        total += concurrency * _pool(functions[function])
    assert problems == []
    # And the queues together hold at most the connections the README's formula counts for them
    assert total == 18


def test_http_functions_have_the_two_connections_the_chat_needs_and_the_rest_one(cfn: dict[str, Any]) -> None:
    # Given every function's pool size
    pools = {lid: _pool(props) for lid, props in _functions(cfn).items()}
    # Then the chat paths (question saved on a worker thread while reading) get 2, everything else 1
    assert {lid: n for lid, n in pools.items() if n != 1} == {"ApiFunction": 2, "ChatFunction": 2}


def test_report_function_may_send_raw_email_from_the_report_sender_through_any_identity(cfn: dict[str, Any]) -> None:
    # Given the mailer the ReportFunction uses
    from threadline.adapters.aws import mailer

    source = inspect.getsource(mailer)
    assert "send_raw_email(" in source and "send_email(" not in source
    # When the ReportFunction role's SES statements are read
    role = cfn["Resources"]["ReportFunctionRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"] if "ses:" in str(s["Action"])]
    # Then exactly SendRawEmail is allowed, on any identity (a verified domain, sandbox recipients), from the sender
    assert statements == [
        {
            "Effect": "Allow",
            "Action": ["ses:SendRawEmail"],
            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*"},
            "Condition": {"StringEquals": {"ses:FromAddress": {"Ref": "ReportSender"}}},
        }
    ]


def _asynchronously_invoked(cfn: dict[str, Any]) -> set[str]:
    """Functions that AWS invokes with InvocationType Event: schedule targets and custom resource providers."""
    targets = {
        res["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0]
        for res in _of_type(cfn, "AWS::Scheduler::Schedule").values()
    }
    aliases = _of_type(cfn, "AWS::Lambda::Alias")
    for res in _of_type(cfn, "AWS::CloudFormation::CustomResource").values():
        token = res["Properties"]["ServiceToken"]
        ref = token.get("Ref") or token.get("Fn::GetAtt", [None])[0]
        targets.add(aliases[ref]["Properties"]["FunctionName"]["Ref"] if ref in aliases else ref)
    return targets


def test_every_asynchronously_invoked_function_has_an_on_failure_queue(cfn: dict[str, Any]) -> None:
    # Given the functions AWS invokes asynchronously and the stack's event invoke configs
    invoked = _asynchronously_invoked(cfn)
    assert invoked == {"ReportFunction", "MigrateFunction", "SweeperFunction"}
    configs = {
        res["Properties"]["FunctionName"]["Ref"]: res["Properties"]
        for res in _of_type(cfn, "AWS::Lambda::EventInvokeConfig").values()
    }
    # Then each one states its retries and event age and sends what failed to a queue of the stack
    for function in sorted(invoked):
        assert function in configs, f"{function}: no EventInvokeConfig"
        config = configs[function]
        assert 0 <= config["MaximumRetryAttempts"] <= 2, f"{function}: EventInvokeConfig.MaximumRetryAttempts"
        assert 60 <= config["MaximumEventAgeInSeconds"] <= 21600, (
            f"{function}: EventInvokeConfig.MaximumEventAgeInSeconds"
        )
        destination = config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"]
        assert cfn["Resources"][destination[0]]["Type"] == "AWS::SQS::Queue", f"{function}: OnFailure.Destination"
    # And the schedule's own undeliverable ticks go to the same queue
    for res in _of_type(cfn, "AWS::Scheduler::Schedule").values():
        assert res["Properties"]["Target"]["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]}


def test_migrations_run_at_deploy_time_before_any_other_function_changes(cfn: dict[str, Any]) -> None:
    # Given the custom resource, its function and every other function
    [(lid, resource)] = _of_type(cfn, "AWS::CloudFormation::CustomResource").items()
    functions = _functions(cfn)
    migrate = functions["MigrateFunction"]
    # Then CloudFormation calls the migrations handler through its alias, again whenever the code changes
    module, name = migrate["Handler"].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))
    props = resource["Properties"]
    assert props["ServiceToken"] == {"Ref": "MigrateFunctionAliaslive"}
    assert props["CodeVersion"]["Ref"].startswith("MigrateFunctionVersion")
    # And a run that never answers fails the deploy once the function has certainly stopped, never after an hour
    assert migrate["Timeout"] < props["ServiceTimeout"] < 3600
    # And every other function waits for the migrations
    late = [f for f in functions if f != "MigrateFunction" and lid not in cfn["Resources"][f].get("DependsOn", [])]
    assert late == []
