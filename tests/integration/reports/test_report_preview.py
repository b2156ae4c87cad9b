"""The console's "send me a preview": the team's report for its last complete period, sent now, outside the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.integration.reports.conftest import Data, sent_message
from threadline.bootstrap import Container

URL = "/query/v1/team/report-settings/"


@pytest.fixture
def mail_client(mail_container: Container) -> Iterator[TestClient]:
    from threadline.api.app import create_app

    with TestClient(create_app(mail_container)) as test_client:
        yield test_client


@pytest.mark.integration
def test_a_preview_goes_to_the_given_address_now_and_leaves_the_scheduled_report_to_come(
    mail_client: TestClient, mail_container: Container, aws_endpoint: str
) -> None:
    # Given a team with daily reports to ops@ and a thread asked yesterday
    data = Data(mail_container)
    team = data.project("Acme", "Docs bot")
    headers = {"X-API-KEY": team.key}
    settings = {"recipients": ["ops@example.com"], "cadence": "daily", "timezone": "UTC", "enabled": True}
    assert mail_client.put(URL, json=settings, headers=headers).status_code == 200
    yesterday = datetime.now(UTC) - timedelta(days=1)
    data.thread(team.project_id, yesterday.replace(hour=12), "Where is my invoice?")

    # When a preview is asked for me@
    response = mail_client.post(f"{URL}preview/", json={"to": "me@example.com"}, headers=headers)

    # Then it went to me@ only, marked as a preview, with yesterday's figures
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sent_to"] == ["me@example.com"]
    assert body["period_start"].startswith(yesterday.date().isoformat())
    mail = sent_message(aws_endpoint, body["message_id"])
    assert mail["To"] == "me@example.com" and mail["Subject"].startswith("[Preview] ")
    assert "Docs bot" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # and no report was recorded: the scheduled one for that day is still to be sent
    with psycopg.connect(data.url) as conn:
        assert conn.execute("SELECT count(*) FROM reports").fetchone() == (0,)


@pytest.mark.integration
def test_a_preview_needs_a_valid_address_or_saved_recipients(
    mail_client: TestClient, mail_container: Container
) -> None:
    # Given a team that never saved its settings
    team = Data(mail_container).project("Acme", "Docs bot")
    headers = {"X-API-KEY": team.key}
    # When a preview is asked with no address, with a bad one, and with an unknown field
    no_one = mail_client.post(f"{URL}preview/", json={}, headers=headers)
    bad = mail_client.post(f"{URL}preview/", json={"to": "not an address"}, headers=headers)
    unknown = mail_client.post(f"{URL}preview/", json={"email": "me@example.com"}, headers=headers)
    # Then each is a 422 naming what is wrong, in the API's one error shape
    assert (no_one.status_code, no_one.json()["error"]["details"]["field"]) == (422, "to")
    assert (bad.status_code, bad.json()["error"]["details"]["field"]) == (422, "recipients")
    assert (unknown.status_code, unknown.json()["error"]["details"]["field"]) == (422, "email")
