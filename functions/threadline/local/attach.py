"""Commands run beside a live `threadline dev` see the stack the way its functions do."""

from __future__ import annotations

import json
import os
from pathlib import Path

STATE_FILE = "dev.json"


def write_state(local_dir: Path, endpoint: str, app_url: str, environment: dict[str, str]) -> Path:
    """Record where the running stack is and the environment its functions run with."""
    path = local_dir / STATE_FILE
    # The database is left out: the CLI finds the same embedded server, or the user's DATABASE_URL, itself.
    shared = {key: value for key, value in environment.items() if key != "DATABASE_URL"}
    path.write_text(json.dumps({"endpoint": endpoint, "app_url": app_url, "environment": shared}))
    return path


def attach_running_stack(local_dir: Path) -> bool:
    """With `make dev` running and no AWS endpoint chosen, take on its functions' environment.

    That gives the CLI the local endpoint, moto's credentials, queue URLs and the state machine ARN,
    so `report --now`, `backfill`, `fire` and `mail` act on the local stack as its functions would.
    Variables the user set win. Returns whether a stack was found.
    """
    path = local_dir / STATE_FILE
    if os.environ.get("AWS_ENDPOINT_URL") or not path.is_file():
        return False
    for key, value in json.loads(path.read_text()).get("environment", {}).items():
        os.environ.setdefault(key, value)
    return True
