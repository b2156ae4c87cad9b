"""ReportSchedule from template.yaml, fired in the local cloud: ReportFunction sends once, SES keeps the mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from tests.integration.reports.conftest import Data, sent_message
from threadline.bootstrap import Container
from threadline.domain import reports
from threadline.local.cloud import LocalCloud


@pytest.mark.integration
def test_firing_the_report_schedule_sends_each_due_report_once(
    cloud: LocalCloud, container: Container, data: Data, aws_endpoint: str
) -> None:
    # Given a team with reports on and three threads in its last complete week (as of now)
    p = data.project(f"Fired {uuid4().hex[:6]}", "Fired bot")
    period = reports.last_complete_period("weekly", "Europe/Berlin", datetime.now(UTC))
    for hours in (1, 30, 100):
        data.thread(p.project_id, period.starts_at + timedelta(hours=hours), "Where is my invoice?")
    reports.save_settings(container.reports, p.team_id, ["ops@example.com"], "weekly", "Europe/Berlin", True)
    # When the schedule fires (an asynchronous invoke), and fires again (a duplicate delivery)
    first = cloud.fire("ReportSchedule").wait().last
    second = cloud.fire("ReportSchedule").wait().last
    # Then ReportFunction sent the report once, and the local SES holds it with the database's figures
    assert not first.errored and not second.errored, (first.payload, second.payload)
    assert first.payload["counts"]["sent"] == 1 and second.payload["counts"]["sent"] == 0
    message = sent_message(aws_endpoint, first.payload["sent"][0]["message_id"])
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Threads: 3 (previous 0, new)" in text and "3 x Where is my invoice?" in text
    assert message["To"] == "ops@example.com"
