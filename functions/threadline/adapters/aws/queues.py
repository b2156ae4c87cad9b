"""The one way Threadline sends queue messages: typed models, ten per SendMessageBatch call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from threadline.messages import QueueMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

# SendMessageBatch takes at most ten entries.
SQS_BATCH = 10


@dataclass(frozen=True, slots=True)
class Sent:
    """How many messages SQS accepted, and the messages it refused."""

    accepted: int
    refused: tuple[QueueMessage, ...] = ()


def send_messages(client: SQSClient, queue_url: str, messages: Sequence[QueueMessage]) -> Sent:
    """Send `messages` in batches of ten; SQS's per-entry refusals come back, transport errors raise."""
    accepted = 0
    refused: list[QueueMessage] = []
    for start in range(0, len(messages), SQS_BATCH):
        chunk = messages[start : start + SQS_BATCH]
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "MessageBody": m.model_dump_json()} for i, m in enumerate(chunk)
        ]
        response = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
        accepted += len(response.get("Successful", []))
        refused += [chunk[int(f["Id"])] for f in response.get("Failed", [])]
    return Sent(accepted, tuple(refused))
