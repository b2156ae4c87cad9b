"""ImportFunction: imports one chunk of an uploaded CSV per ImportQueue record (partial batch failures)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import startup
from threadline.bootstrap import get_container
from threadline.domain.imports import process_chunk
from threadline.messages import ImportChunk, parse_body
from threadline.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def import_record(record: SQSRecord) -> None:
    """Import one chunk; a redelivered chunk that is already done changes nothing."""
    request = parse_body(ImportChunk, record.body)
    container = get_container()
    stored = process_chunk(
        container.imports,
        container.alerts,
        container.import_files,
        container.classify_queue,
        (request.project_id, request.job_id, request.chunk_no),
    )
    metrics.add_metric(name="ImportChunksStored", unit=MetricUnit.Count, value=int(stored))
    logger.info("import chunk", extra={"job_id": str(request.job_id), "chunk_no": request.chunk_no, "stored": stored})


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process a batch of ImportQueue records, reporting failed ones for redelivery."""
    response = process_partial_response(event=event, record_handler=import_record, processor=processor, context=context)
    return dict(response)


# Last: every module this function needs is loaded (threadline/startup.py).
startup.complete()
