"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from threadline import __version__
from threadline.api.errors import install_error_handlers
from threadline.api.routers import ROUTERS
from threadline.bootstrap import Container, get_container


def create_app(container: Container | None = None) -> FastAPI:
    """Build the app around a container (the process-wide one unless a test passes its own)."""
    resolved = container or get_container()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if container is None:
            resolved.close()

    app = FastAPI(
        title="Threadline",
        version=__version__,
        description="Multi-tenant support chatbots grounded in each customer's own documents.",
        lifespan=lifespan,
    )
    app.state.container = resolved
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
