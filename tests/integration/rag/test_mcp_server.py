"""The hosted MCP server at /mcp, driven by the `mcp` SDK's own Streamable HTTP client against uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.integration.rag.conftest import Tenant, upload
from threadline.local.openai_stub import OpenAIStub, Reply

pytestmark = pytest.mark.integration

T = TypeVar("T")

BILLING = """# Billing

## Refunds

Refunds are paid back to the original card within five business days after approval.

## Invoices

Invoices are emailed on the first day of every month as PDF files.
"""
SHIPPING = """# Shipping

Orders ship from the Rotterdam warehouse. Express delivery to Germany takes one day.
"""
# Another customer's documents: the same topic, so only the project filter can keep them out.
RIVAL_REFUNDS = """# Rival refunds

## Refunds

Refunds at Globex take thirty business days and are paid as store credit.
"""


@pytest.fixture
def live(live_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_url, timeout=30) as client:
        yield client


def _session(live_url: str, headers: dict[str, str], use: Callable[[ClientSession], Awaitable[T]]) -> T:
    """Connect with the SDK's Streamable HTTP client, initialize, run `use`."""

    async def run() -> T:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(f"{live_url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await use(session)

    return asyncio.run(run())


def _bearer(tenant: Tenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.key}"}


def test_tools_are_listed_with_instructions_and_schemas(live_url: str, tenant: Tenant) -> None:
    # When an MCP client connects with a project key and lists the tools
    async def use(session: ClientSession) -> tuple[str | None, list[types.Tool]]:
        return session.instructions, (await session.list_tools()).tools

    instructions, tools = _session(live_url, _bearer(tenant), use)
    # Then it sees the two tools with their argument schemas, and the server's instructions name them
    assert [t.name for t in tools] == ["search_documents", "ask"]
    search, ask = tools
    assert set(search.input_schema["properties"]) == {"query", "limit", "document_titles"}
    assert search.input_schema["required"] == ["query"] and ask.input_schema["required"] == ["question"]
    assert instructions is not None and "`search_documents`" in instructions and "`ask`" in instructions


def test_search_returns_this_projects_passages_with_titles_headings_and_scores(
    live_url: str, live: httpx.Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    # Given documents in the project and a close rival document in another project
    upload(live, tenant, "Billing", BILLING)
    upload(live, tenant, "Shipping", SHIPPING)
    rival = upload(live, other_tenant, "Rival refunds", RIVAL_REFUNDS)

    async def use(session: ClientSession) -> tuple[types.CallToolResult, types.CallToolResult]:
        everything = await session.call_tool("search_documents", {"query": "How long do refunds take?", "limit": 10})
        titled = await session.call_tool(
            "search_documents", {"query": "How long do refunds take?", "document_titles": ["shipp"]}
        )
        return everything, titled

    # When the project's key searches, all documents and then only titles containing "shipp"
    everything, titled = _session(live_url, _bearer(tenant), use)
    # Then the best passage is the refunds section, with its title, heading and score
    results = (everything.structured_content or {})["results"]
    assert results[0]["title"] == "Billing" and "Refunds" in results[0]["heading"]
    assert results[0]["rank"] == 1 and 0 < results[0]["score"] <= 1
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    assert isinstance(everything.content[0], types.TextContent) and "Billing" in everything.content[0].text
    # And the other project's document never appears, not even as the only close match
    assert all(r["document_id"] != rival and r["title"] != "Rival refunds" for r in results)
    assert {r["title"] for r in (titled.structured_content or {})["results"]} == {"Shipping"}


def test_another_projects_key_reaches_only_its_own_documents(
    live_url: str, live: httpx.Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    # Given two projects with documents
    upload(live, tenant, "Billing", BILLING)
    upload(live, other_tenant, "Rival refunds", RIVAL_REFUNDS)

    async def use(session: ClientSession) -> list[dict[str, Any]]:
        found = await session.call_tool("search_documents", {"query": "Billing invoices refunds", "limit": 20})
        results: list[dict[str, Any]] = (found.structured_content or {})["results"]
        return results

    # When the other project's key searches (X-API-KEY this time), even naming the first project's title
    results = _session(live_url, {"X-API-KEY": other_tenant.key}, use)
    # Then only its own document comes back
    assert {r["title"] for r in results} == {"Rival refunds"}


def test_ask_answers_with_sources_in_a_thread_of_the_mcp_channel(
    live_url: str, live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant
) -> None:
    # Given a document and a scripted answer
    upload(live, tenant, "Billing", BILLING)
    llm_stub.script(Reply(text="Refunds take five business days [1]."))

    async def use(session: ClientSession) -> types.CallToolResult:
        return await session.call_tool("ask", {"question": "How long do refunds take?"})

    # When a client calls ask
    result = _session(live_url, _bearer(tenant), use)
    # Then the answer cites its source, in the text and in the structured result
    answer = result.structured_content or {}
    assert result.is_error is False and answer["answer"] == "Refunds take five business days [1]."
    assert isinstance(result.content[0], types.TextContent)
    assert "Sources:\n[1] Billing" in result.content[0].text
    assert answer["sources"][0]["cited"] is True and answer["sources"][0]["title"] == "Billing"
    # And the question is a thread like any other, of channel mcp
    listed = live.get(
        f"/query/v1/projects/{tenant.project_id}/threads/", params={"channel": "mcp"}, headers=tenant.headers
    ).json()["results"]
    assert [(t["id"], t["channel"], t["first_question"]) for t in listed] == [
        (answer["thread_id"], "mcp", "How long do refunds take?")
    ]


def test_settings_rename_the_tools_and_set_the_instructions(live_url: str, live: httpx.Client, tenant: Tenant) -> None:
    # Given a project that names its tools and instructions over the API
    path = f"/query/v1/projects/{tenant.project_id}/mcp-settings/"
    put = live.put(
        path,
        json={
            "instructions": "Acme docs. Search first.",
            "search_tool_name": "search_acme_docs",
            "search_tool_description": "Search Acme's manuals.",
            "ask_tool_name": "ask_acme",
        },
        headers=tenant.headers,
    )
    assert put.status_code == 200, put.text
    assert live.get(path, headers=tenant.headers).json()["ask_tool_description"].startswith("Ask the project")

    async def use(session: ClientSession) -> tuple[str | None, list[types.Tool], MCPError]:
        tools = (await session.list_tools()).tools
        try:
            await session.call_tool("search_documents", {"query": "refunds"})
        except MCPError as exc:
            return session.instructions, tools, exc
        raise AssertionError("the old tool name still answers")

    # When a client connects
    instructions, tools, old_name = _session(live_url, _bearer(tenant), use)
    # Then it sees the project's names, descriptions and instructions, and the default name is gone
    assert instructions == "Acme docs. Search first."
    assert (tools[0].name, tools[0].description) == ("search_acme_docs", "Search Acme's manuals.")
    assert tools[1].name == "ask_acme"
    assert old_name.code == types.INVALID_PARAMS and "unknown tool" in old_name.message


@pytest.mark.parametrize(
    "body",
    [
        {"search_tool_name": "same", "ask_tool_name": "same"},
        {"search_tool_name": "has space"},
        {"instructions": "x" * 8001},
        {"unknown": "field"},
    ],
)
def test_bad_settings_are_refused(live: httpx.Client, tenant: Tenant, body: dict[str, Any]) -> None:
    # When settings would make an unusable server
    response = live.put(f"/query/v1/projects/{tenant.project_id}/mcp-settings/", json=body, headers=tenant.headers)
    # Then they are refused with a JSON error and nothing changes
    assert response.status_code == 422, response.text
    assert "error" in response.json()
    current = live.get(f"/query/v1/projects/{tenant.project_id}/mcp-settings/", headers=tenant.headers).json()
    assert current["updated_at"] is None and current["search_tool_name"] == "search_documents"


def test_another_projects_settings_are_not_found(live: httpx.Client, tenant: Tenant, other_tenant: Tenant) -> None:
    # When a key reads another project's MCP settings, then the project does not exist for it
    response = live.get(f"/query/v1/projects/{other_tenant.project_id}/mcp-settings/", headers=tenant.headers)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("search_documents", {}),
        ("search_documents", {"query": "refunds", "limit": 0}),
        ("search_documents", {"query": "refunds", "limit": "5"}),
        ("search_documents", {"query": "refunds", "scope": "all"}),
        ("search_documents", {"query": "x" * 5000}),
        ("ask", {"question": ""}),
        ("no_such_tool", {}),
    ],
)
def test_bad_tool_calls_are_jsonrpc_invalid_params(
    live_url: str, tenant: Tenant, name: str, arguments: dict[str, Any]
) -> None:
    async def use(session: ClientSession) -> MCPError:
        try:
            await session.call_tool(name, arguments)
        except MCPError as exc:
            return exc
        raise AssertionError("the call was accepted")

    # When a tool is called with bad arguments (or does not exist), then the client gets invalid params
    error = _session(live_url, _bearer(tenant), use)
    assert error.code == types.INVALID_PARAMS, error.message


def test_a_missing_or_wrong_key_is_a_401_with_a_jsonrpc_error(live: httpx.Client, live_url: str) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    accept = {"Accept": "application/json, text/event-stream"}
    # When the key is missing or wrong
    for headers in ({}, {"Authorization": "Bearer tl_wrong"}, {"X-API-KEY": "nope"}):
        response = live.post("/mcp", json=initialize, headers={**accept, **headers})
        # Then the answer is a 401 with a JSON-RPC error body
        assert response.status_code == 401, response.text
        assert response.json()["jsonrpc"] == "2.0" and response.json()["error"]["code"] == -32001
        assert response.headers["www-authenticate"].startswith("Bearer")

    # And the SDK's client fails to connect instead of hanging
    async def use(session: ClientSession) -> None:
        await session.list_tools()

    with pytest.raises(ExceptionGroup) as refused:
        _session(live_url, {"Authorization": "Bearer tl_wrong"}, use)
    assert refused.group_contains(MCPError, match="invalid API key")


def test_malformed_jsonrpc_and_oversized_bodies_are_errors_not_500s(live: httpx.Client, tenant: Tenant) -> None:
    headers = {**_bearer(tenant), "Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    # When the body is not JSON, not JSON-RPC, or too large
    not_json = live.post("/mcp", content=b"{oops", headers=headers)
    not_rpc = live.post("/mcp", json={"hello": "world"}, headers=headers)
    huge = live.post("/mcp", content=b"[" + b"1," * 300_000 + b"1]", headers=headers)
    # Then each is a 4xx with a JSON-RPC error
    for response, status in ((not_json, 400), (not_rpc, 400), (huge, 413)):
        assert response.status_code == status, response.text
        assert response.json()["jsonrpc"] == "2.0" and "code" in response.json()["error"]
