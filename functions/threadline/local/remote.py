"""Drive a running local stack through its AWS endpoint (what `threadline fire` does from another process)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from threadline.local.deploy import aws_client
from threadline.local.schedules import render_input


def find_schedule(endpoint: str, region: str, name: str) -> dict[str, Any]:
    """A schedule by exact name, or by the SAM event name its name ends with (FunctionEvent)."""
    scheduler = aws_client("scheduler", endpoint, region)
    names = [s["Name"] for s in scheduler.list_schedules()["Schedules"]]
    matches = [n for n in names if n == name] or [n for n in names if n.endswith(name)]
    if len(matches) != 1:
        raise SystemExit(f"schedule {name!r} matches {matches or 'nothing'}; known: {sorted(names)}")
    schedule: dict[str, Any] = scheduler.get_schedule(Name=matches[0])
    return schedule


def fire_schedule(endpoint: str, region: str, name: str) -> dict[str, Any]:
    """Invoke the schedule's target with its Input through the Lambda API (the dev process runs the handler)."""
    schedule = find_schedule(endpoint, region, name)
    target = schedule["Target"]
    payload = render_input(target.get("Input"), schedule["Arn"], datetime.now(UTC).replace(microsecond=0))
    response = aws_client("lambda", endpoint, region).invoke(FunctionName=target["Arn"], Payload=payload.encode())
    return {
        "schedule": schedule["Name"],
        "target": target["Arn"],
        "error": response.get("FunctionError"),
        "result": json.loads(response["Payload"].read() or b"null"),
    }
