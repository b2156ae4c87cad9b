"""Run our real Lambda handlers in-process whenever moto invokes a function.

Every invoke path in moto (the Invoke API, Step Functions `lambda:invoke` and Lambda-ARN tasks, S3
notifications) ends in `moto.awslambda.models.LambdaFunction._invoke_lambda`, which would start Docker.
`install()` replaces it with a call of the function's `Handler` in this process, with the function's
environment applied. An exception comes back the way Lambda reports it (`errorType` = the exception's
class name), so Step Functions Retry/Catch match on our exception names.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from threadline.local.deployment import FunctionInfo
from threadline.observability import logger

_LOG = logging.getLogger("threadline.local.invoke")
_ENV_LOCK = threading.RLock()
# Variables the local cloud pins for every handler (the endpoint, a test's database), over the function's own.
_OVERRIDES: dict[str, str] = {}
_ORIGINAL: dict[str, Any] = {}


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def resolve_handler(handler: str) -> Callable[[Any, Any], Any]:
    """The callable a `module.path.function` Handler string names."""
    module_name, _, attribute = handler.rpartition(".")
    function: Callable[[Any, Any], Any] = getattr(importlib.import_module(module_name), attribute)
    return function


def reset_caches(*, close: bool = False) -> None:
    """Forget cached settings and containers, so handlers see the current environment.

    `close` also closes the cached container's connections; only safe when no handler is running.
    """
    from threadline.bootstrap import get_container
    from threadline.settings import get_settings

    if close and get_container.cache_info().currsize:
        get_container().close()
    get_settings.cache_clear()
    get_container.cache_clear()


def set_overrides(values: Mapping[str, str]) -> None:
    """Pin environment variables for every handler run (e.g. AWS_ENDPOINT_URL, a test's DATABASE_URL)."""
    with _ENV_LOCK:
        _OVERRIDES.clear()
        _OVERRIDES.update(values)
        _apply({})


def _apply(function_env: Mapping[str, str]) -> None:
    # One process hosts every function: its environment is the function's plus the pinned overrides.
    # Caches are reset only when something really changes, so warm handlers keep their connections.
    wanted = {**function_env, **_OVERRIDES}
    changed = {key: value for key, value in wanted.items() if os.environ.get(key) != value}
    if changed:
        os.environ.update(changed)
        reset_caches()


def run_handler(
    handler: str, event: Any, *, environment: Mapping[str, str], context: LocalLambdaContext
) -> tuple[str, bool]:
    """Call a handler the way Lambda does; returns (JSON payload, errored)."""
    with _ENV_LOCK:
        _apply(environment)
    try:
        result = resolve_handler(handler)(event, context)
    except Exception as exc:  # every failure goes back to the caller, as Lambda reports it
        _LOG.warning("handler %s raised %s", handler, type(exc).__name__, exc_info=True)
        error = {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_tb(exc.__traceback__),
        }
        return json.dumps(error), True
    finally:
        # In Lambda each function has its own process; here they share one Logger, so the keys that
        # inject_lambda_context appended for this invocation must not leak into later log lines.
        logger.clear_state()
    return json.dumps(result, default=str), False


def _invoke_in_process(self: Any, event: str | dict[str, Any] | None = None) -> tuple[str, bool, str]:
    # moto passes the already-decoded body on the Invoke path and a JSON string elsewhere.
    payload = json.loads(event) if isinstance(event, str | bytes) and event else (event or {})
    context = LocalLambdaContext(
        function_name=self.function_name,
        invoked_function_arn=self.function_arn,
        memory_limit_in_mb=int(self.memory_size),
        timeout_s=int(self.timeout),
    )
    body, errored = run_handler(self.handler, payload, environment=dict(self.environment_vars or {}), context=context)
    return body, errored, ""


def install() -> None:
    """Route moto's Lambda invocations to our handlers (idempotent)."""
    from moto.awslambda.models import LambdaFunction

    from threadline.local import moto_fixes

    moto_fixes.install()
    if "_invoke_lambda" not in _ORIGINAL:
        _ORIGINAL["_invoke_lambda"] = LambdaFunction._invoke_lambda
        LambdaFunction._invoke_lambda = _invoke_in_process  # type: ignore[method-assign]


def uninstall() -> None:
    """Give moto its own invoke back."""
    from moto.awslambda.models import LambdaFunction

    if "_invoke_lambda" in _ORIGINAL:
        LambdaFunction._invoke_lambda = _ORIGINAL.pop("_invoke_lambda")  # type: ignore[method-assign]


@dataclass(frozen=True)
class Invocation:
    """What one local invocation returned."""

    payload: Any
    errored: bool

    @property
    def error_type(self) -> str | None:
        """The exception class name of a failed invocation."""
        if self.errored and isinstance(self.payload, dict):
            return str(self.payload.get("errorType"))
        return None


def invoke_function(function: FunctionInfo, event: Any) -> Invocation:
    """Invoke a deployed function's handler in this process, as the Lambda service would."""
    context = LocalLambdaContext(
        function_name=function.name,
        invoked_function_arn=function.arn,
        memory_limit_in_mb=1024,
        timeout_s=function.timeout_s,
    )
    body, errored = run_handler(function.handler, event, environment=function.environment, context=context)
    return Invocation(payload=json.loads(body), errored=errored)
