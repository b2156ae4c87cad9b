"""ClassifyQueue producer: asks ClassifierFunction to label threads (category deletion, hand-backs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError

from threadline.domain.classification import request_body
from threadline.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

_SQS_BATCH = 10


class SqsClassifyQueue:
    """`ClassificationRequests` over SQS. An empty queue URL means "not configured": nothing is sent.

    Sending never fails the caller: a thread whose message is lost stays unlabelled, which the
    backfill (issue 5) picks up, so the count of queued messages is returned instead of raising.
    """

    def __init__(self, queue_url: str, client: Callable[[], SQSClient]) -> None:
        self._queue_url = queue_url
        self._client = client
        self._warned = False

    def request_classification(self, project_id: UUID, thread_ids: Sequence[UUID]) -> int:
        """Send one message per thread, ten per SendMessageBatch call; returns how many were accepted."""
        if not self._queue_url:
            if not self._warned:
                logger.warning("CLASSIFY_QUEUE_URL is not set; classification requests are not sent")
                self._warned = True
            return 0
        sent = 0
        for start in range(0, len(thread_ids), _SQS_BATCH):
            chunk = thread_ids[start : start + _SQS_BATCH]
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": str(i), "MessageBody": request_body(project_id, t)} for i, t in enumerate(chunk)
            ]
            try:
                response = self._client().send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            except (BotoCoreError, ClientError) as exc:
                logger.warning("classify queue unavailable", extra={"error": type(exc).__name__, "threads": len(chunk)})
                continue
            sent += len(response.get("Successful", []))
            if failed := response.get("Failed", []):
                logger.warning("classify messages rejected", extra={"failed": len(failed)})
        return sent
