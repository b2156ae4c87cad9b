"""SES mailer: one raw MIME message per report (text and HTML alternatives, charts as related parts)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from threadline.adapters.aws.clients import new_client
from threadline.domain.reports import MailNotSent, MailOutcomeUnknown, OutgoingMail
from threadline.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_ses import SESClient

# One attempt: a retried SendRawEmail after a lost response would deliver the report twice.
_NO_RETRY = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5, read_timeout=30)


def ses_client(settings: Settings) -> SESClient:
    """An SES client that never retries by itself (the report ledger decides what may be retried)."""
    client: SESClient = new_client("ses", settings.aws_endpoint_url, settings.aws_region, config=_NO_RETRY)
    return client


def to_mime(mail: OutgoingMail) -> bytes:
    """multipart/alternative [text/plain, multipart/related [text/html, image/png...]]."""
    message = EmailMessage()
    message["Subject"] = mail.subject
    message["From"] = mail.sender
    message["To"] = ", ".join(mail.recipients)
    message["Message-ID"] = make_msgid(domain="threadline")
    # RFC 5322 requires Date; mail clients sort and show the report by it.
    message["Date"] = formatdate(usegmt=True)
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    html_part = next(part for part in message.iter_parts() if part.get_content_type() == "text/html")
    for image in mail.images:
        html_part.add_related(
            image.png, maintype="image", subtype="png", cid=f"<{image.content_id}>", filename=image.filename
        )
    return message.as_bytes()


class SesMailer:
    """`Mailer` over SES SendRawEmail.

    The client must not retry on its own: a timeout after SES accepted a mail, retried, would send it
    twice. Errors are sorted into "certainly not sent" and "outcome unknown" for the report ledger.
    """

    def __init__(self, client: SESClient) -> None:
        self._client = client

    def send(self, mail: OutgoingMail) -> str:
        """Send; returns the SES MessageId."""
        try:
            response = self._client.send_raw_email(
                Source=mail.sender,
                Destinations=list(mail.recipients),
                RawMessage={"Data": to_mime(mail)},
            )
        except ClientError as exc:
            # SES answered with an error: it did not accept the message.
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise MailNotSent(f"SES refused the mail: {code}", code=code) from exc
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            # The request never reached SES.
            raise MailNotSent(f"SES unreachable: {exc}") from exc
        except Exception as exc:
            raise MailOutcomeUnknown(f"SES outcome unknown: {type(exc).__name__}") from exc
        return response["MessageId"]
