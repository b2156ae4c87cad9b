"""`ChatEvents` over SQS: the classify and metrics messages, sent on a worker thread, never on the chat path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING
from uuid import UUID

from threadline.adapters.aws.queues import send_messages
from threadline.messages import ClassifyThread, MeasureInteraction, QueueMessage
from threadline.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsChatEvents:
    """Fire-and-forget producer: the chat only enqueues a closure; one worker thread talks to SQS.

    An empty queue URL means "not configured": the message is skipped (logged once per queue).
    A failed send is logged and dropped; it never reaches the chat.
    """

    def __init__(self, classify_queue_url: str, metrics_queue_url: str, client: Callable[[], SQSClient]) -> None:
        self._classify_queue_url = classify_queue_url
        self._metrics_queue_url = metrics_queue_url
        self._client = client
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chat-events")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def thread_started(self, project_id: UUID, thread_id: UUID, first_question: str) -> None:  # noqa: ARG002
        """A new thread got its first question: ask for it to be classified."""
        self._submit("classify", self._classify_queue_url, ClassifyThread(project_id=project_id, thread_id=thread_id))

    def answer_completed(self, project_id: UUID, thread_id: UUID, message_id: UUID) -> None:
        """An answer was saved (complete or not): ask for it to be measured."""
        message = MeasureInteraction(project_id=project_id, thread_id=thread_id, message_id=message_id)
        self._submit("metrics", self._metrics_queue_url, message)

    def flush(self, timeout_s: float = 5.0) -> None:
        """Wait for messages already handed over (before a Lambda freezes, and in tests)."""
        with self._lock:
            pending = set(self._pending)
        wait(pending, timeout=timeout_s)

    def _submit(self, queue: str, url: str, message: QueueMessage) -> None:
        if not url:
            if queue not in self._warned:
                self._warned.add(queue)
                logger.info("queue not configured; chat events skipped", extra={"queue": queue})
            return
        future = self._executor.submit(self._send, queue, url, message)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _send(self, queue: str, url: str, message: QueueMessage) -> None:
        try:
            if send_messages(self._client(), url, [message]).refused:
                logger.warning("chat event refused by SQS", extra={"queue": queue})
        except Exception:
            # Losing a classify or metrics message is recoverable (the backfill relabels, metrics are
            # statistics); failing or slowing a user's chat is not.
            logger.exception("chat event not sent", extra={"queue": queue})
