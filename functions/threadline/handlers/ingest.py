"""IngestFunction: documents put into the DocumentsBucket, announced through IngestQueue (partial failures)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline.adapters.aws.documents_bucket import objects_in_notification
from threadline.bootstrap import get_container
from threadline.domain.documents import ingest_object
from threadline.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def ingest_record(record: SQSRecord) -> None:
    """Ingest every object a notification names; raising marks only this record as failed (it is retried)."""
    container = get_container()
    for bucket, key in objects_in_notification(record.body):
        document = ingest_object(container.documents, container.embedder, container.documents_bucket, bucket, key)
        logger.info(
            "document ingested",
            extra={
                "key": key,
                "document_id": str(document.id),
                "status": document.status,
                "chunks": document.chunk_count,
            },
        )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process an SQS batch of S3 notifications."""
    return dict(
        process_partial_response(event=event, record_handler=ingest_record, processor=processor, context=context)
    )
