"""What a request knows of the Lambda invocation serving it: its deadline and its X-Ray trace.

Where the invocation's context comes from:
- ApiFunction (Mangum): the Lambda context object in the ASGI scope, `scope["aws.context"]`; Lambda's
  runtime sets the trace header (`_X_AMZN_TRACE_ID`) for the handler itself.
- ChatFunction (the Lambda Web Adapter): the `x-amzn-lambda-context` header, the invocation's context as
  JSON (lambda_http's Context: `deadline` in epoch milliseconds, `xray_trace_id`, ...). Read only in a Lambda
  environment: elsewhere a client could send the header, and nothing stands between it and the app.
- Anywhere else (uvicorn on a laptop, tests): none.

The deadline. In AWS a function that runs out of time is stopped mid-answer: the stream ends with neither
`done` nor `error`, a JSON route's client gets API Gateway's bare 503, and the answer is never saved. So each
chat is given a deadline `SAVE_MARGIN_S` before the invocation's, and a model still writing then is stopped as
one that failed (domain/chat.py): the exchange is saved with the error and the client gets the API's own error.

The trace. Under the adapter the app is a web server, not a handler: no runtime sets `_X_AMZN_TRACE_ID` for
it, and the X-Ray SDK discarded every subsegment (the model's HTTP call, the queue sends) as "Lambda worker
still initializing". `InvocationTrace` sets it from the request's context, as Lambda's runtime does for a
handler; a process-wide variable is right here because an execution environment serves one invocation at a
time.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

# Time kept, after the model is stopped, for saving the exchange, sending `error` and handing the classify and
# metrics messages to their queue (at most EVENTS_FLUSH_TIMEOUT_S) before the invocation's own deadline.
SAVE_MARGIN_S = 3.0
LAMBDA_CONTEXT_HEADER = "x-amzn-lambda-context"
TRACE_VARIABLE = "_X_AMZN_TRACE_ID"


# Where a request's parsed context is kept: `InvocationTrace` reads it first, a chat's deadline again.
_PARSED = "threadline.lambda_context"


def adapter_context(connection: HTTPConnection) -> dict[str, Any] | None:
    """The invocation's context the Lambda Web Adapter sent with this request; None outside Lambda, without
    the header, or when it is not a JSON object. Parsed once per request, then kept in its scope."""
    scope = connection.scope
    if _PARSED not in scope:
        scope[_PARSED] = _parse(connection)
    found: dict[str, Any] | None = scope[_PARSED]
    return found


def _parse(connection: HTTPConnection) -> dict[str, Any] | None:
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # first: outside Lambda no request parses its headers
        return None
    header = connection.headers.get(LAMBDA_CONTEXT_HEADER)
    if header is None:
        return None
    try:
        found = json.loads(header)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def answer_deadline(connection: HTTPConnection) -> float | None:
    """The time.monotonic() by which the model must have finished answering this request; None without a limit."""
    remaining = _remaining_s(connection)
    return None if remaining is None else time.monotonic() + remaining - SAVE_MARGIN_S


def _remaining_s(connection: HTTPConnection) -> float | None:
    context: Any = connection.scope.get("aws.context")
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining_ms):
        return float(remaining_ms()) / 1000
    found = adapter_context(connection)
    if found is None:
        return None
    deadline_ms: Any = found.get("deadline", found.get("deadline_ms"))
    try:
        return float(deadline_ms) / 1000 - time.time()
    except (ValueError, TypeError):
        return None  # not the adapter's context: no limit known, as without the header


class InvocationTrace:
    """ASGI middleware: under the Lambda Web Adapter, each request's X-Ray trace header becomes the process's
    `_X_AMZN_TRACE_ID`, which the X-Ray SDK reads for every subsegment (a no-op without the adapter's context)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Adopt the request's trace, then serve it."""
        if scope["type"] == "http":
            found = adapter_context(HTTPConnection(scope))
            trace = found.get("xray_trace_id") if found else None
            if isinstance(trace, str) and trace:
                os.environ[TRACE_VARIABLE] = trace
        await self.app(scope, receive, send)
