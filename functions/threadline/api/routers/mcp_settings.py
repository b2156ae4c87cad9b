"""A project's hosted MCP server: its instructions and how its tools are named and described."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from threadline.api.deps import ContainerDep, ProjectIdDep
from threadline.api.models import RequestModel
from threadline.api.routing import contract_router
from threadline.domain import mcp
from threadline.domain.mcp import MAX_DESCRIPTION_CHARS, MAX_INSTRUCTIONS_CHARS, McpOverrides, McpSettings

router = contract_router(prefix="/query/v1", tags=["mcp"])


class McpSettingsUpdate(RequestModel):
    """The whole set of overrides; an omitted or null value returns to its default."""

    instructions: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS_CHARS)
    search_tool_name: str | None = Field(default=None, max_length=64, pattern=mcp.TOOL_NAME.pattern)
    search_tool_description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)
    ask_tool_name: str | None = Field(default=None, max_length=64, pattern=mcp.TOOL_NAME.pattern)
    ask_tool_description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)


class McpSettingsPublic(BaseModel):
    """What MCP clients of the project see: the server's instructions and its two tools."""

    instructions: str
    search_tool_name: str
    search_tool_description: str
    ask_tool_name: str
    ask_tool_description: str
    updated_at: datetime | None

    @classmethod
    def of(cls, settings: McpSettings) -> McpSettingsPublic:
        """From the domain settings."""
        return cls(
            instructions=settings.instructions,
            search_tool_name=settings.search_tool_name,
            search_tool_description=settings.search_tool_description,
            ask_tool_name=settings.ask_tool_name,
            ask_tool_description=settings.ask_tool_description,
            updated_at=settings.updated_at,
        )


@router.get("/projects/{project_id}/mcp-settings/")
def get_mcp_settings(container: ContainerDep, project_id: ProjectIdDep) -> McpSettingsPublic:
    """The project's MCP server settings, defaults filled in (`updated_at` null while all are defaults)."""
    settings = mcp.get_settings(container.mcp_settings, project_id)
    return McpSettingsPublic.of(settings)


@router.put("/projects/{project_id}/mcp-settings/")
def put_mcp_settings(body: McpSettingsUpdate, container: ContainerDep, project_id: ProjectIdDep) -> McpSettingsPublic:
    """Replace the project's MCP server settings; the two tool names must differ."""
    overrides = McpOverrides(**body.model_dump())
    settings = mcp.put_settings(container.mcp_settings, project_id, overrides)
    return McpSettingsPublic.of(settings)
