"""What lets any client reach a project's chatbot: the OpenAI-compatible API (/v1) and the MCP server (/mcp)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route

from threadline.api.mcp_server import McpEndpoint
from threadline.api.routers import mcp_settings, openai_compat
from threadline.bootstrap import Container


def mount_reach(app: FastAPI, container: Container) -> None:
    """Add /v1 (OpenAI-compatible), /mcp (Streamable HTTP, stateless) and the MCP settings routes."""
    app.include_router(openai_compat.router)
    app.include_router(mcp_settings.router)
    # A plain route rather than a mount: a mount answers only below "/mcp/", and clients POST to "/mcp" itself.
    app.router.routes.append(
        Route("/mcp", McpEndpoint(container), methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
