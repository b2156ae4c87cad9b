"""What a request knows of its invocation (api/invocation.py): the answer's deadline, the invocation's, less the time
kept for saving; and the X-Ray trace the Lambda Web Adapter passes on."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import pytest
from starlette.requests import Request

from threadline.api.invocation import (
    LAMBDA_CONTEXT_HEADER,
    SAVE_MARGIN_S,
    TRACE_VARIABLE,
    InvocationTrace,
    answer_deadline,
)


class _Context:
    """Mangum's `aws.context`: the Lambda context object."""

    def __init__(self, remaining_ms: int) -> None:
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


def _request(headers: dict[str, str] | None = None, **scope: Any) -> Request:
    raw = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw, **scope})


@pytest.mark.unit
def test_under_mangum_the_lambda_contexts_remaining_time_decides() -> None:
    # Given ApiFunction's request with 30 s left in its invocation
    before = time.monotonic()
    deadline = answer_deadline(_request(**{"aws.context": _Context(30_000)}))
    # Then the model must finish SAVE_MARGIN_S before the invocation's end
    assert deadline is not None
    assert before + 30 - SAVE_MARGIN_S <= deadline <= time.monotonic() + 30 - SAVE_MARGIN_S


@pytest.mark.unit
def test_under_the_web_adapter_the_lambda_context_header_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given ChatFunction's environment and the adapter's context header with 120 s left
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ChatFunction")
    header = json.dumps({"request_id": "r", "deadline": int((time.time() + 120) * 1000)})
    deadline = answer_deadline(_request({LAMBDA_CONTEXT_HEADER: header}))
    # Then the deadline is 120 s less the margin from now (to the header's millisecond)
    assert deadline is not None
    assert abs(deadline - (time.monotonic() + 120 - SAVE_MARGIN_S)) < 0.1


@pytest.mark.unit
@pytest.mark.parametrize("header", ["not json", "[1, 2]", '{"deadline": "soon"}', "{}"])
def test_a_header_that_is_not_the_adapters_sets_no_deadline(monkeypatch: pytest.MonkeyPatch, header: str) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ChatFunction")
    assert answer_deadline(_request({LAMBDA_CONTEXT_HEADER: header})) is None


@pytest.mark.unit
def test_outside_lambda_the_header_is_a_clients_and_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no Lambda environment (uvicorn on a laptop): the header can only be a client's
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    header = json.dumps({"deadline": int(time.time() * 1000)})
    # Then it sets no deadline, as no header does
    assert answer_deadline(_request({LAMBDA_CONTEXT_HEADER: header})) is None
    assert answer_deadline(_request()) is None


@pytest.mark.unit
@pytest.mark.parametrize("in_lambda", [True, False])
def test_the_adapters_trace_header_becomes_the_processs_only_in_lambda(
    monkeypatch: pytest.MonkeyPatch, in_lambda: bool
) -> None:
    # Given a request carrying the adapter's context with the invocation's trace header
    if in_lambda:
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ChatFunction")
    else:
        monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.setenv(TRACE_VARIABLE, "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=1")
    trace = "Root=1-5f84c7a5-4b5b9d7c1e0a3f6d2c8b1a90;Parent=53995c3f42cd8ad8;Sampled=1"
    header = json.dumps({"request_id": "r", "xray_trace_id": trace})
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(os.environ[TRACE_VARIABLE])

    # When the middleware passes it on
    scope = {"type": "http", "headers": [(LAMBDA_CONTEXT_HEADER.encode(), header.encode())]}
    asyncio.run(InvocationTrace(app)(scope, None, None))

    # Then in Lambda the app runs under the invocation's trace; elsewhere the header is a client's and ignored
    assert seen == [trace if in_lambda else os.environ[TRACE_VARIABLE]]
    assert in_lambda or seen[0].startswith("Root=1-00000000")


@pytest.mark.unit
def test_the_adapters_context_is_parsed_once_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a request the trace middleware has already seen, with 60 s left in its invocation
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ChatFunction")
    header = json.dumps({"deadline": int((time.time() + 60) * 1000)})
    scope: dict[str, Any] = {"type": "http", "headers": [(LAMBDA_CONTEXT_HEADER.encode(), header.encode())]}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    asyncio.run(InvocationTrace(app)(scope, None, None))

    # When its header no longer parses, and the chat asks for its deadline
    scope["headers"] = [(LAMBDA_CONTEXT_HEADER.encode(), b"not json")]
    deadline = answer_deadline(Request(scope))

    # Then the deadline comes from the context the middleware parsed, not from a second parse
    assert deadline is not None and abs(deadline - (time.monotonic() + 60 - SAVE_MARGIN_S)) < 0.1
