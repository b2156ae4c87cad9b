"""CloudFormation custom resources: the request CloudFormation sends and the answer it waits for.

CloudFormation invokes the function asynchronously and then waits for one JSON document PUT to the request's
pre-signed S3 URL. Without it the stack waits until the resource's ServiceTimeout, so an answer is always sent,
success or failure, and the PUT itself never raises.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Literal

from threadline.observability import logger

# CloudFormation reads at most 4 KiB of a response; the reason is what an operator sees in the stack events.
_MAX_REASON = 1000
_PUT_TIMEOUT_S = 10

Status = Literal["SUCCESS", "FAILED"]


class NotACustomResourceRequest(ValueError):
    """The event lacks what CloudFormation always sends."""


@dataclass(frozen=True)
class CustomResourceRequest:
    """The parts of a CloudFormation custom resource request the answer needs."""

    request_type: Literal["Create", "Update", "Delete"]
    response_url: str
    stack_id: str
    request_id: str
    logical_resource_id: str
    physical_resource_id: str | None
    properties: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> CustomResourceRequest:
        """Read the request; a malformed one is refused with the missing keys named."""
        required = ("RequestType", "ResponseURL", "StackId", "RequestId", "LogicalResourceId")
        missing = [key for key in required if not isinstance(event.get(key), str)]
        if missing:
            raise NotACustomResourceRequest(f"not a CloudFormation custom resource request: missing {missing}")
        if event["RequestType"] not in ("Create", "Update", "Delete"):
            raise NotACustomResourceRequest(f"unknown RequestType {event['RequestType']!r}")
        return cls(
            request_type=event["RequestType"],
            response_url=event["ResponseURL"],
            stack_id=event["StackId"],
            request_id=event["RequestId"],
            logical_resource_id=event["LogicalResourceId"],
            physical_resource_id=event.get("PhysicalResourceId"),
            properties=dict(event.get("ResourceProperties") or {}),
        )

    def response(
        self, status: Status, physical_resource_id: str, reason: str = "", data: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """The answer document. On Update and Delete the physical id must be the one CloudFormation sent,
        or CloudFormation takes the resource as replaced and deletes the old one."""
        return {
            "Status": status,
            "Reason": reason[:_MAX_REASON] or status,
            "PhysicalResourceId": self.physical_resource_id or physical_resource_id,
            "StackId": self.stack_id,
            "RequestId": self.request_id,
            "LogicalResourceId": self.logical_resource_id,
            "NoEcho": False,
            "Data": data or {},
        }


def send_response(url: str, body: dict[str, Any]) -> bool:
    """PUT the answer to the pre-signed URL; False (logged, never raised) when it could not be delivered.

    The URL is signed for an empty Content-Type, so the header must be sent empty (urllib would add
    application/x-www-form-urlencoded otherwise, and S3 would refuse the signature).
    """
    payload = json.dumps(body).encode()
    request = urllib.request.Request(url, data=payload, method="PUT", headers={"Content-Type": ""})
    try:
        with urllib.request.urlopen(request, timeout=_PUT_TIMEOUT_S) as reply:
            delivered: bool = 200 <= reply.status < 300
    except (urllib.error.URLError, OSError) as exc:
        logger.error("custom resource response not delivered", extra={"error": f"{type(exc).__name__}: {exc}"})
        return False
    if not delivered:
        logger.error("custom resource response refused", extra={"status": reply.status})
    return delivered
