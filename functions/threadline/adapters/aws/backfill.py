"""The backfill's AWS side: the Map's item list in S3 and executions of the state machine."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from threadline.domain.backfill import ExecutionStatus, Manifest
from threadline.domain.errors import Unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient


class S3Manifests:
    """`ManifestStore` in a bucket: one JSON array per attempt, read by the Map's ItemReader."""

    def __init__(self, bucket: str, s3: Callable[[], S3Client]) -> None:
        if not bucket:
            raise Unavailable("BACKFILL_BUCKET is not configured")
        self._bucket = bucket
        self._s3 = s3

    def write(self, key: str, items: list[dict[str, Any]]) -> Manifest:
        body = json.dumps(items, separators=(",", ":")).encode()
        self._s3().put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/json")
        return Manifest(bucket=self._bucket, key=key, items=len(items))


class StepFunctionsRunner:
    """`WorkflowRunner` over the backfill state machine."""

    def __init__(self, state_machine_arn: str, sfn: Callable[[], SFNClient]) -> None:
        if not state_machine_arn:
            raise Unavailable("BACKFILL_STATE_MACHINE_ARN is not configured")
        self._arn = state_machine_arn
        self._sfn = sfn

    def start(self, name: str, payload: dict[str, Any]) -> str:
        sfn = self._sfn()
        try:
            response = sfn.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(payload))
        except ClientError as exc:
            # A retried start with the same name and input is the same execution: report that one.
            if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise Unavailable("could not start the backfill execution") from exc
            return self._arn.replace(":stateMachine:", ":execution:") + f":{name}"
        return response["executionArn"]

    def status(self, execution_arn: str) -> ExecutionStatus:
        try:
            response = self._sfn().describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            # The execution is gone (e.g. the local cloud was restarted): nothing will close the job but us.
            if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return ExecutionStatus.MISSING
            raise Unavailable("could not read the backfill execution") from exc
        return ExecutionStatus(response["status"])


def find_state_machine(sfn: SFNClient, suffix: str = "-backfill") -> str:
    """The ARN of the one state machine whose name ends with `suffix` (a local stack seen from another process)."""
    arns = [
        machine["stateMachineArn"]
        for page in sfn.get_paginator("list_state_machines").paginate()
        for machine in page["stateMachines"]
        if machine["name"].endswith(suffix)
    ]
    if len(arns) != 1:
        raise Unavailable("cannot tell which state machine is the backfill's; set BACKFILL_STATE_MACHINE_ARN")
    return arns[0]
