"""IngestFunction: documents put into the DocumentsBucket (announced through IngestQueue by S3, partial
failures), and the continuations it sends itself when a document outlasts one invocation."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import startup
from threadline.adapters.aws.documents_bucket import objects_in_notification
from threadline.bootstrap import get_container
from threadline.domain.documents import Document, RemainingTime, continue_object, ingest_object
from threadline.messages import ContinueIngest, parse_body
from threadline.observability import logger, tracer

# The parsers `parse` imports with the first file of their format: the package check imports them from this
# function's artifact too.
startup.imported_later("pypdf", "threadline.domain.wordml")
processor = BatchProcessor(event_type=EventType.SQS)


def ingest_record(record: SQSRecord, clock: RemainingTime | None = None) -> None:
    """Ingest what a record names (an S3 notification or a `ContinueIngest`) while `clock` leaves time.

    Raising marks only this record as failed (it is retried); an unfinished document is sent on as a
    continuation, so the record itself succeeds.
    """
    container = get_container()
    repo, embedder, store = container.documents, container.embedder, container.documents_bucket
    body = record.body
    if json.loads(body).get("kind") == ContinueIngest.model_fields["kind"].default:
        message = parse_body(ContinueIngest, body)
        ref = (message.project_id, message.document_id, message.content_hash)
        document = continue_object(
            repo, embedder, store, container.ingest_continuations, ref, message.bucket, message.key, clock
        )
        _log(message.key, document)
        return
    for bucket, key in objects_in_notification(body):
        _log(key, ingest_object(repo, embedder, store, container.ingest_continuations, bucket, key, clock))


def _log(key: str, document: Document | None) -> None:
    if document is None:
        logger.info("document deleted before its ingestion ended", extra={"key": key})
        return
    logger.info(
        "document ingested" if document.status != "pending" else "document continues in a later invocation",
        extra={
            "key": key,
            "document_id": str(document.id),
            "status": document.status,
            "chunks_done": document.chunks_done,
            "chunks_total": document.chunks_total,
        },
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process an SQS batch; each record embeds while the invocation's remaining time allows."""
    return dict(
        process_partial_response(
            event=event,
            record_handler=lambda record: ingest_record(record, context),
            processor=processor,
            context=context,
        )
    )


# Last: every module this function needs is loaded (threadline/startup.py).
startup.complete()
