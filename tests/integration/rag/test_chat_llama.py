"""A streamed chat through a real LLM server: llama.cpp's OpenAI-compatible Python server running Gemma 3 270M
(tests/fixtures/llama.py), as a team that hosts its own model would configure it. The stub of the other chat tests
speaks the protocol as written; this server speaks it as one real implementation does (its SSE framing, its end
of stream, no usage chunk, tools offered to a model that does not call them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.integration.rag.conftest import Tenant, upload
from threadline.bootstrap import Container
from threadline.local.serving import BackgroundServer
from threadline.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def llama_app(settings: Settings, embedder: object, llama_server: str) -> Iterator[httpx.Client]:
    """The app on a real uvicorn, its language model llama.cpp's server."""
    from threadline.api.app import create_app

    configured = settings.model_copy(
        update={"openai_base_url": llama_server, "openai_api_key": "", "llm_model": "gemma-3-270m"}
    )
    container = Container(configured)
    container.__dict__["embedder"] = embedder
    container.__dict__["query_embedder"] = embedder
    try:
        with (
            BackgroundServer(create_app(container)) as server,
            httpx.Client(base_url=server.url, timeout=120) as client,
        ):
            yield client
    finally:
        container.close()


def test_a_self_hosted_model_streams_a_saved_answer(llama_app: httpx.Client, tenant: Tenant) -> None:
    # Given a document, and llama.cpp's server as the project's model
    upload(llama_app, tenant, "Billing", "# Billing\n\n## Refunds\n\nRefunds are paid within five business days.\n")
    # When a question is streamed
    path = f"/query/v1/projects/{tenant.project_id}/chat/stream/"
    with connect_sse(llama_app, "POST", path, json={"query": "How long do refunds take?"}, headers=tenant.headers) as s:
        assert s.response.status_code == 200
        events: list[tuple[str, dict[str, Any]]] = [(e.event, json.loads(e.data)) for e in s.iter_sse()]
    # Then the model's words arrive as tokens between meta and sources, and the stream ends done and complete
    names = [name for name, _ in events]
    assert names[0] == "meta" and names[-2:] == ["sources", "done"], names[-3:]
    tokens = [data["text"] for name, data in events if name == "token"]
    assert tokens and set(names[1:-2]) == {"token"}
    done = events[-1][1]
    assert done["status"] == "complete" and done["first_token_ms"] <= done["latency_ms"]
    # And the thread keeps exactly what was streamed, under the model's name
    thread = llama_app.get(f"/query/v1/threads/{done['thread_id']}/", headers=tenant.headers).json()
    (message,) = thread["messages"]
    assert message["answer"] == "".join(tokens) and message["model"] == "gemma-3-270m"
