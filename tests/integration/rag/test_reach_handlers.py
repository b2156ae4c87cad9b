"""The OpenAI-compatible route and the MCP server through ApiFunction's Mangum handler (the HTTP API's
catch-all), driven by the sample events under events/apigw/."""

from __future__ import annotations

import json

import pytest

from tests.integration.rag.conftest import make_tenant
from tests.integration.rag.test_handlers import GUIDE, SAMPLE_KEY, _Context, _load
from tests.integration.rag.test_handlers import lambda_env  # noqa: F401 - a fixture this module uses
from threadline.bootstrap import Container

pytestmark = pytest.mark.integration


def test_chat_completions_and_mcp_answer_through_mangum(lambda_env: Container) -> None:
    from threadline.domain import documents
    from threadline.domain.documents import Upload
    from threadline.handlers.api import lambda_handler

    # Given a project with a document, and the sample events carrying its key
    tenant = make_tenant(lambda_env, "reach")
    documents.ingest(lambda_env.documents, lambda_env.embedder, tenant.project_id, Upload(GUIDE, "guide.md"))
    completion_event = _load("apigw/post_chat_completions.json", **{SAMPLE_KEY: tenant.key})
    mcp_event = _load("apigw/post_mcp.json", **{SAMPLE_KEY: tenant.key})
    # When API Gateway delivers them to ApiFunction
    completion = lambda_handler(completion_event, _Context())  # type: ignore[arg-type]
    searched = lambda_handler(mcp_event, _Context())  # type: ignore[arg-type]
    # Then the completion is grounded in the document, in OpenAI's shape
    assert completion["statusCode"] == 200, completion["body"]
    body = json.loads(completion["body"])
    assert body["object"] == "chat.completion" and "press Reset" in body["choices"][0]["message"]["content"]
    assert body["sources"][0]["title"] == "guide.md"
    # And the stateless MCP server answers the tool call without a session
    assert searched["statusCode"] == 200, searched["body"]
    result = json.loads(searched["body"])["result"]
    assert result["structuredContent"]["results"][0]["title"] == "guide.md"
