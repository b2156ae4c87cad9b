"""The hosted MCP server of a project: its settings, and the two tools it offers (search and ask).

Every project has one server at /mcp; the key a client presents chooses the project, and everything the tools
read is filtered by that project id in SQL, so another project's documents are never reachable. A project may
rename and describe both tools and give the server its own instructions; unset values fall back to the defaults
below.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from threadline.domain.chat import EXCERPT_CHARS, MAX_QUESTION_CHARS
from threadline.domain.errors import InvalidInput
from threadline.domain.ports import Embedder, Vectors
from threadline.domain.prompting import Passage

DEFAULT_INSTRUCTIONS = (
    "This server answers from the project's own documentation. Use `{search}` to find passages (each with its "
    "document title, heading and relevance score) and `{ask}` for a complete answer grounded in the documents, "
    "with numbered sources. Prefer these tools over guessing about this product."
)
DEFAULT_SEARCH_NAME = "search_documents"
DEFAULT_SEARCH_DESCRIPTION = (
    "Semantic search over the project's documents. Returns the most relevant passages with the title and "
    "heading of their document and a similarity score (0-1, higher is closer). Optionally only in documents "
    "whose title contains one of `document_titles`."
)
DEFAULT_ASK_NAME = "ask"
DEFAULT_ASK_DESCRIPTION = (
    "Ask the project's support assistant a question. Returns an answer grounded in the project's documents, "
    "citing its sources as [n], and the list of those sources."
)
# MCP tool names: 1-64 characters of letters, digits, '_' and '-' (what every common client accepts).
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_DESCRIPTION_CHARS = 2000
MAX_INSTRUCTIONS_CHARS = 8000
DEFAULT_LIMIT = 5
MAX_LIMIT = 20
MAX_TITLES = 20
MAX_TITLE_CHARS = 200
PASSAGE_CHARS = EXCERPT_CHARS * 4


@dataclass(frozen=True, slots=True)
class McpOverrides:
    """What a project set; None means "the default"."""

    instructions: str | None = None
    search_tool_name: str | None = None
    search_tool_description: str | None = None
    ask_tool_name: str | None = None
    ask_tool_description: str | None = None


@dataclass(frozen=True, slots=True)
class McpSettings:
    """The effective settings of a project's MCP server."""

    instructions: str
    search_tool_name: str
    search_tool_description: str
    ask_tool_name: str
    ask_tool_description: str
    updated_at: datetime | None


class McpSettingsRepository(Protocol):
    """Storage of each project's MCP overrides."""

    def get_mcp_overrides(self, project_id: UUID) -> tuple[McpOverrides, datetime | None]: ...

    def put_mcp_overrides(self, project_id: UUID, overrides: McpOverrides) -> datetime: ...


class PassageSearch(Protocol):
    """Retrieval over one project's chunks, optionally within documents whose title contains one of `titles`."""

    def search_documents(
        self, project_id: UUID, query_vector: Vectors, top_k: int, titles: Sequence[str] | None
    ) -> list[Passage]: ...


def effective(overrides: McpOverrides, updated_at: datetime | None) -> McpSettings:
    """Overrides over the defaults (the default instructions name the tools as the project named them)."""
    search_name = overrides.search_tool_name or DEFAULT_SEARCH_NAME
    ask_name = overrides.ask_tool_name or DEFAULT_ASK_NAME
    return McpSettings(
        instructions=overrides.instructions or DEFAULT_INSTRUCTIONS.format(search=search_name, ask=ask_name),
        search_tool_name=search_name,
        search_tool_description=overrides.search_tool_description or DEFAULT_SEARCH_DESCRIPTION,
        ask_tool_name=ask_name,
        ask_tool_description=overrides.ask_tool_description or DEFAULT_ASK_DESCRIPTION,
        updated_at=updated_at,
    )


def get_settings(repo: McpSettingsRepository, project_id: UUID) -> McpSettings:
    """A project's effective MCP settings."""
    return effective(*repo.get_mcp_overrides(project_id))


def put_settings(repo: McpSettingsRepository, project_id: UUID, overrides: McpOverrides) -> McpSettings:
    """Validate and store a project's overrides (the whole set: an omitted value returns to its default)."""
    cleaned = McpOverrides(
        instructions=_text("instructions", overrides.instructions, MAX_INSTRUCTIONS_CHARS),
        search_tool_name=_name("search_tool_name", overrides.search_tool_name),
        search_tool_description=_text(
            "search_tool_description", overrides.search_tool_description, MAX_DESCRIPTION_CHARS
        ),
        ask_tool_name=_name("ask_tool_name", overrides.ask_tool_name),
        ask_tool_description=_text("ask_tool_description", overrides.ask_tool_description, MAX_DESCRIPTION_CHARS),
    )
    settings = effective(cleaned, None)
    if settings.search_tool_name == settings.ask_tool_name:
        raise InvalidInput("the two tools need different names", field="ask_tool_name")
    return effective(cleaned, repo.put_mcp_overrides(project_id, cleaned))


def _text(field: str, value: str | None, limit: int) -> str | None:
    cleaned = (value or "").strip()
    if len(cleaned) > limit:
        raise InvalidInput(f"{field} may be at most {limit} characters", field=field)
    return cleaned or None


def _name(field: str, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if not TOOL_NAME.match(value.strip()):
        raise InvalidInput(f"{field} must be 1-64 letters, digits, '_' or '-'", field=field)
    return value.strip()


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A validated search."""

    query: str
    limit: int
    titles: list[str] | None


def search_request(query: str, limit: int | None, titles: Sequence[str] | None) -> SearchRequest:
    """Check a search's arguments; InvalidInput names the argument at fault."""
    query = query.strip()
    if not query or len(query) > MAX_QUESTION_CHARS:
        raise InvalidInput(f"query must be 1-{MAX_QUESTION_CHARS} characters", field="query")
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be 1-{MAX_LIMIT}", field="limit")
    cleaned = [t.strip() for t in titles or () if t.strip()]
    if len(cleaned) > MAX_TITLES or any(len(t) > MAX_TITLE_CHARS for t in cleaned):
        raise InvalidInput(
            f"document_titles may hold at most {MAX_TITLES} titles of {MAX_TITLE_CHARS} characters",
            field="document_titles",
        )
    return SearchRequest(query, limit, cleaned or None)


def search(repo: PassageSearch, embedder: Embedder, project_id: UUID, request: SearchRequest) -> list[dict[str, Any]]:
    """The project's passages closest to the query, best first, as the tool returns them."""
    vector = embedder.embed([request.query])[0]
    passages = repo.search_documents(project_id, vector, request.limit, request.titles)
    return [
        {
            "rank": rank,
            "title": p.title,
            "heading": p.heading,
            "score": round(p.score, 4),
            "document_id": str(p.document_id),
            "text": p.content[:PASSAGE_CHARS],
        }
        for rank, p in enumerate(passages, start=1)
    ]


def format_results(results: Sequence[dict[str, Any]]) -> str:
    """Search results as text for clients that read only the text content."""
    if not results:
        return "No passage of the documents matches this search."
    blocks = []
    for r in results:
        where = f"{r['title']} > {r['heading']}" if r["heading"] else r["title"]
        blocks.append(f"[{r['rank']}] {where} (score {r['score']:.3f})\n{r['text']}")
    return "\n\n".join(blocks)
