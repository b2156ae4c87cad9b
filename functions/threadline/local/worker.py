"""One local Lambda execution environment: a process that imports a function's Handler once and serves invocations.

The local runtime (local/runtime.py) starts this file as `python -u -P worker.py REQUEST_FD RESPONSE_FD` with
exactly the function's environment (and Lambda's read-only filesystem, local/lambda_site), as Lambda starts its
runtime. Invocations arrive on REQUEST_FD and results leave on RESPONSE_FD as length-prefixed JSON frames, so
the handler's own stdout and stderr stay its logs.
This module is the runtime's bootstrap inside the function's code, so it imports nothing but the standard
library until it imports the Handler.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

FRAME_HEADER = struct.Struct("!I")  # the length of the JSON message that follows
# Written to stdout and stderr after each invocation, so the runtime knows the invocation's logs are all
# forwarded before it writes END and REPORT (as Lambda's log order is). Never shown.
END_OF_LOGS = "\x1e--threadline-end-of-invocation-logs--\x1e"


def write_frame(fd: int, message: dict[str, Any]) -> None:
    """Write one JSON message, prefixed by its length."""
    body = json.dumps(message).encode()
    data = FRAME_HEADER.pack(len(body)) + body
    while data:
        written = os.write(fd, data)
        data = data[written:]


def read_exact(fd: int, size: int) -> bytes:
    """Read exactly `size` bytes; EOFError when the other side closed the pipe."""
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("pipe closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> dict[str, Any]:
    """Read one message written by `write_frame`."""
    (size,) = FRAME_HEADER.unpack(read_exact(fd, FRAME_HEADER.size))
    message: dict[str, Any] = json.loads(read_exact(fd, size))
    return message


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: int
    function_version: str = "$LATEST"
    aws_request_id: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"
    deadline_ms: int = 0  # epoch milliseconds, as Lambda's runtime API passes it

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        if not self.deadline_ms:
            self.deadline_ms = int(time.time() * 1000) + self.timeout_s * 1000

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, self.deadline_ms - int(time.time() * 1000))


def error_payload(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """An exception as Lambda's Python runtime reports it."""
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _load_handler(name: str) -> Any:
    module_name, _, attribute = name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        # Lambda's wording, so a missing module reads the same here and in CloudWatch.
        raise _InitError(
            {
                "errorType": "Runtime.ImportModuleError",
                "errorMessage": f"Unable to import module '{module_name}': {exc}",
                "stackTrace": [],
            }
        ) from exc
    except Exception as exc:
        raise _InitError(error_payload(exc)) from exc
    if not hasattr(module, attribute):
        raise _InitError(
            {
                "errorType": "Runtime.HandlerNotFound",
                "errorMessage": f"Handler '{attribute}' missing on module '{module_name}'",
                "stackTrace": [],
            }
        )
    return getattr(module, attribute)


class _InitError(Exception):
    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload["errorMessage"])
        self.payload = payload


def _apply_environment(environment: dict[str, str]) -> None:
    # The local cloud changed a pinned value (a test's database): the process takes the new environment and
    # forgets what it built from the old one, as a new execution environment would.
    os.environ.clear()
    os.environ.update(environment)
    bootstrap = sys.modules.get("threadline.bootstrap")
    settings = sys.modules.get("threadline.settings")
    if bootstrap is not None:
        get_container = bootstrap.get_container
        if get_container.cache_info().currsize:
            try:
                get_container().close()
            except Exception as exc:  # a dropped test database must not break the next invocation
                sys.stderr.write(f"closing the previous container failed: {exc!r}\n")
        get_container.cache_clear()
    if settings is not None:
        settings.get_settings.cache_clear()


def _marshal(result: Any) -> str:
    try:
        return json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise _MarshalError(f"Unable to marshal response: {exc}") from exc


class _MarshalError(Exception):
    pass


def serve(request_fd: int, response_fd: int) -> None:
    """Import the Handler (`_HANDLER`), report readiness, then answer invocations until the pipe closes.

    Writes outside Lambda's /tmp already fail here: local/lambda_site/sitecustomize.py ran at startup."""
    started = time.monotonic()
    init_error: dict[str, Any] | None = None
    handler: Any = None
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except _InitError as exc:
        init_error = exc.payload
    write_frame(response_fd, {"ready": True, "init_ms": (time.monotonic() - started) * 1000, "init_error": init_error})
    while True:
        try:
            request = read_frame(request_fd)
        except EOFError:
            return
        if request.get("environment") is not None:
            _apply_environment(request["environment"])
        if request.get("trace_header"):
            # As Lambda's runtime does before each invocation; the X-Ray SDK reads it when the handler starts.
            os.environ["_X_AMZN_TRACE_ID"] = request["trace_header"]
        if init_error is not None:
            write_frame(response_fd, {"errored": True, "payload": json.dumps(init_error)})
            continue
        context = LocalLambdaContext(
            function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            invoked_function_arn=request["function_arn"],
            memory_limit_in_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
            timeout_s=int(request["timeout_s"]),
            aws_request_id=request["request_id"],
            log_stream_name=os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
            deadline_ms=int(request["deadline_ms"]),
        )
        try:
            body = _marshal(handler(json.loads(request["event"]), context))
            errored = False
        except _MarshalError as exc:
            body, errored = json.dumps(error_payload(exc, "Runtime.MarshalError")), True
        except Exception as exc:  # every failure goes back to the caller, as Lambda reports it
            traceback.print_exc()
            body, errored = json.dumps(error_payload(exc)), True
        for stream in (sys.stdout, sys.stderr):
            stream.write(END_OF_LOGS + "\n")
            stream.flush()
        write_frame(response_fd, {"errored": errored, "payload": body})


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
