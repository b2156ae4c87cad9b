"""SQS pollers: what Lambda's event source mapping does, one poller per SQS event source in the template.

A poller receives up to BatchSize messages (waiting up to MaximumBatchingWindowInSeconds to fill the
batch), hands the function (in its own worker, local/runtime.py) the real SQS event, deletes what
succeeded and leaves the rest to come back after the visibility timeout; the queue's redrive policy moves a
message to its DLQ after maxReceiveCount receives (moto does that itself, as SQS does). A batch whose
invocation timed out is never deleted: it comes back once its visibility timeout has passed, even while the
timed-out handler may still have been working on it, so handlers must be idempotent.
Each mapping polls with ScalingConfig.MaximumConcurrency concurrent batches (Lambda's minimum, 2, when unset).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from threadline.local.deploy import aws_client
from threadline.local.deployment import Deployment, EventSourceInfo
from threadline.local.runtime import LambdaRuntime

_LOG = logging.getLogger("threadline.local.pollers")
_MAX_RECEIVE = 10  # SQS returns at most 10 messages per ReceiveMessage
_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


@dataclass(frozen=True)
class BatchOutcome:
    """One batch handed to a function: the message ids that succeeded and those that failed."""

    queue: str
    function: str
    succeeded: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """How many messages the batch held."""
        return len(self.succeeded) + len(self.failed)


@dataclass
class DrainReport:
    """Every batch a drain handled."""

    batches: list[BatchOutcome] = field(default_factory=list)

    def succeeded(self, queue: str | None = None) -> list[str]:
        """Message ids handled successfully (on one queue, by logical id, or all)."""
        return [m for b in self.batches if queue in (None, b.queue) for m in b.succeeded]

    def failed(self, queue: str | None = None) -> list[str]:
        """Message ids whose handling failed at least once."""
        return [m for b in self.batches if queue in (None, b.queue) for m in b.failed]


def _message_attributes(raw: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for name, value in raw.items():
        item: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            item["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        converted[name] = item
    return converted


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of the SQS event Lambda builds from a received message."""
    attributes = message.get("Attributes", {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {key: attributes[key] for key in _RECORD_ATTRIBUTES if key in attributes},
        "messageAttributes": _message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


class SqsPoller:
    """The event source mapping of one queue to one function."""

    def __init__(
        self,
        deployment: Deployment,
        source: EventSourceInfo,
        runtime: LambdaRuntime,
        *,
        expedite_retries: bool = False,
    ) -> None:
        self.deployment = deployment
        self.runtime = runtime
        self.source = source
        self.queue = deployment.queues[source.queue]
        self.function = deployment.functions[source.function]
        # Tests make failed messages visible again at once instead of after the visibility timeout;
        # receive counts and the redrive to the DLQ stay moto's.
        self.expedite_retries = expedite_retries
        self._sqs = aws_client("sqs", deployment.endpoint, deployment.region)

    def _receive(self, wait_s: int, limit: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.queue.url,
            MaxNumberOfMessages=min(_MAX_RECEIVE, limit),
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def receive_batch(self, wait_s: int = 0) -> list[dict[str, Any]]:
        """Up to BatchSize messages, waiting up to the batching window for more once the first arrived."""
        batch = self._receive(wait_s, self.source.batch_size)
        deadline = time.monotonic() + self.source.batching_window_s
        while batch and len(batch) < self.source.batch_size:
            remaining = deadline - time.monotonic()
            more = self._receive(min(20, max(0, int(remaining))), self.source.batch_size - len(batch))
            batch += more
            if not more and remaining <= 0:
                break
        return batch

    def handle(self, messages: list[dict[str, Any]]) -> BatchOutcome:
        """Invoke the function with one batch; delete successes, leave failures for a retry."""
        event = {"Records": [sqs_record(m, self.queue.arn, self.deployment.region) for m in messages]}
        result = self.runtime.invoke(self.function.arn, json.dumps(event))
        failed_ids = self._failed_ids(result.payload, result.errored, [m["MessageId"] for m in messages])
        succeeded = [m for m in messages if m["MessageId"] not in failed_ids]
        failed = [m for m in messages if m["MessageId"] in failed_ids]
        for chunk in _chunks(succeeded):
            self._sqs.delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        # A timed-out batch is left alone: its visibility timeout decides when it comes back, as in AWS.
        if failed and self.expedite_retries and result.error_type != "Sandbox.Timedout":
            for chunk in _chunks(failed):
                self._sqs.change_message_visibility_batch(
                    QueueUrl=self.queue.url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                        for i, m in enumerate(chunk)
                    ],
                )
        return BatchOutcome(
            queue=self.queue.logical_id,
            function=self.function.logical_id,
            succeeded=tuple(m["MessageId"] for m in succeeded),
            failed=tuple(m["MessageId"] for m in failed),
        )

    def _failed_ids(self, payload: Any, errored: bool, batch_ids: list[str]) -> set[str]:
        if errored:
            return set(batch_ids)
        if not self.source.report_batch_item_failures or not isinstance(payload, dict):
            return set()
        items = payload.get("batchItemFailures") or []
        ids = {item.get("itemIdentifier") if isinstance(item, dict) else None for item in items}
        # Lambda treats a malformed or unknown identifier as a failure of the whole batch.
        if not ids <= set(batch_ids):
            return set(batch_ids)
        return {str(i) for i in ids}

    def poll_once(self, wait_s: int = 0) -> BatchOutcome | None:
        """Receive and handle one batch; None when the queue had nothing."""
        messages = self.receive_batch(wait_s)
        return self.handle(messages) if messages else None

    def run(self, stop: threading.Event, wait_s: int = 1) -> None:
        """Poll until `stop` is set (the body of a dev-server thread)."""
        while not stop.is_set():
            try:
                messages = self.receive_batch(wait_s)
                if messages and not stop.is_set():  # a batch received as the stack stops comes back later
                    self.handle(messages)
            except Exception:
                # A broken endpoint must not kill the poller for good; Lambda's poller keeps going too.
                _LOG.exception("poller of %s failed; retrying", self.queue.logical_id)
                stop.wait(1.0)


def _chunks(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [messages[i : i + _MAX_RECEIVE] for i in range(0, len(messages), _MAX_RECEIVE)]


def pollers(deployment: Deployment, runtime: LambdaRuntime, *, expedite_retries: bool = False) -> list[SqsPoller]:
    """One poller per enabled SQS event source of the deployment."""
    return [
        SqsPoller(deployment, source, runtime, expedite_retries=expedite_retries)
        for source in deployment.event_sources.values()
        if source.enabled
    ]


def _pending(poller: SqsPoller) -> int:
    attributes = poller._sqs.get_queue_attributes(
        QueueUrl=poller.queue.url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesDelayed", 0)
    )


def drain(
    deployment: Deployment,
    runtime: LambdaRuntime,
    *queues: str,
    timeout_s: float = 60.0,
    expedite_retries: bool = True,
) -> DrainReport:
    """Run the pollers (of the named queues, by logical id, or all) until their queues are idle.

    A handler that sends to another polled queue keeps the drain going, so chains run to the end.
    Failed messages are retried at once (see `expedite_retries`) until the redrive moves them to their DLQ;
    timed-out ones wait for their visibility timeout.
    """
    selected = [
        p
        for p in pollers(deployment, runtime, expedite_retries=expedite_retries)
        if not queues or p.queue.logical_id in queues
    ]
    report = DrainReport()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        outcomes = [outcome for poller in selected if (outcome := poller.poll_once()) is not None]
        report.batches += outcomes
        if not outcomes and not any(_pending(poller) for poller in selected):
            return report
        if not outcomes:
            time.sleep(0.1)  # delayed messages only: wait for them to become visible
    raise TimeoutError(f"queues still busy after {timeout_s}s: {[p.queue.logical_id for p in selected]}")


class PollerThreads:
    """The pollers of `make dev`, each on its own daemon thread."""

    def __init__(self, deployment: Deployment, runtime: LambdaRuntime) -> None:
        self.stop_event = threading.Event()
        self.runtime = runtime
        self.threads = [
            threading.Thread(
                target=p.run, args=(self.stop_event,), name=f"poller-{p.queue.logical_id}-{i}", daemon=True
            )
            for p in pollers(deployment, runtime)
            for i in range(p.source.maximum_concurrency)
        ]

    def start(self) -> None:
        """Start polling."""
        for thread in self.threads:
            thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop polling and wait for the threads (each finishes its current batch), `timeout_s` in all.

        No new execution environment starts once stopping: a cold start takes seconds, and a poller that
        received a batch just before the stop would otherwise hold the whole stack up while it starts one.
        """
        self.stop_event.set()
        self.runtime.stop_starting()
        end = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, end - time.monotonic()))
