"""Where the local cloud's traces go: a UDP socket in place of the X-Ray daemon, and Lambda's trace header.

template.yaml deploys every function with `Tracing: Active`. In Lambda that means LAMBDA_TASK_ROOT (so
Powertools enables the Tracer), a daemon at AWS_XRAY_DAEMON_ADDRESS, and a `_X_AMZN_TRACE_ID` header the
runtime sets before each invocation; the X-Ray SDK then wraps what threadline/observability.py patches (AWS
calls, httpx) and sends each finished subsegment to the daemon over UDP. The local
runtime gives its workers the same, so a function runs here with the patched libraries it has in AWS. The
daemon itself (a Go binary AWS distributes outside any package index) cannot run here; this socket receives
what the SDK sends and keeps the latest documents for tests and benchmarks to read.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections import deque
from typing import Any

# Documents kept: the latest ones (a long local run would otherwise grow without bound).
KEEP = 10_000


def trace_header(sampled: bool) -> str:
    """A `_X_AMZN_TRACE_ID` value as Lambda's runtime sets it for one invocation: a new root and parent id.

    Locally every invocation of a traced function is sampled (AWS samples the first request each second and 5%
    of the rest by default): the code path is the same, only how many traces are kept differs.
    """
    root = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"
    return f"Root={root};Parent={os.urandom(8).hex()};Sampled={int(sampled)}"


class XRayDaemon:
    """A UDP socket where the X-Ray daemon would listen, on 127.0.0.1 and a free port.

    Each datagram the SDK sends is a `{"format": "json", "version": 1}` header line and one segment or
    subsegment document; the documents are kept in arrival order (the latest `KEEP`).
    """

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self._documents: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="xray-daemon", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """AWS_XRAY_DAEMON_ADDRESS for the functions."""
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def documents(self, trace_id: str | None = None) -> list[dict[str, Any]]:
        """The documents received so far (those of one trace when `trace_id` is given)."""
        with self._lock:
            kept = list(self._documents)
        return [d for d in kept if trace_id is None or d.get("trace_id") == trace_id]

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            header, _, body = datagram.partition(b"\n")
            try:
                if json.loads(header).get("format") != "json":
                    continue
                document = json.loads(body)
            except ValueError:
                continue  # not the daemon protocol: dropped, as the daemon drops it
            with self._lock:
                self._documents.append(document)

    def close(self) -> None:
        """Stop receiving; what arrived stays readable."""
        self._stop.set()
        self._thread.join()
        self._socket.close()
