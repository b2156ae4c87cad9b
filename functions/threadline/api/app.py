"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from threadline import __version__, startup
from threadline.api.cors import CorsMiddleware
from threadline.api.docs import mount_docs
from threadline.api.errors import document_error_schema, install_error_handlers
from threadline.api.invocation import InvocationTrace
from threadline.api.reach import mount_reach
from threadline.api.routing import LazyRouters, LoadRouters
from threadline.api.web import mount_web
from threadline.bootstrap import Container, get_container


class App(FastAPI):
    """The FastAPI app, with its router modules loaded as requests need them (`routers`)."""

    routers: LazyRouters

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document, of every route: each router module is loaded first."""
        self.routers.load_all()
        return super().openapi()


def create_app(container: Container | None = None) -> App:
    """Build the app around a container (the process-wide one unless a test passes its own)."""
    resolved = container or get_container()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if container is None:
            resolved.close()

    app = App(
        title="Threadline",
        version=__version__,
        description="Multi-tenant support chatbots grounded in each customer's own documents.",
        lifespan=lifespan,
        docs_url=None,  # mount_docs serves /docs with local assets
        redoc_url=None,
    )
    app.state.container = resolved
    install_error_handlers(app)
    document_error_schema(app)
    app.routers = LazyRouters(app)
    mount_reach(app, resolved)
    mount_docs(app)
    mount_web(app)
    # Innermost: what the others do needs no router, and a preflight loads none.
    app.add_middleware(LoadRouters, routers=app.routers)
    # Under the Lambda Web Adapter, the invocation's X-Ray trace for everything the request calls.
    app.add_middleware(InvocationTrace)
    # Outermost, so preflights never reach authentication and error responses carry the CORS headers too.
    app.add_middleware(CorsMiddleware, container=resolved)
    if container is None:
        # The process-wide app (Lambda, uvicorn) is built once; what exists now lives as long as the process.
        freeze_startup_objects()
    return app


def freeze_startup_objects() -> None:
    """Take every object alive now out of the cyclic garbage collector's walks (gc.freeze), and end the
    environment's startup (threadline/startup.py: ChatFunction's uvicorn calls `create_app` after importing it).

    A full collection walks every tracked object: over the ~110,000 that importing the app creates (pydantic's
    validators among them) it took ~90 ms here, charged to whichever request happened to trigger it (the
    analytics endpoint: p50 40 ms, p95 150 ms). Frozen objects are never freed, so this is only for a process's
    startup objects: call it once, when the app is built. No collection first: among those objects it found
    ~380 garbage ones (42 KB), for 70-90 ms of every cold start.
    """
    gc.freeze()
    startup.complete()
