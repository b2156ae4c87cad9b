"""Mail sent through SES in the local cloud, read back from moto (for tests, `threadline mail` and .local/mail/)."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import Parser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import requests


@dataclass(frozen=True)
class SentMail:
    """One message SES accepted."""

    id: str
    source: str
    to: tuple[str, ...]
    subject: str
    body: str
    raw: str | None = None  # the MIME text of a SendRawEmail

    def to_eml(self) -> str:
        """The message as an .eml file (MIME text)."""
        if self.raw is not None:
            return self.raw
        message = EmailMessage()
        message["From"] = self.source
        message["To"] = ", ".join(self.to)
        message["Subject"] = self.subject
        message["Message-ID"] = f"<{self.id}@ses.local>"
        subtype = "html" if self.body.lstrip().startswith("<") else "plain"
        message.set_content(self.body, subtype=subtype)
        return message.as_string()


def _simple(item: dict[str, Any]) -> SentMail:
    destinations = item.get("destinations", {})
    to = [
        *destinations.get("ToAddresses", []),
        *destinations.get("CcAddresses", []),
        *destinations.get("BccAddresses", []),
    ]
    return SentMail(
        id=item["id"], source=item["source"], to=tuple(to), subject=item.get("subject", ""), body=item.get("body", "")
    )


def _raw(item: dict[str, Any]) -> SentMail:
    raw = str(item["raw_data"])
    parsed = Parser(policy=default_policy).parsestr(raw)
    part = parsed.get_body(preferencelist=("plain", "html"))
    body = part.get_content() if part is not None else ""
    return SentMail(
        id=item["id"],
        source=item.get("source") or str(parsed.get("From", "")),
        to=tuple(dict.fromkeys(item.get("destinations", []))),
        subject=str(parsed.get("Subject", "")),
        body=str(body),
        raw=raw,
    )


def sent_mail(endpoint: str) -> list[SentMail]:
    """Every message sent so far through the moto server at `endpoint`, oldest first."""
    response = requests.get(f"{endpoint}/moto-api/data.json", timeout=10)
    response.raise_for_status()
    ses = response.json().get("ses", {})
    return [_simple(m) for m in ses.get("Message", [])] + [_raw(m) for m in ses.get("RawMessage", [])]


def write_new(endpoint: str, folder: Path) -> list[Path]:
    """Write each message not yet in `folder` as `<id>.eml`; returns the new files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for mail in sent_mail(endpoint):
        path = folder / f"{mail.id}.eml"
        if not path.exists():
            path.write_text(mail.to_eml(), encoding="utf-8")
            written.append(path)
    return written
