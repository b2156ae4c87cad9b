"""Uploaded import files in S3 and import chunks on SQS."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from threadline.domain.errors import Unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

# SendMessageBatch takes at most ten entries.
_SQS_BATCH = 10


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
        for start in range(0, len(chunk_nos), _SQS_BATCH):
            entries = [
                {
                    "Id": str(n),
                    "MessageBody": json.dumps(
                        {"kind": "import_chunk", "project_id": str(project_id), "job_id": str(job_id), "chunk_no": n}
                    ),
                }
                for n in chunk_nos[start : start + _SQS_BATCH]
            ]
            response = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)  # type: ignore[arg-type]
            if response.get("Failed"):
                raise Unavailable("the import queue refused some chunks; upload the file again to resume")
