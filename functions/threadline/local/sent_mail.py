"""Mail the local SES (moto in server mode) has "sent", read back through its /moto-api/data.json."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import requests


def sent_raw_messages(endpoint_url: str) -> list[dict[str, Any]]:
    """Every raw message moto's SES accepted, oldest first: {"id", "source", "destinations", "raw_data"}."""
    response = requests.get(f"{endpoint_url.rstrip('/')}/moto-api/data.json", timeout=10)
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json().get("ses", {}).get("RawMessage", [])
    return found


def sent_message(endpoint_url: str, message_id: str) -> EmailMessage:
    """The message SES returned `message_id` for, parsed; KeyError if the local SES has no such message."""
    for item in sent_raw_messages(endpoint_url):
        if item.get("id") == message_id:
            return parse(item["raw_data"])
    raise KeyError(message_id)


def parse(raw: str | bytes) -> EmailMessage:
    """A raw MIME message as an EmailMessage (modern policy: get_body, iter_attachments)."""
    data = raw.encode() if isinstance(raw, str) else raw
    message: EmailMessage = BytesParser(policy=policy.default).parsebytes(data)
    return message
