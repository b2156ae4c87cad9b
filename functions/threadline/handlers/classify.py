"""ClassifierFunction: labels the first questions of new threads from ClassifyQueue (SQS, partial failures)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline.bootstrap import get_container
from threadline.domain.classification import classify_messages
from threadline.observability import logger, tracer

# Every failure is reported per item (the queue redrives it) rather than as a failed invocation.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Classify the whole batch in one pass (one embedding call), then report each record's own outcome."""
    container = get_container()
    messages = [(record["messageId"], record["body"]) for record in event.get("Records", [])]
    outcome = classify_messages(container.labels, container.classifier, messages)

    def record_handler(record: SQSRecord) -> None:
        outcome.raise_if_failed(record.message_id)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
