"""SweeperFunction: requeues threads left unlabelled and reports dead-letter queues (SweepSchedule)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import startup
from threadline.bootstrap import get_container
from threadline.domain.sweeper import sweep
from threadline.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    """One sweep; the schedule's event carries nothing the sweep needs (it reads the clock)."""
    report = sweep(get_container().sweeper, datetime.now(UTC))
    metrics.add_metric(name="ThreadsRequeued", unit=MetricUnit.Count, value=report.requeued)
    metrics.add_metric(name="DeadLetterMessages", unit=MetricUnit.Count, value=sum(report.dead_letters.values()))
    logger.info("sweep", extra=report.as_dict())
    return report.as_dict()


# Last: every module this function needs is loaded (threadline/startup.py).
startup.complete()
