"""Uploaded import files in S3 and import chunks on SQS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from threadline.adapters.aws.queues import send_messages
from threadline.domain.errors import Unavailable
from threadline.messages import ImportChunk

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


class S3ImportFiles:
    """`ImportFiles` in one bucket; keys are content-addressed, so a second put of a file is harmless."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def put(self, key: str, data: bytes) -> None:
        """Store a file."""
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType="text/csv")

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of a file."""
        response = self._s3.get_object(Bucket=self._bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        return response["Body"].read()


class SqsImportQueue:
    """`ImportQueue` on the ImportQueue: one message per chunk."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send_chunks(self, project_id: UUID, job_id: UUID, chunk_nos: Sequence[int]) -> None:
        """Enqueue chunks; raises Unavailable if any could not be sent (the caller may retry the upload)."""
        messages = [ImportChunk(project_id=project_id, job_id=job_id, chunk_no=n) for n in chunk_nos]
        if send_messages(self._sqs, self._url, messages).refused:
            raise Unavailable("the import queue refused some chunks; upload the file again to resume")
