"""Route every invocation moto receives to the local Lambda runtime (local/runtime.py).

Every invoke path in moto (the Invoke API, Step Functions `lambda:invoke` and Lambda-ARN tasks, S3
notifications) ends in `moto.awslambda.models.LambdaFunction.invoke` or `._invoke_lambda`, which would
start Docker. `install()` replaces both: the function runs in its own worker process with its own
environment and limits. A synchronous invocation's error comes back as Lambda reports it (`errorType` =
the exception's class name, or Lambda's own such as `Sandbox.Timedout`), with `X-Amz-Function-Error:
Unhandled`, so Step Functions Retry/Catch match on our exception names. InvocationType=Event is accepted
(202) and run with Lambda's asynchronous retries and destinations (local/async_invoke.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from threadline.local.async_invoke import AsyncInvoker
from threadline.local.deployment import Deployment, FunctionInfo
from threadline.local.runtime import FunctionSpec, Invocation, LambdaRuntime, RequestTooLarge
from threadline.local.worker import LocalLambdaContext

__all__ = ["Invocation", "LocalLambdaContext", "install", "register", "spec_for", "uninstall"]

_ORIGINAL: dict[str, Any] = {}
# Function ARN -> the runtime (and its asynchronous invoker) of the local cloud that deployed it.
_ROUTES: dict[str, tuple[LambdaRuntime, AsyncInvoker]] = {}


def spec_for(function: FunctionInfo, region: str, *, python: str = "") -> FunctionSpec:
    """The runtime's view of a deployed function (its code and layers from the template's local folders)."""
    if function.code_dir is None:
        raise ValueError(f"{function.logical_id} has no local CodeUri folder")
    return FunctionSpec(
        logical_id=function.logical_id,
        name=function.name,
        arn=function.arn,
        handler=function.handler,
        environment=dict(function.environment),
        timeout_s=function.timeout_s,
        memory_mb=function.memory_mb,
        code_dir=Path(function.code_dir),
        layer_dirs=function.layer_dirs,
        external_layers=function.external_layers,
        python=python,
        region=region,
        traced=function.tracing,
    )


def register(runtime: LambdaRuntime, invoker: AsyncInvoker, deployment: Deployment) -> None:
    """Make moto's invocations of the deployment's functions run in `runtime`."""
    for function in deployment.functions.values():
        runtime.register(spec_for(function, deployment.region))
        _ROUTES[function.arn] = (runtime, invoker)


def _route(arn: str) -> tuple[LambdaRuntime, AsyncInvoker]:
    try:
        return _ROUTES[arn]
    except KeyError:
        from moto.awslambda.exceptions import UnknownFunctionException

        raise UnknownFunctionException(f"{arn} is not a function of the local cloud") from None


def _too_large(exc: RequestTooLarge) -> Exception:
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError("RequestEntityTooLargeException", str(exc))
    error.code = 413
    return error


def _invoke_api(self: Any, body: str | bytes, request_headers: Any, response_headers: Any) -> str | bytes:
    # moto's LambdaFunction.invoke: the Invoke API, which Step Functions tasks call too.
    runtime, invoker = _route(self.function_arn)
    payload = body or b"{}"
    try:
        if request_headers.get("x-amz-invocation-type", "RequestResponse") == "Event":
            invoker.invoke(self.function_arn, payload)
            return b""
        result = runtime.invoke(self.function_arn, payload)
    except RequestTooLarge as exc:
        raise _too_large(exc) from None
    if result.errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    return json.dumps(result.payload).encode()


def _invoke_lambda(self: Any, event: str | dict[str, Any] | None = None) -> tuple[str, bool, str]:
    # moto's other invoke paths (S3 and SNS notifications) call this with a JSON string or a dict.
    runtime, _ = _route(self.function_arn)
    payload = event if isinstance(event, str | bytes) else json.dumps(event or {})
    result = runtime.invoke(self.function_arn, payload)
    return json.dumps(result.payload), result.errored, ""


def install() -> None:
    """Route moto's Lambda invocations to the local runtime (idempotent)."""
    from moto.awslambda.models import LambdaFunction

    from threadline.local import moto_fixes

    moto_fixes.install()
    if "invoke" not in _ORIGINAL:
        _ORIGINAL["invoke"] = LambdaFunction.invoke
        _ORIGINAL["_invoke_lambda"] = LambdaFunction._invoke_lambda
        LambdaFunction.invoke = _invoke_api  # type: ignore[method-assign]
        LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]


def uninstall() -> None:
    """Give moto its own invoke back."""
    from moto.awslambda.models import LambdaFunction

    if "invoke" in _ORIGINAL:
        LambdaFunction.invoke = _ORIGINAL.pop("invoke")  # type: ignore[method-assign]
        LambdaFunction._invoke_lambda = _ORIGINAL.pop("_invoke_lambda")  # type: ignore[method-assign]
