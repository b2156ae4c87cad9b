"""ReportFunction: on each ReportSchedule tick, send every due team report (at most once per period).

It raises when a team's report certainly failed to send, so the schedule's retry policy runs it again:
a retry is harmless (sent and in-flight reports are skipped by their claims) and useful (a refused
send is retried). Uncertain sends do not raise, since a retry would not resend them anyway.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import startup
from threadline.bootstrap import get_container
from threadline.domain.report_render import render_mail
from threadline.domain.reports import run_reports
from threadline.observability import logger, metrics, tracer


class ReportRunFailed(Exception):
    """At least one team's report was not sent; the schedule's retry policy will run the tick again."""


def scheduled_time(event: dict[str, Any]) -> datetime:
    """The tick's own time (so a retried tick reports the same periods), else now."""
    try:
        return datetime.fromisoformat(str(event["scheduled_time"]).replace("Z", "+00:00")).astimezone(UTC)
    except (KeyError, ValueError):
        return datetime.now(UTC)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    """Run one tick and return its summary."""
    summary = run_reports(get_container().report_services, scheduled_time(event), render_mail)
    logger.info("report run", extra={"summary": summary.as_dict()})
    for outcome, count in summary.counts.items():
        metrics.add_metric(name=f"Reports_{outcome}", unit=MetricUnit.Count, value=count)
    if summary.failed:
        raise ReportRunFailed(f"{len(summary.failed)} team report(s) not sent: {summary.failed}")
    return summary.as_dict()


# Last: every module this function needs is loaded (threadline/startup.py).
startup.complete()
