"""Mail sent through SES is read back from moto's backend in this process, written as .eml files, and read back."""

from __future__ import annotations

import uuid
from email import message_from_string
from pathlib import Path

import pytest

from threadline.local.cloud import LocalCloud
from threadline.local.deploy import aws_client
from threadline.local.mail import MailWriter, read_folder, sent_mail
from threadline.local.moto_server import free_port
from threadline.settings import Settings

pytestmark = pytest.mark.integration

SENDER = str(Settings.model_fields["report_sender"].default)


def _send_two(cloud: LocalCloud, subject: str) -> None:
    d = cloud.deployment
    ses = aws_client("ses", d.endpoint, d.region)
    ses.send_email(
        Source=SENDER,
        Destination={"ToAddresses": ["owner@example.com"]},
        Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": "12 threads this week"}}},
    )
    raw = f"From: {SENDER}\r\nTo: cto@example.com\r\nSubject: Raw {subject}\r\n\r\nraw body\r\n"
    ses.send_raw_email(Source=SENDER, Destinations=["cto@example.com"], RawMessage={"Data": raw.encode()})


def test_sent_mail_is_read_back_and_written_as_eml(local_moto_cloud: LocalCloud, tmp_path: Path) -> None:
    # Given the default report sender, verified by the deployment, sends a simple and a raw message
    d = local_moto_cloud.deployment
    subject = f"Weekly report {uuid.uuid4().hex[:8]}"
    _send_two(local_moto_cloud, subject)

    # When the sent mail is read back and written to a folder, twice
    mine = [m for m in local_moto_cloud.mail() if subject in m.subject]
    writer = MailWriter(d.endpoint, tmp_path / "mail")
    written = writer.write_new()
    again = writer.write_new()

    # Then both messages are there with their recipients and bodies, each as a parseable .eml file once
    assert SENDER in d.senders
    assert [(m.to, m.subject, m.body.strip()) for m in mine] == [
        (("owner@example.com",), subject, "12 threads this week"),
        (("cto@example.com",), f"Raw {subject}", "raw body"),
    ]
    parsed = [message_from_string(p.read_text()) for p in written]
    assert {m["Subject"] for m in parsed} >= {subject, f"Raw {subject}"}
    assert again == []
    assert not list((tmp_path / "mail").glob("*.part"))


def test_another_process_reads_the_folder_and_the_writer_handles_only_new_mail(
    local_moto_cloud: LocalCloud, tmp_path: Path
) -> None:
    # Given a writer that has caught up, then two more messages
    d = local_moto_cloud.deployment
    writer = MailWriter(d.endpoint, tmp_path / "mail")
    writer.write_new()
    before = len(read_folder(tmp_path / "mail"))
    subject = f"Later {uuid.uuid4().hex[:8]}"
    _send_two(local_moto_cloud, subject)

    # When the writer runs again and the folder is read as `threadline mail` reads it
    written = writer.write_new()
    folder = read_folder(tmp_path / "mail")

    # Then only the two new files were written, and the folder gives back sender, recipients, subject and body
    assert len(written) == 2 and len(folder) == before + 2
    mine = {m.subject: m for m in folder if subject in m.subject}
    assert mine[subject].to == ("owner@example.com",) and mine[subject].body.strip() == "12 threads this week"
    assert mine[f"Raw {subject}"].to == ("cto@example.com",) and mine[f"Raw {subject}"].source == SENDER
    assert {m.id for m in folder} >= {p.stem for p in written}


def test_a_moto_server_of_another_process_is_not_read_over_http(tmp_path: Path) -> None:
    # Given an endpoint no moto server of this process listens on
    endpoint = f"http://127.0.0.1:{free_port()}"

    # When its mail is asked for / Then it is refused with a pointer to the folder; an absent folder reads empty
    with pytest.raises(LookupError, match="mail folder"):
        sent_mail(endpoint)
    assert read_folder(tmp_path / "absent") == []
