"""The hosted MCP server of every project at /mcp: Streamable HTTP, stateless, on the official `mcp` SDK.

Stateless because it runs behind a Lambda Function URL, where no two requests are sure to meet the same process:
each HTTP request is served on its own, with no session id. The key in the request (`Authorization: Bearer
<key>` or `X-API-KEY`) chooses the project; a low-level SDK `Server` is then built for that request with the
project's instructions and tool names, and its two tools only ever read that project's rows (every query is
filtered by the project id). Building the server per request costs well under a millisecond next to the key
lookup, and it is what lets each project describe its own server without any state shared between requests.

Errors: a missing or invalid key is an HTTP 401 whose body is a JSON-RPC error; bad tool arguments and unknown
tools are JSON-RPC `invalid params` errors; a model that cannot answer is a tool result with `isError`.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar
from uuid import UUID

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from threadline import __version__
from threadline.api.access import authorize
from threadline.api.invocation import answer_deadline
from threadline.api.models import RequestModel
from threadline.bootstrap import Container
from threadline.domain import mcp as mcp_domain
from threadline.domain.answering import citation_footer, collect
from threadline.domain.chat import MAX_QUESTION_CHARS
from threadline.domain.errors import DomainError, Forbidden, InvalidInput, Unauthorized, Unavailable
from threadline.domain.mcp import MAX_LIMIT, MAX_TITLES, McpSettings

# A tool call is a question or a search; this bounds what a request may make the SDK parse.
MAX_REQUEST_BYTES = 256 * 1024
UNAUTHORIZED = -32001  # JSON-RPC server-defined error range; what MCP servers commonly use for a refused key


class SearchArguments(RequestModel):
    """Arguments of the search tool."""

    model_config = ConfigDict(extra="forbid", strict=True)

    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="What to look for, in plain words")
    limit: int = Field(default=mcp_domain.DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="How many passages")
    document_titles: list[str] | None = Field(
        default=None,
        max_length=MAX_TITLES,
        description="Only documents whose title contains one of these (case-insensitive)",
    )


class AskArguments(RequestModel):
    """Arguments of the ask tool."""

    model_config = ConfigDict(extra="forbid", strict=True)

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="The question, in plain words")


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    return schema


SEARCH_SCHEMA = _schema(SearchArguments)
ASK_SCHEMA = _schema(AskArguments)


def presented_key(request: Request) -> str | None:
    """The key of `Authorization: Bearer <key>`, else of `X-API-KEY`."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def _jsonrpc_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _invalid_params(message: str) -> MCPError:
    return MCPError(code=types.INVALID_PARAMS, message=message)


Args = TypeVar("Args", bound=BaseModel)


def _arguments(model: type[Args], arguments: dict[str, Any] | None) -> Args:
    try:
        return model.model_validate(arguments or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise _invalid_params(f"invalid arguments: {problems}") from exc


class ProjectTools:
    """The two tools of one project's server, bound to that project."""

    def __init__(
        self, container: Container, project_id: UUID, settings: McpSettings, deadline: float | None = None
    ) -> None:
        self._container = container
        self._project_id = project_id
        self._settings = settings
        self._deadline = deadline  # the answer's, from the request (api/invocation.py)

    def tools(self) -> list[types.Tool]:
        """The tools as the project named and described them."""
        read_only = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
        return [
            types.Tool(
                name=self._settings.search_tool_name,
                description=self._settings.search_tool_description,
                input_schema=SEARCH_SCHEMA,
                annotations=read_only,
            ),
            types.Tool(
                name=self._settings.ask_tool_name,
                description=self._settings.ask_tool_description,
                input_schema=ASK_SCHEMA,
                # Asking records a thread (channel mcp), so it is not read-only.
                annotations=types.ToolAnnotations(read_only_hint=False, open_world_hint=False),
            ),
        ]

    async def call(self, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        """Run a tool; unknown tools and bad arguments are JSON-RPC invalid-params errors."""
        try:
            if name == self._settings.search_tool_name:
                return await self._search(_arguments(SearchArguments, arguments))
            if name == self._settings.ask_tool_name:
                return await self._ask(_arguments(AskArguments, arguments))
        except InvalidInput as exc:
            raise _invalid_params(exc.message) from exc
        except Unavailable as exc:
            # A tool that ran and failed is reported to the model as such (MCP's tool-execution errors).
            return types.CallToolResult(content=[types.TextContent(type="text", text=exc.message)], is_error=True)
        raise _invalid_params(f"unknown tool: {name[:100]}")

    async def _search(self, args: SearchArguments) -> types.CallToolResult:
        request = mcp_domain.search_request(args.query, args.limit, args.document_titles)
        results = await run_in_threadpool(
            mcp_domain.search,
            self._container.passages,
            self._container.query_embedder,
            self._project_id,
            request,
        )
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=mcp_domain.format_results(results))],
            structured_content={"results": results},
        )

    async def _ask(self, args: AskArguments) -> types.CallToolResult:
        started = time.perf_counter()
        chat = self._container.chat
        exchange = await run_in_threadpool(chat.start, self._project_id, args.question, None, "mcp")
        outcome = await collect(chat.stream(self._project_id, exchange, started, self._deadline))
        answer = {
            "answer": outcome.answer,
            "sources": outcome.sources,
            "thread_id": str(exchange.thread_id),
            "question_answer_id": str(exchange.message_id),
        }
        text = outcome.answer + citation_footer(outcome.sources)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=answer)


def project_server(tools: ProjectTools, settings: McpSettings) -> Server[Any]:
    """An SDK server for one project and one request."""

    async def list_tools(
        _: ServerRequestContext[Any], __: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools.tools())

    async def call_tool(_: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        return await tools.call(params.name, params.arguments)

    return Server(
        "threadline",
        version=__version__,
        instructions=settings.instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


class McpEndpoint:
    """The ASGI app at /mcp: authenticate, build the project's server, let the SDK answer the request."""

    def __init__(self, container: Container) -> None:
        self._container = container

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request."""
        request = Request(scope, receive)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
            response = _jsonrpc_error(
                413, types.INVALID_REQUEST, f"the request may be at most {MAX_REQUEST_BYTES} bytes"
            )
            await response(scope, receive, send)
            return
        try:
            principal = await run_in_threadpool(authorize, self._container, request, presented_key(request))
            settings = await run_in_threadpool(
                mcp_domain.get_settings, self._container.mcp_settings, principal.project_id
            )
        except Unauthorized as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="threadline"'}
            await _jsonrpc_error(401, UNAUTHORIZED, exc.message, headers)(scope, receive, send)
            return
        except Forbidden as exc:
            await _jsonrpc_error(403, UNAUTHORIZED, exc.message)(scope, receive, send)
            return
        except DomainError as exc:
            await _jsonrpc_error(503, types.INTERNAL_ERROR, exc.message)(scope, receive, send)
            return
        tools = ProjectTools(self._container, principal.project_id, settings, answer_deadline(request))
        await self._serve(tools, settings, scope, receive, send)

    async def _serve(
        self, tools: ProjectTools, settings: McpSettings, scope: Scope, receive: Receive, send: Send
    ) -> None:
        # JSON responses rather than SSE: one answer per POST, which buffering proxies pass through unchanged.
        manager = StreamableHTTPSessionManager(
            app=project_server(tools, settings),
            stateless=True,
            json_response=True,
            max_request_body_size=MAX_REQUEST_BYTES,
        )
        async with manager.run():
            await manager.handle_request(scope, receive, send)
