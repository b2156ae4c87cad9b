"""ClassifierFunction: labels the first questions of new threads from ClassifyQueue (SQS, partial failures)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from threadline import startup
from threadline.bootstrap import get_container
from threadline.domain.classification import ClassifyRequest, classify_messages
from threadline.messages import ClassifyThread, parse_body
from threadline.observability import logger, tracer

# Every failure is reported per item (the queue redrives it) rather than as a failed invocation.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Classify the whole batch in one pass (one embedding call), then report each record's own outcome."""
    container = get_container()
    requests: list[tuple[str, ClassifyRequest]] = []
    for record in event.get("Records", []):
        try:
            message = parse_body(ClassifyThread, record["body"])
        except ValidationError:
            continue  # a poison message: record_handler fails it alone
        requests.append((record["messageId"], ClassifyRequest(message.project_id, message.thread_id)))
    outcome = classify_messages(container.labels, container.classifier, requests)

    def record_handler(record: SQSRecord) -> None:
        parse_body(ClassifyThread, record.body)
        outcome.raise_if_failed(record.message_id)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)


# Last: every module this function needs is loaded (threadline/startup.py).
startup.complete()
