"""What lets any client reach a project's chatbot: the OpenAI-compatible API (/v1) and the MCP server (/mcp)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route

from threadline.api.mcp_server import McpEndpoint
from threadline.api.routers import openai_compat
from threadline.bootstrap import Container


def mount_reach(app: FastAPI, container: Container) -> None:
    """Add /v1 (OpenAI-compatible) and /mcp (Streamable HTTP, stateless).

    The MCP settings routes are /query/v1 routes like any other: ROUTERS mounts them under the API contract.
    """
    app.include_router(openai_compat.router)
    # A plain route rather than a mount: a mount answers only below "/mcp/", and clients POST to "/mcp" itself.
    app.router.routes.append(
        Route("/mcp", McpEndpoint(container), methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
