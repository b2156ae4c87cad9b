"""How long an answer may take: the invocation's own time limit, read from the request.

In AWS a function that runs out of time is stopped mid-answer: the stream ends with neither `done` nor
`error`, a JSON route's client gets API Gateway's bare 503, and the answer is never saved. So each chat is
given a deadline `SAVE_MARGIN_S` before the invocation's, and a model still writing then is stopped as one
that failed (domain/chat.py): the exchange is saved with the error and the client gets the API's own error.

Where the invocation's deadline comes from:
- ApiFunction (Mangum): the Lambda context in the ASGI scope, `scope["aws.context"]`.
- ChatFunction (the Lambda Web Adapter): the `x-amzn-lambda-context` header, the invocation's context as
  JSON, whose `deadline` is in epoch milliseconds. Read only in a Lambda environment: elsewhere a client could
  send the header, and nothing stands between it and the app.
- Anywhere else (uvicorn on a laptop, tests): none, and the model's own timeout applies.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from starlette.requests import HTTPConnection

# Time kept, after the model is stopped, for saving the exchange, sending `error` and handing the classify and
# metrics messages to their queue (at most EVENTS_FLUSH_TIMEOUT_S) before the invocation's own deadline.
SAVE_MARGIN_S = 3.0
LAMBDA_CONTEXT_HEADER = "x-amzn-lambda-context"


def answer_deadline(connection: HTTPConnection) -> float | None:
    """The time.monotonic() by which the model must have finished answering this request; None without a limit."""
    remaining = _remaining_s(connection)
    return None if remaining is None else time.monotonic() + remaining - SAVE_MARGIN_S


def _remaining_s(connection: HTTPConnection) -> float | None:
    context: Any = connection.scope.get("aws.context")
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining_ms):
        return float(remaining_ms()) / 1000
    header = connection.headers.get(LAMBDA_CONTEXT_HEADER)
    if header is None or not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return None
    try:
        found = json.loads(header)
        deadline_ms = found.get("deadline", found.get("deadline_ms"))
        return float(deadline_ms) / 1000 - time.time()
    except (ValueError, TypeError, AttributeError):
        return None  # not the adapter's JSON: no limit known, as without the header
