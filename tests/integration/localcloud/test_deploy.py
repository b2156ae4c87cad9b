"""Deploying a template creates, in the endpoint, every resource it declares."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.localcloud import TEMPLATE as FIXTURE_TEMPLATE
from tests.integration.localcloud.conftest import CALLS_DIR
from threadline.local.cloud import TEMPLATE, LocalCloud
from threadline.local.deploy import aws_client, deploy
from threadline.local.deployment import Deployment
from threadline.local.template import translate

pytestmark = pytest.mark.integration


def _exists(deployment: Deployment, logical_id: str, kind: str) -> bool:
    def client(service: str) -> Any:
        return aws_client(service, deployment.endpoint, deployment.region)

    checks = {
        "AWS::Lambda::Function": lambda: client("lambda").get_function(
            FunctionName=deployment.functions[logical_id].name
        ),
        "AWS::SQS::Queue": lambda: client("sqs").get_queue_attributes(QueueUrl=deployment.queues[logical_id].url),
        "AWS::S3::Bucket": lambda: client("s3").head_bucket(Bucket=deployment.buckets[logical_id]),
        "AWS::StepFunctions::StateMachine": lambda: client("stepfunctions").describe_state_machine(
            stateMachineArn=deployment.state_machines[logical_id].arn
        ),
        "AWS::Scheduler::Schedule": lambda: client("scheduler").get_schedule(
            Name=deployment.schedules[logical_id].name
        ),
        "AWS::Lambda::EventSourceMapping": lambda: deployment.event_sources[logical_id],
    }
    checks[kind]()
    return True


DEPLOYED_KINDS = {
    "AWS::Lambda::Function",
    "AWS::SQS::Queue",
    "AWS::S3::Bucket",
    "AWS::StepFunctions::StateMachine",
    "AWS::Scheduler::Schedule",
    "AWS::Lambda::EventSourceMapping",
}


@pytest.mark.parametrize("which", ["template.yaml", "fixture template"])
def test_every_declared_resource_is_created(local_cloud: LocalCloud, fixture_cloud: LocalCloud, which: str) -> None:
    # Given a template and its translation to CloudFormation
    cloud, template = (local_cloud, TEMPLATE) if which == "template.yaml" else (fixture_cloud, FIXTURE_TEMPLATE)
    cfn = translate(template, {"DatabaseUrl": "x"}).cfn
    declared = [(lid, res["Type"]) for lid, res in cfn["Resources"].items() if res["Type"] in DEPLOYED_KINDS]

    # When the deployment is checked against the endpoint
    missing = [lid for lid, kind in declared if not _exists(cloud.deployment, lid, kind)]

    # Then each declared function, queue, bucket, state machine, schedule and SQS mapping is there
    assert declared
    assert missing == []


def test_properties_are_resolved_to_local_resources(fixture_cloud: LocalCloud) -> None:
    # Given the fixture template deployed under the stack name "lct"
    d = fixture_cloud.deployment
    sqs = aws_client("sqs", d.endpoint, d.region)
    s3 = aws_client("s3", d.endpoint, d.region)
    sfn = aws_client("stepfunctions", d.endpoint, d.region)

    # When its resources are read back from the endpoint
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=d.queues["WorkQueue"].url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    notifications = s3.get_bucket_notification_configuration(Bucket=d.buckets["UploadsBucket"])
    definition = sfn.describe_state_machine(stateMachineArn=d.state_machines["PipelineStateMachine"].arn)["definition"]
    env = d.functions["WorkerFunction"].environment

    # Then Ref, GetAtt and Sub were resolved to the local physical values
    assert redrive == {"deadLetterTargetArn": d.queues["WorkDeadLetterQueue"].arn, "maxReceiveCount": 2}
    assert [c["QueueArn"] for c in notifications["QueueConfigurations"]] == [d.queues["WorkQueue"].arn]
    assert d.functions["StepFunction"].arn in definition
    assert "${" not in definition
    assert env["WORK_QUEUE_URL"] == d.queues["WorkQueue"].url
    assert env["UPLOADS_BUCKET"] == d.buckets["UploadsBucket"]
    assert env["TICK_TARGET_ARN"] == d.functions["TickFunction"].arn
    assert d.event_sources["WorkerFunctionWork"].batch_size == 5
    assert d.schedules["TickFunctionTick"].expression == "rate(5 minutes)"


def test_deploying_twice_is_idempotent(fixture_cloud: LocalCloud) -> None:
    # Given the fixture template already deployed
    before = fixture_cloud.deployment

    # When it is deployed again into the same endpoint
    again = deploy(
        FIXTURE_TEMPLATE,
        before.endpoint,
        parameters={"DatabaseUrl": "postgresql://fixture-db/unused", "CallsDir": str(CALLS_DIR)},
        stack_name="lct",
        senders=before.senders,
    )

    # Then the same physical resources come back
    assert again.queues == before.queues
    assert again.functions == before.functions
    assert again.state_machines == before.state_machines
