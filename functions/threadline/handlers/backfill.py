"""The backfill state machine's Lambda steps: Plan, ClassifyRange, Summarize (events: events/stepfunctions/)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import startup
from threadline.bootstrap import get_container
from threadline.domain import backfill
from threadline.domain.errors import Unavailable
from threadline.observability import logger, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def plan_handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    """{"backfill_id", "attempt"} -> the manifest the Map reads, and the Map's concurrency."""
    container = get_container()
    try:
        manifest = backfill.plan(
            container.backfills,
            container.backfill_manifests,
            UUID(event["backfill_id"]),
            int(event["attempt"]),
            container.settings.backfill_range_size,
        )
    except Unavailable as exc:
        raise backfill.TransientError(exc.message) from exc
    return {
        "backfill_id": event["backfill_id"],
        "attempt": int(event["attempt"]),
        "manifest": {"bucket": manifest.bucket, "key": manifest.key},
        "ranges": manifest.items,
        "max_concurrency": container.settings.backfill_map_concurrency,
    }


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def classify_range_handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    """{"backfill_id", "ordinal"} -> how many threads of the range were labelled."""
    container = get_container()
    try:
        labelled = backfill.classify_range(
            container.backfills, container.classifier, UUID(event["backfill_id"]), int(event["ordinal"])
        )
    except Unavailable as exc:
        raise backfill.TransientError(exc.message) from exc
    return {"ordinal": int(event["ordinal"]), "labelled": labelled}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def summarize_handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    """{"backfill_id", "attempt", "error"?} -> the recorded outcome."""
    error = event.get("error")  # set by a Catch: {"Error", "Cause"}
    reason = None if error is None else str(error.get("Error", "error") if isinstance(error, dict) else error)
    try:
        job = backfill.summarize(get_container().backfills, UUID(event["backfill_id"]), int(event["attempt"]), reason)
    except Unavailable as exc:
        raise backfill.TransientError(exc.message) from exc
    return {
        "state": job.state.value,
        "ranges_done": job.ranges_done,
        "ranges_total": job.ranges_total,
        "threads_labelled": job.threads_labelled,
        "failed_ranges": [f.ordinal for f in job.failures],
    }


# Last: every module this function needs is loaded (threadline/startup.py).
startup.complete()
