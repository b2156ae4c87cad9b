"""The DocumentsBucket: reading uploaded objects, and the S3 notifications that announce them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from threadline.adapters.aws.queues import send_messages
from threadline.domain.errors import Unavailable
from threadline.messages import ContinueIngest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from threadline.domain.documents import Document


class S3Objects:
    """`ObjectStore` over S3."""

    def __init__(self, client: Callable[[], S3Client]) -> None:
        self._client = client

    def read(self, bucket: str, key: str) -> tuple[bytes, str | None]:
        """The object's bytes and its Content-Type."""
        response = self._client().get_object(Bucket=bucket, Key=key)
        return response["Body"].read(), response.get("ContentType")

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Store an object; the bucket's notification sends it to the IngestQueue. S3 failing is a 503."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable("the document could not be stored; upload it again") from exc


class SqsContinuations:
    """`Continuations` on the IngestQueue: the IngestFunction sends its unfinished documents back to itself."""

    def __init__(self, client: Callable[[], SQSClient], queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def carry_on(self, document: Document, bucket: str, key: str) -> None:
        """Send a `ContinueIngest`; raises Unavailable when SQS refuses it (the record is retried)."""
        if not self._url:
            # Only a document that outlasts an invocation needs the queue; small ones never get here.
            raise Unavailable("ingestion cannot continue: INGEST_QUEUE_URL is not configured")
        message = ContinueIngest(
            project_id=document.project_id,
            document_id=document.id,
            content_hash=document.content_hash,
            bucket=bucket,
            key=key,
        )
        if send_messages(self._client(), self._url, [message]).refused:
            raise Unavailable("the ingest queue refused a continuation")


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
