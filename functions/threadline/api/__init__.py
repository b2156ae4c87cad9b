"""The HTTP API: one FastAPI app, served by uvicorn (chat, streaming) and Mangum (JSON routes).

Importing this package imports FastAPI with pydantic's schema builds deferred (`deferred_schema_builds`).
FastAPI's import defines the OpenAPI document's ~50 pydantic models (fastapi.openapi.models), and building their
validators was its largest single cost: 145 ms of self time of ApiFunction's ~1 s import under `-X importtime`
here, against 36 ms deferred. They are used only when the OpenAPI document is built (`/openapi.json`, `/docs`,
the contract tests), and a deferred model builds itself on its first use. The app's own models are not deferred:
FastAPI builds every route's body and response validators when the route is registered anyway.

A deferred build is not thread-safe in this pydantic (2.13; the lock came later, pydantic#13438): two threads
validating with one model's first build may race. These models are built only by `app.openapi()`, which
FastAPI's `/openapi.json` route runs in the event loop, one thread. That is also why the MCP SDK's models stay
eager: its first request builds them with tool calls in the threadpool (deferred, that request took 674 ms
against 858 ms here, and the next requests paid the rest).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def deferred_schema_builds() -> Iterator[None]:
    """Pydantic models defined inside the block build their validators on first use instead of at definition.

    Pydantic has no public switch for models defined in someone else's module, so this sets the default of
    `defer_build` (what a model's `model_config` does not set) for the block's duration and restores it after;
    with another pydantic whose internals differ, models build eagerly, as they always did.
    tests/integration/test_cold_imports.py checks that it takes effect with the pinned pydantic.
    """
    try:
        from pydantic._internal._config import config_defaults
    except ImportError:  # pragma: no cover - another pydantic: nothing deferred, nothing broken
        yield
        return
    previous = config_defaults.get("defer_build", False)
    config_defaults["defer_build"] = True
    try:
        yield
    finally:
        config_defaults["defer_build"] = previous


with deferred_schema_builds():
    import fastapi  # noqa: F401  # first imported here: its OpenAPI models are defined deferred
