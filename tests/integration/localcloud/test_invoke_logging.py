"""In-process invocations share one Logger; a handler's Lambda context must not outlive its invocation."""

from __future__ import annotations

import json

import pytest

from threadline.local.invoke import LocalLambdaContext, run_handler
from threadline.observability import logger


@pytest.mark.integration
def test_lambda_context_keys_do_not_leak_into_later_log_lines() -> None:
    # Given a handler decorated with inject_lambda_context
    context = LocalLambdaContext(
        function_name="LoggedFunction",
        invoked_function_arn="arn:aws:lambda:us-east-1:1:function:x",
        memory_limit_in_mb=128,
        timeout_s=3,
    )
    # When it runs in-process
    body, errored = run_handler("tests.fixtures.localcloud.handlers.logged", {}, environment={}, context=context)
    # Then it saw its context while it ran, and the shared logger no longer carries it afterwards
    assert not errored and "function_name" in json.loads(body)["keys"]
    assert "function_name" not in logger.get_current_keys()
