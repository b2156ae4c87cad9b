"""The DocumentsBucket: reading uploaded objects, and the S3 notifications that announce them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3Objects:
    """`ObjectStore` over S3."""

    def __init__(self, client: Callable[[], S3Client]) -> None:
        self._client = client

    def read(self, bucket: str, key: str) -> tuple[bytes, str | None]:
        """The object's bytes and its Content-Type."""
        response = self._client().get_object(Bucket=bucket, Key=key)
        return response["Body"].read(), response.get("ContentType")


def objects_in_notification(body: str) -> list[tuple[str, str]]:
    """(bucket, key) of every created object in an S3 event notification delivered through SQS.

    S3's `s3:TestEvent` (sent when the notification is configured) and non-create events yield nothing.
    Keys arrive URL-encoded with '+' for spaces.
    """
    message = json.loads(body)
    found: list[tuple[str, str]] = []
    for record in message.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        s3 = record["s3"]
        found.append((s3["bucket"]["name"], unquote_plus(s3["object"]["key"])))
    return found
