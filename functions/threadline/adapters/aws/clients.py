"""boto3 clients: real AWS, AWS_ENDPOINT_URL (moto), or LocalStack through localstack-client (THREADLINE_CLOUD).

`new_client` is the one place a boto3 client is made, for the app and for the local cloud (local/deploy.py).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from threadline.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


def new_client(service: str, endpoint_url: str, region: str, config: Config | None = _CONFIG) -> Any:
    """A new boto3 client for `service`: at `endpoint_url` (empty: AWS's own), or, with THREADLINE_CLOUD=localstack,
    from localstack_client's session at LOCALSTACK_HOST (an explicit endpoint's host:port still wins, e.g. an
    in-process moto next to LocalStack)."""
    settings = get_settings()
    if settings.cloud == "localstack":
        # A development dependency, imported only under the switch: the Lambda layer does not carry it.
        from localstack_client.session import Session

        host = urlsplit(endpoint_url).netloc or settings.localstack_host
        return Session(region_name=region, localstack_host=host).client(service, config=config)
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url or None,
        region_name=region,
        config=config,
    )


@lru_cache(maxsize=32)
def _client(service: str, endpoint_url: str, region: str, _cloud: str, _localstack_host: str) -> Any:
    # The switch is part of the key, so a process whose settings change never reuses a client of the old ones.
    return new_client(service, endpoint_url, region)


def _cached(service: str, endpoint_url: str, region: str) -> Any:
    settings = get_settings()
    return _client(service, endpoint_url, region, settings.cloud, settings.localstack_host)


def sqs_for(endpoint_url: str, region: str) -> SQSClient:
    """SQS for explicit settings (a container built around its own Settings, as in tests), cached likewise."""
    result: SQSClient = _cached("sqs", endpoint_url, region)
    return result


def s3_for(endpoint_url: str, region: str) -> S3Client:
    """S3 for explicit settings, cached likewise."""
    result: S3Client = _cached("s3", endpoint_url, region)
    return result


def stepfunctions_for(endpoint_url: str, region: str) -> SFNClient:
    """Step Functions for explicit settings, cached likewise."""
    result: SFNClient = _cached("stepfunctions", endpoint_url, region)
    return result


def sns_for(endpoint_url: str, region: str) -> Any:
    """SNS for explicit settings, cached likewise (operator alerts)."""
    return _cached("sns", endpoint_url, region)
