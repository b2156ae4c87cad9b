"""ApiFunction: the FastAPI app behind API Gateway (HTTP API) through Mangum."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from threadline import startup
from threadline.api.app import create_app
from threadline.observability import logger, tracer


@lru_cache(maxsize=1)
def _asgi() -> Mangum:
    # Built on the first invocation and reused while the execution environment stays warm.
    return Mangum(create_app(), lifespan="off")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Serve one API Gateway v2 event."""
    # Mangum types its own LambdaContext protocol; Powertools' class is the same object at run time.
    response: dict[str, Any] = _asgi()(event, context)  # type: ignore[arg-type]
    return response


# Last: every module this function needs is loaded (threadline/startup.py).
startup.complete()
