"""moto in server mode on 127.0.0.1, with Step Functions really executing."""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlsplit

import requests

# moto reads these at request time; the values only have to be consistent.
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


# Ports of the moto servers this process started: their backends (SES's sent mail) can be read directly.
_IN_PROCESS_PORTS: set[int] = set()
_LOOPBACK = ("127.0.0.1", "localhost")


def serves_in_process(endpoint: str) -> bool:
    """Whether `endpoint` is a moto server running in this process."""
    parts = urlsplit(endpoint)
    return parts.hostname in _LOOPBACK and parts.port in _IN_PROCESS_PORTS


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_moto(port: int | None = None) -> tuple[Any, str]:
    """Start moto in this process (so its Lambda invoke can be routed to our handlers); returns (server, URL)."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from threadline.local import moto_fixes

    moto_fixes.install()
    chosen = port or free_port()
    for key, value in _FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    # The state machine interpreter calls back into the server at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(chosen)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=chosen, verbose=False)
    server.start()
    _IN_PROCESS_PORTS.add(chosen)
    url = f"http://127.0.0.1:{chosen}"
    response = requests.post(
        f"{url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
    )
    response.raise_for_status()
    return server, url
