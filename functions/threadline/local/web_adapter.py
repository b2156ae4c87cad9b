"""An emulator of the AWS Lambda Web Adapter's contract, for ChatFunction (whose adapter layer cannot be fetched here).

What the adapter does in AWS, and so what this does:

1. The function's Handler (`run.sh`) is started with the function's environment; in AWS the adapter is the
   `AWS_LAMBDA_EXEC_WRAPPER` (/opt/bootstrap from the adapter's layer) and the Handler is the web server.
2. The adapter polls `http://127.0.0.1:$AWS_LWA_PORT$AWS_LWA_READINESS_CHECK_PATH` until it answers with a
   status below 500 (AWS_LWA_READINESS_CHECK_MIN_UNHEALTHY_STATUS); only then is the function ready.
3. Each Function URL event (payload format 2.0) becomes an HTTP request to that port: method, rawPath,
   rawQueryString, headers, cookies, body (base64 when isBase64Encoded); the event's requestContext goes along
   as JSON in the `x-amzn-request-context` header, and the invocation's context (its `deadline` in epoch
   milliseconds and, for a traced function, its X-Ray trace header `xray_trace_id`) in
   `x-amzn-lambda-context`.
4. With AWS_LWA_INVOKE_MODE=response_stream the response is streamed back as it is written: first a JSON
   prelude (statusCode, headers, cookies) then the body, chunk by chunk, so Server-Sent Events reach the
   client as the app emits them.
5. The body ends at the function's Timeout, as the invocation does, and the environment is killed, as Lambda
   resets one whose invocation timed out.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from threadline.local.runtime import (
    FunctionSpec,
    lambda_environment,
    log_to_logging,
    read_only_filesystem_environment,
)
from threadline.local.xray import trace_header

READINESS_TIMEOUT_S = 60.0
_MIN_UNHEALTHY_STATUS = 500  # the adapter's default AWS_LWA_READINESS_CHECK_MIN_UNHEALTHY_STATUS


@dataclass
class StreamedResponse:
    """The prelude of a streamed Function URL response, and its body as it arrives."""

    status: int
    headers: dict[str, str]
    chunks: Iterator[bytes]
    cookies: list[str] = field(default_factory=list)
    # Set once the body ran past the function's Timeout: Lambda ended the invocation there, mid-body.
    timed_out: bool = False
    trace_id: str | None = None  # the invocation's X-Ray trace (its Root), when the function is traced


class WebAdapter:
    """One ChatFunction execution environment behind the Web Adapter's contract."""

    def __init__(
        self, spec: FunctionSpec, pinned: Mapping[str, str], *, port: int | None = None, xray_daemon: str = ""
    ) -> None:
        self.spec = spec
        environment = lambda_environment(spec, pinned, xray_daemon)
        if environment.get("AWS_LWA_INVOKE_MODE", "buffered").lower() != "response_stream":
            raise ValueError(f"{spec.logical_id}: only AWS_LWA_INVOKE_MODE=response_stream is emulated")
        if port is not None:
            # One port per environment in AWS; tests that run side by side need their own.
            environment["AWS_LWA_PORT"] = environment["PORT"] = str(port)
        self.port = int(environment.get("AWS_LWA_PORT") or environment.get("PORT") or 8080)
        self.readiness_path = environment.get("AWS_LWA_READINESS_CHECK_PATH", "/")
        script = spec.code_dir / spec.handler
        self.process = subprocess.Popen(
            ["/bin/bash", str(script)],
            # run.sh's `python3` gets Lambda's read-only filesystem, as every local function does.
            env=read_only_filesystem_environment(self.spec, environment),
            cwd=spec.code_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._forward_logs()

    def _forward_logs(self) -> None:
        def pump() -> None:
            assert self.process.stdout is not None
            for raw in iter(self.process.stdout.readline, b""):
                log_to_logging(self.spec.name, raw.decode("utf-8", "replace").rstrip("\n"))

        threading.Thread(target=pump, name=f"log-{self.spec.name}", daemon=True).start()

    def wait_ready(self, timeout_s: float = READINESS_TIMEOUT_S) -> float:
        """Poll the readiness path until the app answers below 500; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.spec.name}: the Handler exited with {self.process.returncode}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", self.readiness_path)
                status = connection.getresponse().status
                connection.close()
                if status < _MIN_UNHEALTHY_STATUS:
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.spec.name}: {self.readiness_path} not ready after {timeout_s}s")

    def invoke(self, event: dict[str, Any]) -> StreamedResponse:
        """Turn a Function URL event (payload 2.0) into an HTTP request and stream the response back."""
        http_context = event["requestContext"]["http"]
        path = event.get("rawPath") or http_context.get("path", "/")
        if event.get("rawQueryString"):
            path += "?" + event["rawQueryString"]
        # The adapter forwards the event's requestContext as JSON in `x-amzn-request-context`, in place of any
        # header of that name the client sent: the app reads the caller's address from it (api/access.py).
        # The same for `x-amzn-lambda-context`, below.
        sent = {"x-amzn-request-context", "x-amzn-lambda-context"}
        headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() not in sent}
        headers["x-amzn-request-context"] = json.dumps(event["requestContext"], separators=(",", ":"))
        # And the invocation's context as `x-amzn-lambda-context` (lambda_http's Context as JSON), whose `deadline`
        # (epoch ms) is when Lambda stops the function: the app reads it to finish in time (api/invocation.py).
        deadline = time.time() + self.spec.timeout_s
        # Lambda's trace header for the invocation when the function is traced (`Tracing: Active`).
        trace = trace_header(sampled=True) if self.spec.traced else None
        headers["x-amzn-lambda-context"] = json.dumps(
            {
                "request_id": str(uuid.uuid4()),
                "deadline": int(deadline * 1000),
                "invoked_function_arn": self.spec.arn,
                "xray_trace_id": trace,
                "client_context": None,
                "identity": None,
                "env_config": {
                    "function_name": self.spec.name,
                    "memory": self.spec.memory_mb,
                    "version": "$LATEST",
                    "log_stream": "",
                    "log_group": f"/aws/lambda/{self.spec.name}",
                },
            },
            separators=(",", ":"),
        )
        if event.get("cookies"):
            headers["cookie"] = "; ".join(event["cookies"])
        body = event.get("body")
        data = (base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()) if body else None
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.spec.timeout_s)
        connection.request(http_context["method"], path, body=data, headers=headers)
        sock = connection.sock  # the response reads through it; getresponse() may drop the connection's reference
        response = connection.getresponse()
        response_headers = {k.lower(): v for k, v in response.getheaders() if k.lower() != "set-cookie"}
        cookies = [v for k, v in response.getheaders() if k.lower() == "set-cookie"]

        def chunks() -> Iterator[bytes]:
            # The body ends at the function's Timeout, as the invocation does in AWS; the environment is then
            # reset (a timed-out invocation's is), so this one stops.
            try:
                while True:
                    remaining = deadline - time.time()
                    if remaining <= 0:
                        raise TimeoutError
                    if sock is not None:
                        sock.settimeout(remaining)
                    chunk = response.read1(65536)
                    if not chunk:
                        return
                    yield chunk
            except TimeoutError:
                streamed.timed_out = True
                self._kill()
            finally:
                connection.close()

        root = trace.split(";")[0].removeprefix("Root=") if trace else None
        streamed = StreamedResponse(response.status, response_headers, chunks(), cookies, trace_id=root)
        return streamed

    def prelude(self, response: StreamedResponse) -> bytes:
        """The bytes Lambda's streaming integration sends before the body: JSON prelude and 8 NUL bytes."""
        return json.dumps({"statusCode": response.status, "headers": response.headers, "cookies": response.cookies})\
            .encode() + b"\0" * 8  # fmt: skip

    def close(self) -> None:
        """Stop the environment."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def _kill(self) -> None:
        """End the environment at once, as Lambda does one whose invocation timed out (no graceful stop)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
