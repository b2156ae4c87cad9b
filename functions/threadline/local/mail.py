"""Mail sent through SES in the local cloud: read from moto's SES backend in this process, or from the mail folder.

moto runs inside the process that started it (`threadline dev`, the tests), so that process reads the sent
messages straight from moto's SES backend: no HTTP, no copy of moto's whole state. `threadline dev` writes
each new message as `<id>.eml` into `.local/mail/`; other processes (`threadline mail`) read that folder.
(Before, both fetched `/moto-api/data.json`, every model of every service, every 2 s: 285 MB after 17
backfills, which is what made `threadline mail` time out.)
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import Parser
from email.policy import default as default_policy
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from threadline.local.moto_server import serves_in_process


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


def _parsed(mail_id: str, raw: str, source: str | None, to: tuple[str, ...] | None) -> SentMail:
    parsed = Parser(policy=default_policy).parsestr(raw)
    part = parsed.get_body(preferencelist=("plain", "html"))
    body = part.get_content() if part is not None else ""
    recipients = to or tuple(a for _, a in getaddresses(parsed.get_all("To", []) + parsed.get_all("Cc", [])) if a)
    return SentMail(
        id=mail_id,
        source=source or str(parsed.get("From", "")),
        to=recipients,
        subject=str(parsed.get("Subject", "")),
        body=str(body),
        raw=raw,
    )


def _from_model(message: Any) -> SentMail | None:
    """A moto SES Message or RawMessage as SentMail (templated messages carry no body and are left out)."""
    if hasattr(message, "raw_data"):
        return _parsed(message.id, str(message.raw_data), message.source, tuple(dict.fromkeys(message.destinations)))
    if not hasattr(message, "body"):
        return None
    destinations: dict[str, list[str]] = message.destinations
    to = (
        *destinations.get("ToAddresses", []),
        *destinations.get("CcAddresses", []),
        *destinations.get("BccAddresses", []),
    )
    return SentMail(id=message.id, source=message.source, to=to, subject=message.subject, body=message.body)


def _sent_models() -> list[Any]:
    """Every message moto's SES backends in this process hold, oldest first within a region."""
    from moto.ses.models import ses_backends

    # Only backends that exist are visited (indexing a BackendDict would create one per region).
    return [
        m for account in list(ses_backends.values()) for region in list(account.values()) for m in region.sent_messages
    ]


def sent_mail(endpoint: str, start: int = 0) -> list[SentMail]:
    """The messages sent so far through the moto server at `endpoint` (started by this process), from `start`.

    Raises LookupError for a server of another process: read its mail folder (`read_folder`) instead.
    """
    if not serves_in_process(endpoint):
        raise LookupError(f"{endpoint} is not a moto server of this process; read the dev stack's mail folder")
    found = (_from_model(m) for m in _sent_models()[start:])
    return [m for m in found if m is not None]


def read_folder(folder: Path) -> list[SentMail]:
    """The messages a running `threadline dev` wrote to `folder`, oldest first (none if it has not written any)."""
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [_parsed(p.stem, p.read_text(encoding="utf-8"), None, None) for p in files]


class MailWriter:
    """Writes each message sent through the in-process moto at `endpoint` to `folder` as `<id>.eml`, once.

    It remembers how many messages it has handled, so each call costs only the new ones.
    """

    def __init__(self, endpoint: str, folder: Path) -> None:
        self._endpoint = endpoint
        self._folder = folder
        self._handled = 0

    def write_new(self) -> list[Path]:
        """Write the messages sent since the last call; returns the new files."""
        self._folder.mkdir(parents=True, exist_ok=True)
        models = len(_sent_models())
        written = []
        for mail in sent_mail(self._endpoint, start=self._handled):
            path = self._folder / f"{mail.id}.eml"
            if not path.exists():
                # Written whole then renamed, so a reader in another process never sees half a message.
                partial = path.with_suffix(".eml.part")
                partial.write_text(mail.to_eml(), encoding="utf-8")
                partial.replace(path)
                written.append(path)
        self._handled = models
        return written
