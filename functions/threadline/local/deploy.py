# Over 350 lines: one `_Deployer` creates every resource type of the translated template; the types share its plan.
"""Create the resources of template.yaml in moto (or any AWS-compatible endpoint) through boto3.

moto's CloudFormation cannot deploy the template (Function URLs, Scheduler, state machines from files), so
the SAM template is translated offline and each resource type the local cloud understands is created
directly. New queues, buckets, functions, state machines and schedules in the template are picked up as
they are: nothing here names a Threadline resource.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from threadline.adapters.aws.clients import new_client
from threadline.local.deployment import (
    AsyncConfig,
    Deployment,
    EventSourceInfo,
    FunctionInfo,
    QueueInfo,
    ScheduleInfo,
    StateMachineInfo,
)
from threadline.local.intrinsics import Resolver
from threadline.local.template import Translated, parameter_values, translate

DEFAULT_ACCOUNT_ID = "123456789012"
_FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def aws_client(service: str, endpoint: str, region: str) -> Any:
    """A boto3 client for the local endpoint (fake credentials unless real ones are set), made where the app's are."""
    for key, value in _FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    return new_client(service, endpoint, region, config=None)


def _resources(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: res.get("Properties", {}) for logical_id, res in cfn["Resources"].items() if res.get("Type") == kind
    }


class _Deployer:
    def __init__(
        self, translated: Translated, params: dict[str, str], endpoint: str, region: str, stack: str, app_url: str
    ) -> None:
        self.t = translated
        self.app_url = app_url
        self.cfn = translated.cfn
        self.endpoint = endpoint
        self.region = region
        self.stack = stack
        self.resolver = Resolver(params, region, DEFAULT_ACCOUNT_ID, stack)
        self.out = Deployment(endpoint=endpoint, region=region, account_id=DEFAULT_ACCOUNT_ID)
        self.role_arn = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/{stack}-local-execution"

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint, self.region)

    def name(self, logical_id: str, props: dict[str, Any], key: str, *, lower: bool = False) -> str:
        if key in props:
            return str(self.resolver.resolve(props[key]))
        base = f"{self.stack}-{logical_id}"
        return base.lower() if lower else base

    # -- physical identities first, so any resource may refer to any other -------------------------------

    def plan_identities(self) -> None:
        r, acct, region = self.resolver, DEFAULT_ACCOUNT_ID, self.region
        for logical_id, props in _resources(self.cfn, "AWS::S3::Bucket").items():
            bucket = self.name(logical_id, props, "BucketName", lower=True)
            r.refs[logical_id] = bucket
            r.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{bucket}"
            r.attributes[(logical_id, "DomainName")] = f"{bucket}.s3.amazonaws.com"
            r.attributes[(logical_id, "RegionalDomainName")] = f"{bucket}.s3.{region}.amazonaws.com"
        for logical_id, props in _resources(self.cfn, "AWS::Lambda::Function").items():
            fn = self.name(logical_id, props, "FunctionName")
            r.refs[logical_id] = fn
            r.attributes[(logical_id, "Arn")] = f"arn:aws:lambda:{region}:{acct}:function:{fn}"
        for logical_id, props in _resources(self.cfn, "AWS::StepFunctions::StateMachine").items():
            sm = self.name(logical_id, props, "StateMachineName")
            arn = f"arn:aws:states:{region}:{acct}:stateMachine:{sm}"
            r.refs[logical_id] = arn
            r.attributes[(logical_id, "Arn")] = arn
            r.attributes[(logical_id, "Name")] = sm
        for logical_id, props in _resources(self.cfn, "AWS::Scheduler::Schedule").items():
            schedule = self.name(logical_id, props, "Name")
            r.refs[logical_id] = schedule
            r.attributes[(logical_id, "Arn")] = f"arn:aws:scheduler:{region}:{acct}:schedule/default/{schedule}"
        self._plan_messaging()
        for logical_id in _resources(self.cfn, "AWS::IAM::Role"):
            r.refs[logical_id] = f"{self.stack}-{logical_id}"
            r.attributes[(logical_id, "Arn")] = self.role_arn
        for logical_id, res in self.cfn["Resources"].items():
            # Whatever else the template holds (APIs, layers, permissions) gets a stable placeholder Ref.
            r.refs.setdefault(logical_id, f"{self.stack}-{logical_id}")
            if res.get("Type") == "AWS::Lambda::Url":
                # Locally every function URL is the uvicorn app (the Web Adapter is a pass-through).
                r.attributes[(logical_id, "FunctionUrl")] = self.app_url

    def _plan_messaging(self) -> None:
        r, acct, region = self.resolver, DEFAULT_ACCOUNT_ID, self.region
        for logical_id, props in _resources(self.cfn, "AWS::SQS::Queue").items():
            queue = self.name(logical_id, props, "QueueName")
            if props.get("FifoQueue") and not queue.endswith(".fifo"):
                queue += ".fifo"
            r.attributes[(logical_id, "QueueName")] = queue
            r.attributes[(logical_id, "Arn")] = f"arn:aws:sqs:{region}:{acct}:{queue}"
        for logical_id, props in _resources(self.cfn, "AWS::SNS::Topic").items():
            topic = self.name(logical_id, props, "TopicName")
            arn = f"arn:aws:sns:{region}:{acct}:{topic}"
            r.refs[logical_id] = arn
            r.attributes[(logical_id, "TopicArn")] = arn
            r.attributes[(logical_id, "TopicName")] = topic

    # -- creation ----------------------------------------------------------------------------------------

    def create_role(self) -> None:
        iam = self.client("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        try:
            iam.create_role(RoleName=f"{self.stack}-local-execution", AssumeRolePolicyDocument=json.dumps(trust))
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "EntityAlreadyExists":
                raise

    def create_queues(self) -> None:
        sqs = self.client("sqs")
        queues = _resources(self.cfn, "AWS::SQS::Queue")
        # Dead-letter queues first: a redrive policy may only name a queue that exists.
        for logical_id, props in sorted(queues.items(), key=lambda item: "RedrivePolicy" in item[1]):
            name = self.resolver.attributes[(logical_id, "QueueName")]
            attributes = _queue_attributes(self.resolver.resolve(props))
            try:
                url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
                    raise
                url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
                sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
            self.resolver.refs[logical_id] = url
            self.resolver.attributes[(logical_id, "QueueUrl")] = url
            redrive = json.loads(attributes.get("RedrivePolicy", "{}"))
            self.out.queues[logical_id] = QueueInfo(
                logical_id=logical_id,
                name=name,
                url=url,
                arn=self.resolver.attributes[(logical_id, "Arn")],
                dead_letter_arn=redrive.get("deadLetterTargetArn"),
                max_receive_count=int(redrive["maxReceiveCount"]) if "maxReceiveCount" in redrive else None,
            )

    def create_topics(self) -> None:
        # Topics only: a subscription's endpoint (an operator's mailbox) cannot be reached locally, so a test
        # subscribes its own queue to read what operators would get.
        sns = self.client("sns")
        for logical_id in _resources(self.cfn, "AWS::SNS::Topic"):
            sns.create_topic(Name=self.resolver.attributes[(logical_id, "TopicName")])  # idempotent in SNS

    def create_buckets(self) -> None:
        s3 = self.client("s3")
        for logical_id, props in _resources(self.cfn, "AWS::S3::Bucket").items():
            bucket = self.resolver.refs[logical_id]
            try:
                s3.create_bucket(Bucket=bucket, **_bucket_location(self.region))
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
            self.out.buckets[logical_id] = bucket
            notifications = self.resolver.resolve(props.get("NotificationConfiguration", {}))
            queue_configs = notifications.get("QueueConfigurations", [])
            if queue_configs:
                s3.put_bucket_notification_configuration(
                    Bucket=bucket,
                    NotificationConfiguration={"QueueConfigurations": [_queue_notification(c) for c in queue_configs]},
                )

    def create_functions(self) -> None:
        lam = self.client("lambda")
        code = _placeholder_zip()
        invoke_configs = self.event_invoke_configs()
        for logical_id, props in _resources(self.cfn, "AWS::Lambda::Function").items():
            name = self.resolver.refs[logical_id]
            layers = [self.layer(layer) for layer in props.get("Layers", [])]
            # /opt values are kept: the local runtime maps them to the function's layers (local/runtime.py).
            env = {
                key: str(value)
                for key, value in self.resolver.resolve(props.get("Environment", {}).get("Variables", {})).items()
            }
            config = {
                "Runtime": props.get("Runtime", "python3.12"),
                "Role": self.role_arn,
                "Handler": props["Handler"],
                "Timeout": int(props.get("Timeout", 3)),
                "MemorySize": int(props.get("MemorySize", 128)),
                "Environment": {"Variables": env},
                "TracingConfig": {"Mode": props.get("TracingConfig", {}).get("Mode", "PassThrough")},
            }
            try:
                lam.create_function(FunctionName=name, Code={"ZipFile": code}, **config)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceConflictException":
                    raise
                lam.update_function_configuration(FunctionName=name, **config)
            self.out.functions[logical_id] = FunctionInfo(
                logical_id=logical_id,
                name=name,
                arn=self.resolver.attributes[(logical_id, "Arn")],
                handler=props["Handler"],
                environment=env,
                timeout_s=int(props.get("Timeout", 3)),
                memory_mb=int(props.get("MemorySize", 128)),
                code_dir=self.t.local_paths.get(
                    (logical_id, "CodeUri"), self.t.local_paths.get(("Globals", "CodeUri"))
                ),
                layer_dirs=tuple(path for path in layers if isinstance(path, Path)),
                external_layers=tuple(str(layer) for layer in layers if not isinstance(layer, Path)),
                async_config=invoke_configs.get(logical_id, AsyncConfig()),
                tracing=config["TracingConfig"]["Mode"] == "Active",
            )

    def layer(self, reference: Any) -> Path | str:
        """A function's layer: the local ContentUri folder of a layer in this template, else its ARN."""
        if isinstance(reference, dict) and "Ref" in reference:
            content = self.cfn["Resources"][reference["Ref"]].get("Properties", {}).get("Content", {})
            owner = str(content.get("S3Key", "")).split("/")[0]
            if (owner, "ContentUri") in self.t.local_paths:
                return self.t.local_paths[(owner, "ContentUri")]
        return str(self.resolver.resolve(reference))

    def event_invoke_configs(self) -> dict[str, AsyncConfig]:
        """Each function's AWS::Lambda::EventInvokeConfig, by the function's logical id."""
        configs: dict[str, AsyncConfig] = {}
        for props in _resources(self.cfn, "AWS::Lambda::EventInvokeConfig").values():
            function = props["FunctionName"]
            logical_id = function["Ref"] if isinstance(function, dict) and "Ref" in function else None
            if logical_id is None:
                continue
            resolved = self.resolver.resolve(props)
            destinations = resolved.get("DestinationConfig", {})
            configs[logical_id] = AsyncConfig(
                maximum_retry_attempts=int(resolved.get("MaximumRetryAttempts", 2)),
                maximum_event_age_s=int(resolved.get("MaximumEventAgeInSeconds", 21600)),
                on_failure=destinations.get("OnFailure", {}).get("Destination"),
                on_success=destinations.get("OnSuccess", {}).get("Destination"),
            )
        return configs

    def record_event_sources(self) -> None:
        # Recorded, not created: moto's own SQS -> Lambda mapping invokes inside SendMessage, one record at a
        # time, without retries. The pollers (local/pollers.py) do what Lambda's poller does instead.
        for logical_id, props in _resources(self.cfn, "AWS::Lambda::EventSourceMapping").items():
            source_arn = str(self.resolver.resolve(props.get("EventSourceArn", "")))
            if ":sqs:" not in source_arn:
                continue
            function = self.out.function(str(self.resolver.resolve(props["FunctionName"])))
            self.out.event_sources[logical_id] = EventSourceInfo(
                logical_id=logical_id,
                function=function.logical_id,
                queue=self.out.queue_by_arn(source_arn).logical_id,
                batch_size=int(props.get("BatchSize", 10)),
                batching_window_s=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                enabled=bool(props.get("Enabled", True)),
                maximum_concurrency=int(props.get("ScalingConfig", {}).get("MaximumConcurrency", 2)),
            )

    def create_state_machines(self) -> None:
        sfn = self.client("stepfunctions")
        for logical_id, props in _resources(self.cfn, "AWS::StepFunctions::StateMachine").items():
            path = self.t.state_machine_definition_path(logical_id)
            definition = _definition(props, path, self.resolver)
            name = self.resolver.attributes[(logical_id, "Name")]
            arn = self.resolver.refs[logical_id]
            kind = props.get("StateMachineType", "STANDARD")
            try:
                sfn.create_state_machine(name=name, definition=definition, roleArn=self.role_arn, type=kind)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "StateMachineAlreadyExists":
                    raise
                sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=self.role_arn)
            self.out.state_machines[logical_id] = StateMachineInfo(logical_id, name, arn, path)

    def create_schedules(self) -> None:
        scheduler = self.client("scheduler")
        aliases = _schedule_event_names(self.t.sam)
        for logical_id, props in _resources(self.cfn, "AWS::Scheduler::Schedule").items():
            resolved = self.resolver.resolve(props)
            name = self.resolver.refs[logical_id]
            target = resolved["Target"]
            request = {
                "Name": name,
                "ScheduleExpression": resolved["ScheduleExpression"],
                "ScheduleExpressionTimezone": resolved.get("ScheduleExpressionTimezone", "UTC"),
                "FlexibleTimeWindow": resolved.get("FlexibleTimeWindow", {"Mode": "OFF"}),
                "State": resolved.get("State", "ENABLED"),
                "Target": {"Arn": target["Arn"], "RoleArn": self.role_arn}
                | ({"Input": target["Input"]} if "Input" in target else {}),
            }
            try:
                scheduler.create_schedule(**request)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConflictException":
                    raise
                scheduler.update_schedule(**request)
            self.out.schedules[logical_id] = ScheduleInfo(
                logical_id=logical_id,
                name=name,
                aliases=frozenset({logical_id, name, *aliases.get(logical_id, ())}),
                expression=request["ScheduleExpression"],
                timezone=request["ScheduleExpressionTimezone"],
                target=self.out.function(target["Arn"]).logical_id,
                input=target.get("Input"),
                enabled=request["State"] == "ENABLED",
            )

    def verify_senders(self, extra: list[str]) -> None:
        ses = self.client("ses")
        identities = [
            str(self.resolver.resolve(p["EmailIdentity"]))
            for p in _resources(self.cfn, "AWS::SES::EmailIdentity").values()
        ]
        senders = {
            value
            for f in self.out.functions.values()
            for key, value in f.environment.items()
            if key.endswith("_SENDER") and value
        }
        for sender in sorted({*identities, *senders, *extra}):
            ses.verify_email_identity(EmailAddress=sender)
            self.out.senders.append(sender)


def _queue_attributes(props: dict[str, Any]) -> dict[str, str]:
    names = (
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
        "MaximumMessageSize",
        "FifoQueue",
        "ContentBasedDeduplication",
    )
    attributes = {
        key: str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
        for key in names
        if key in props
    }
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    return attributes


def _queue_notification(config: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"QueueArn": config["Queue"], "Events": [config["Event"]]}
    rules = config.get("Filter", {}).get("S3Key", {}).get("Rules")
    if rules:
        result["Filter"] = {"Key": {"FilterRules": rules}}
    return result


def _bucket_location(region: str) -> dict[str, Any]:
    return {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}


def _placeholder_zip() -> bytes:
    # Invocations run the real handler from its CodeUri in a local worker (local/runtime.py), never this zip.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Threadline local cloud: handlers run in local workers.\n")
    return buffer.getvalue()


def _definition(props: dict[str, Any], path: Path | None, resolver: Resolver) -> str:
    if path is not None:
        text = path.read_text(encoding="utf-8")
    elif "DefinitionString" in props:
        text = str(resolver.resolve(props["DefinitionString"]))
    else:
        text = json.dumps(resolver.resolve(props["Definition"]))
    for key, value in resolver.resolve(props.get("DefinitionSubstitutions", {})).items():
        text = text.replace("${" + key + "}", str(value))
    return text


def _schedule_event_names(sam: dict[str, Any]) -> dict[str, list[str]]:
    # SAM names the schedule of event E on function F "FE"; `threadline fire E` should find it.
    names: dict[str, list[str]] = {}
    for function_id, res in sam.get("Resources", {}).items():
        for event_name, event in res.get("Properties", {}).get("Events", {}).items():
            if event.get("Type") == "ScheduleV2":
                names.setdefault(f"{function_id}{event_name}", []).append(event_name)
    return names


def deploy(
    template_path: Path,
    endpoint: str,
    *,
    parameters: dict[str, str] | None = None,
    region: str = "us-east-1",
    stack_name: str = "threadline",
    app_url: str = "http://127.0.0.1:8000/",
    senders: list[str] | None = None,
) -> Deployment:
    """Translate the template and create its resources at `endpoint`; returns what was created."""
    translated = translate(template_path, parameters)
    params = parameter_values(translated.cfn, parameters or {})
    deployer = _Deployer(translated, params, endpoint, region, stack_name, app_url)
    deployer.plan_identities()
    steps: list[Callable[[], None]] = [
        deployer.create_role,
        deployer.create_queues,
        deployer.create_topics,
        deployer.create_buckets,
        deployer.create_functions,
        deployer.record_event_sources,
        deployer.create_state_machines,
        deployer.create_schedules,
    ]
    for step in steps:
        step()
    deployer.verify_senders(senders or [])
    deployer.out.refs.update(deployer.resolver.refs)
    return deployer.out
