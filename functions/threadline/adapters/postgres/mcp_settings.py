"""Each project's MCP server settings in Postgres (migration 0009)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from uuid import UUID

from threadline.adapters.postgres.db import Database, Row
from threadline.domain.errors import NotFound
from threadline.domain.mcp import McpOverrides

_COLUMNS = "instructions, search_tool_name, search_tool_description, ask_tool_name, ask_tool_description"

_GET = "SELECT " + _COLUMNS + ", updated_at FROM mcp_settings WHERE project_id = %(project_id)s"

_PUT = (
    "INSERT INTO mcp_settings (project_id, " + _COLUMNS + ")"
    " VALUES (%(project_id)s, %(instructions)s, %(search_tool_name)s, %(search_tool_description)s,"
    " %(ask_tool_name)s, %(ask_tool_description)s)"
    " ON CONFLICT (project_id) DO UPDATE SET instructions = EXCLUDED.instructions,"
    " search_tool_name = EXCLUDED.search_tool_name,"
    " search_tool_description = EXCLUDED.search_tool_description,"
    " ask_tool_name = EXCLUDED.ask_tool_name, ask_tool_description = EXCLUDED.ask_tool_description,"
    " updated_at = now()"
    " RETURNING updated_at"
)


def _overrides(row: Row) -> tuple[McpOverrides, datetime]:
    updated_at: datetime = row.pop("updated_at")
    return McpOverrides(**row), updated_at


def _updated_at(row: Row) -> datetime:
    updated_at: datetime = row["updated_at"]
    return updated_at


class PostgresMcpSettings:
    """`McpSettingsRepository` over Postgres: one row per project that changed anything."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get_mcp_overrides(self, project_id: UUID) -> tuple[McpOverrides, datetime | None]:
        """The project's overrides and when they were set (no row: no overrides)."""
        found = self._db.one(_GET, {"project_id": project_id}, row=_overrides)
        return found if found is not None else (McpOverrides(), None)

    def put_mcp_overrides(self, project_id: UUID, overrides: McpOverrides) -> datetime:
        """Replace the project's overrides; returns when."""
        params = {"project_id": project_id, **asdict(overrides)}
        # RETURNING always gives the row: a project that does not exist already failed the foreign key.
        return self._db.one(_PUT, params, missing=NotFound("project not found"), row=_updated_at)
