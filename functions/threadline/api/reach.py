"""What lets any client reach a project's chatbot: the OpenAI-compatible API (/v1) and the MCP server (/mcp)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from threadline import startup
from threadline.bootstrap import Container

if TYPE_CHECKING:
    from threadline.api.mcp_server import McpEndpoint

startup.imported_later("threadline.api.mcp_server")


def _mcp_endpoint_class() -> type[McpEndpoint]:
    """The MCP server's ASGI class, imported now: by the first /mcp request, not with the app. The MCP SDK and
    its protocol types took 0.89 s of the ApiFunction's 1.94 s import (python -X importtime; ChatFunction's the
    same), and most execution environments never serve an MCP request."""
    with startup.late_imports():
        from threadline.api.mcp_server import McpEndpoint

    return McpEndpoint


class LazyMcpEndpoint:
    """The ASGI app at /mcp: `mcp_server.McpEndpoint`, loaded on the first request that needs it."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._endpoint: McpEndpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request, importing the MCP server first if this is the first."""
        if self._endpoint is None:
            # In the threadpool, so other requests keep being served while the SDK loads.
            endpoint_class = await run_in_threadpool(_mcp_endpoint_class)
            self._endpoint = endpoint_class(self._container)
        await self._endpoint(scope, receive, send)


def mount_reach(app: FastAPI, container: Container) -> None:
    """Add /mcp (Streamable HTTP, stateless).

    The OpenAI-compatible API (/v1) is a router module like the others (routers.ROUTES: `openai_compat`), and the
    MCP settings are /query/v1 routes under the API contract (`mcp_settings`).
    """
    # A plain route rather than a mount: a mount answers only below "/mcp/", and clients POST to "/mcp" itself.
    app.router.routes.append(
        Route("/mcp", LazyMcpEndpoint(container), methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
