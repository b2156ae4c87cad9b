"""boto3 clients that honour AWS_ENDPOINT_URL (moto, LocalStack) or go to real AWS when it is unset."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from threadline.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@lru_cache(maxsize=32)
def _client(service: str, endpoint_url: str, region: str) -> Any:
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url or None,
        region_name=region,
        config=_CONFIG,
    )


def client(service: str) -> Any:
    """A cached client for a service, pointed where the settings say."""
    settings = get_settings()
    return _client(service, settings.aws_endpoint_url, settings.aws_region)


def sqs() -> SQSClient:
    """SQS."""
    result: SQSClient = client("sqs")
    return result


def s3() -> S3Client:
    """S3."""
    result: S3Client = client("s3")
    return result


def ses() -> SESClient:
    """SES (v1 API; moto keeps what it sends)."""
    result: SESClient = client("ses")
    return result


def stepfunctions() -> SFNClient:
    """Step Functions."""
    result: SFNClient = client("stepfunctions")
    return result


def scheduler() -> EventBridgeSchedulerClient:
    """EventBridge Scheduler."""
    result: EventBridgeSchedulerClient = client("scheduler")
    return result


def sqs_for(endpoint_url: str, region: str) -> SQSClient:
    """SQS for explicit settings (a container built around its own Settings, as in tests), cached likewise."""
    result: SQSClient = _client("sqs", endpoint_url, region)
    return result


def s3_for(endpoint_url: str, region: str) -> S3Client:
    """S3 for explicit settings, cached likewise."""
    result: S3Client = _client("s3", endpoint_url, region)
    return result


def stepfunctions_for(endpoint_url: str, region: str) -> SFNClient:
    """Step Functions for explicit settings, cached likewise."""
    result: SFNClient = _client("stepfunctions", endpoint_url, region)
    return result


def sns_for(endpoint_url: str, region: str) -> Any:
    """SNS for explicit settings, cached likewise (operator alerts)."""
    return _client("sns", endpoint_url, region)
