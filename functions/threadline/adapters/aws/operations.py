"""What the sweeper reads and tells in AWS: dead-letter queue depths (SQS) and operator alerts (SNS)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from threadline.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsDeadLetterQueues:
    """`DeadLetterQueues` over SQS: ApproximateNumberOfMessages of each queue URL."""

    def __init__(self, queue_urls: Sequence[str], client: Callable[[], SQSClient]) -> None:
        self._urls = [u for u in queue_urls if u]
        self._client = client

    def depths(self) -> dict[str, int]:
        """Messages visible or in flight in each queue, by queue name (the last part of its URL)."""
        result: dict[str, int] = {}
        for url in self._urls:
            attributes = self._client().get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            result[url.rsplit("/", 1)[-1]] = int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
                attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
            )
        return result


class SnsOperatorAlerts:
    """`OperatorAlerts`: always an ERROR log line; an SNS message too when a topic is configured."""

    def __init__(self, topic_arn: str, client: Callable[[], Any]) -> None:
        self._topic_arn = topic_arn
        self._client = client

    def notify(self, subject: str, message: str) -> None:
        """Tell the operators; SNS subjects are limited to 100 characters."""
        logger.error(subject, extra={"alert": message})
        if self._topic_arn:
            self._client().publish(TopicArn=self._topic_arn, Subject=subject[:100], Message=message)
