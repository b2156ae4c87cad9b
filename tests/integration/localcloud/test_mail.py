"""Mail sent through SES can be read back, and written as .eml files."""

from __future__ import annotations

import uuid
from email import message_from_string
from pathlib import Path

import pytest

from threadline.local.cloud import LocalCloud
from threadline.local.deploy import aws_client
from threadline.local.mail import write_new
from threadline.settings import Settings

pytestmark = pytest.mark.integration

SENDER = str(Settings.model_fields["report_sender"].default)


def test_sent_mail_is_read_back_and_written_as_eml(local_moto_cloud: LocalCloud, tmp_path: Path) -> None:
    # Given the default report sender, verified by the deployment, sends a simple and a raw message
    d = local_moto_cloud.deployment
    ses = aws_client("ses", d.endpoint, d.region)
    subject = f"Weekly report {uuid.uuid4().hex[:8]}"
    ses.send_email(
        Source=SENDER,
        Destination={"ToAddresses": ["owner@example.com"]},
        Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": "12 threads this week"}}},
    )
    raw = f"From: {SENDER}\r\nTo: cto@example.com\r\nSubject: Raw {subject}\r\n\r\nraw body\r\n"
    ses.send_raw_email(Source=SENDER, Destinations=["cto@example.com"], RawMessage={"Data": raw.encode()})

    # When the sent mail is read back and written to a folder
    mine = [m for m in local_moto_cloud.mail() if subject in m.subject]
    written = write_new(d.endpoint, tmp_path / "mail")

    # Then both messages are there with their recipients and bodies, each as a parseable .eml file once
    assert SENDER in d.senders
    assert [(m.to, m.subject, m.body.strip()) for m in mine] == [
        (("owner@example.com",), subject, "12 threads this week"),
        (("cto@example.com",), f"Raw {subject}", "raw body"),
    ]
    parsed = [message_from_string(p.read_text()) for p in written]
    assert {m["Subject"] for m in parsed} >= {subject, f"Raw {subject}"}
    assert write_new(d.endpoint, tmp_path / "mail") == []
