"""ClassifyQueue producer: asks ClassifierFunction to label threads (category deletion, hand-backs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError

from threadline.adapters.aws.queues import SQS_BATCH, send_messages
from threadline.messages import ClassifyThread
from threadline.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsClassifyQueue:
    """`ClassificationRequests` over SQS. An empty queue URL means "not configured": nothing is sent.

    Sending never fails the caller: a thread whose message is lost stays unlabelled, which the sweeper
    requeues after its grace period (and the backfill picks up), so the count of queued messages is
    returned instead of raising.
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
        for start in range(0, len(thread_ids), SQS_BATCH):
            chunk = [ClassifyThread(project_id=project_id, thread_id=t) for t in thread_ids[start : start + SQS_BATCH]]
            try:
                result = send_messages(self._client(), self._queue_url, chunk)
            except (BotoCoreError, ClientError) as exc:
                logger.warning("classify queue unavailable", extra={"error": type(exc).__name__, "threads": len(chunk)})
                continue
            sent += result.accepted
            if result.refused:
                logger.warning("classify messages rejected", extra={"failed": len(result.refused)})
        return sent
