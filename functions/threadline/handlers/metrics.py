"""MetricsFunction: measures answered interactions from the MetricsQueue (partial batch failures)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import startup
from threadline.bootstrap import get_container
from threadline.domain.alerts import measure_message
from threadline.messages import MeasureInteraction, parse_body
from threadline.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def measure_record(record: SQSRecord) -> None:
    """Measure one interaction; a redelivery stores and alerts nothing twice."""
    request = parse_body(MeasureInteraction, record.body)
    alerts = measure_message(get_container().alerts, request.project_id, request.message_id)
    metrics.add_metric(name="InteractionsMeasured", unit=MetricUnit.Count, value=1 if alerts is not None else 0)
    metrics.add_metric(name="AlertsRaised", unit=MetricUnit.Count, value=len(alerts or []))
    logger.info("measured", extra={"message_id": str(request.message_id), "alerts": len(alerts or [])})


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process a batch of MetricsQueue records, reporting failed ones for redelivery."""
    response = process_partial_response(
        event=event, record_handler=measure_record, processor=processor, context=context
    )
    return dict(response)


# Last: every module this function needs is loaded (threadline/startup.py).
startup.complete()
