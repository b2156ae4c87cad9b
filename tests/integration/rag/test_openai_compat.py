"""POST /v1/chat/completions and GET /v1/models driven by the real `openai` SDK against the app on uvicorn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from tests.integration.rag.conftest import Tenant, upload
from threadline.adapters.aws.chat_events import SqsChatEvents
from threadline.bootstrap import Container
from threadline.local.openai_stub import OpenAIStub, Reply

pytestmark = pytest.mark.integration

BILLING = """# Billing

## Refunds

Refunds are paid back to the original card within five business days after approval.

## Invoices

Invoices are emailed on the first day of every month as PDF files.
"""


@pytest.fixture
def live(live_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_url, timeout=30) as client:
        yield client


def _client(live_url: str, tenant: Tenant) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key=tenant.key, max_retries=0, timeout=30)


def _threads(live: httpx.Client, tenant: Tenant, **params: str) -> list[dict[str, Any]]:
    response = live.get(f"/query/v1/projects/{tenant.project_id}/threads/", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def test_a_completion_is_a_grounded_thread_with_sources_usage_and_the_clients_history(
    live_url: str, live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant
) -> None:
    # Given a project with a document, and a client that sends instructions and an earlier exchange
    upload(live, tenant, "Billing", BILLING)
    llm_stub.script(Reply(text="Within five business days [1].", prompt_tokens=30, completion_tokens=6))
    client = _client(live_url, tenant)
    # When it asks through the openai SDK
    completion = client.chat.completions.create(
        model="threadline",
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "Hi, I returned a jacket."},
            {"role": "assistant", "content": "Thanks, how can I help?"},
            {"role": "user", "content": [{"type": "text", "text": "How long do refunds take?"}]},
        ],
    )
    # Then the answer cites its source in the text and lists the sources in the extension field
    content = completion.choices[0].message.content or ""
    assert content.startswith("Within five business days [1].")
    assert "\n\nSources:\n[1] Billing > " in content
    extra = completion.model_extra or {}
    assert extra["sources"][0]["title"] == "Billing" and extra["sources"][0]["cited"] is True
    assert completion.usage is not None and completion.usage.total_tokens == 36
    assert completion.model == "threadline" and completion.choices[0].finish_reason == "stop"
    # And the model saw the client's history as earlier turns and its instructions in the system prompt
    sent = llm_stub.requests[-1]["messages"]
    assert "Answer in one sentence." in sent[0]["content"]
    assert (sent[1]["role"], sent[1]["content"]) == ("user", "Hi, I returned a jacket.")
    assert (sent[2]["role"], sent[2]["content"]) == ("assistant", "Thanks, how can I help?")
    assert sent[-1]["content"].endswith("Question: How long do refunds take?")
    # And it is a thread like any other, listed with its channel
    listed = _threads(live, tenant, channel="openai")
    assert [t["id"] for t in listed] == [extra["thread_id"]]
    assert listed[0]["first_question"] == "How long do refunds take?" and listed[0]["message_count"] == 1
    assert _threads(live, tenant, channel="api") == []


def test_thread_id_continues_a_thread_with_its_saved_history(
    live_url: str, live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant
) -> None:
    # Given a first completion
    upload(live, tenant, "Billing", BILLING)
    llm_stub.script(Reply(text="Five business days [1]."), Reply(text="On the first of the month [1]."))
    client = _client(live_url, tenant)
    first = client.chat.completions.create(model="threadline", messages=[{"role": "user", "content": "Refunds?"}])
    thread_id = (first.model_extra or {})["thread_id"]
    # When the client sends only the new question, naming the thread
    second = client.chat.completions.create(
        model=str(tenant.project_id),
        messages=[{"role": "user", "content": "And invoices?"}],
        extra_body={"thread_id": thread_id},
    )
    # Then the answer is in the same thread and the model saw the saved turn
    assert (second.model_extra or {})["thread_id"] == thread_id
    sent = llm_stub.requests[-1]["messages"]
    assert (sent[1]["content"], sent[2]["content"]) == ("Refunds?", "Five business days [1].")
    thread = live.get(f"/query/v1/threads/{thread_id}/", headers=tenant.headers).json()
    assert [m["question"] for m in thread["messages"]] == ["Refunds?", "And invoices?"]


def test_streaming_sends_openai_chunks_then_usage_then_done(
    live_url: str, live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant
) -> None:
    # Given a document and a scripted answer
    upload(live, tenant, "Billing", BILLING)
    llm_stub.script(Reply(text="Invoices arrive monthly [1].", prompt_tokens=20, completion_tokens=5))
    client = _client(live_url, tenant)
    # When the answer is streamed with usage
    stream = client.chat.completions.create(
        model="threadline",
        messages=[{"role": "user", "content": "When do invoices come?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    # Then the text arrives in pieces, the sources close the choice, and usage comes in a last chunk
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Invoices arrive monthly [1].") and "Sources:\n[1] Billing" in text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finish) == 1 and (finish[0].model_extra or {})["sources"][0]["cited"] is True
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 25
    assert len({c.id for c in chunks}) == 1
    # And the raw stream ends with OpenAI's terminator
    raw = live.post(
        "/v1/chat/completions",
        json={"model": "threadline", "messages": [{"role": "user", "content": "Invoices?"}], "stream": True},
        headers={"Authorization": f"Bearer {tenant.key}"},
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.rstrip().endswith("data: [DONE]")


def test_the_async_client_answers_plain_and_streamed(
    live_url: str, live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant
) -> None:
    # Given a document
    upload(live, tenant, "Billing", BILLING)
    llm_stub.script(Reply(text="Five business days [1]."), Reply(text="Monthly [1]."))

    async def ask() -> tuple[str, str]:
        async with openai.AsyncOpenAI(base_url=f"{live_url}/v1", api_key=tenant.key, max_retries=0) as client:
            plain = await client.chat.completions.create(
                model="threadline", messages=[{"role": "user", "content": "Refunds?"}]
            )
            streamed = await client.chat.completions.create(
                model="threadline", messages=[{"role": "user", "content": "Invoices?"}], stream=True
            )
            parts = [c.choices[0].delta.content or "" async for c in streamed if c.choices]
            return plain.choices[0].message.content or "", "".join(parts)

    # When the async SDK asks twice
    plain, streamed = asyncio.run(ask())
    # Then both answers come back, and both are threads of the openai channel
    assert plain.startswith("Five business days [1].") and streamed.startswith("Monthly [1].")
    assert len(_threads(live, tenant, channel="openai")) == 2


def test_models_lists_the_projects_chatbot(live_url: str, tenant: Tenant, other_tenant: Tenant) -> None:
    # Given a key
    client = _client(live_url, tenant)
    # When it lists and retrieves models
    listed = [m.id for m in client.models.list()]
    by_id = client.models.retrieve(str(tenant.project_id))
    # Then it sees its chatbot under the alias and its project id, and never another project's
    assert listed == ["threadline"] and by_id.id == str(tenant.project_id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve(str(other_tenant.project_id))
    assert caught.value.code == "model_not_found"


def test_first_question_is_classified_and_every_answer_measured(
    live_url: str, llm_container: Container, llm_stub: OpenAIStub, tenant: Tenant, aws_endpoint: str
) -> None:
    # Given the chat's producer pointed at real queues
    sqs = boto3.client(
        "sqs", endpoint_url=aws_endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    classify = sqs.create_queue(QueueName=f"classify-openai-{tenant.project_id}")["QueueUrl"]
    metrics = sqs.create_queue(QueueName=f"metrics-openai-{tenant.project_id}")["QueueUrl"]
    events = SqsChatEvents(classify, metrics, lambda: sqs)
    llm_container.__dict__["chat_events"] = events
    # When a question comes through the OpenAI endpoint
    completion = _client(live_url, tenant).chat.completions.create(
        model="threadline", messages=[{"role": "user", "content": "How do refunds work?"}]
    )
    events.flush(5)
    extra = completion.model_extra or {}
    # Then the thread is queued for its label and the answer for its metrics, like any other
    classified = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=classify).get("Messages", [])]
    measured = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=metrics).get("Messages", [])]
    assert [m["thread_id"] for m in classified] == [extra["thread_id"]]
    assert [m["message_id"] for m in measured] == [extra["question_answer_id"]]


def test_errors_come_in_openais_shape_with_the_right_status(
    live_url: str, live: httpx.Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    client = _client(live_url, tenant)
    question = [{"role": "user", "content": "Refunds?"}]
    # A bad key is a 401 the SDK reports as an authentication error
    with pytest.raises(openai.AuthenticationError) as bad_key:
        openai.OpenAI(base_url=f"{live_url}/v1", api_key="tl_nope", max_retries=0).chat.completions.create(
            model="threadline", messages=question
        )
    assert bad_key.value.code == "invalid_api_key"
    # An unknown model, or another project's id as the model, is a 404
    for model in ("gpt-4o", str(other_tenant.project_id)):
        with pytest.raises(openai.NotFoundError) as unknown:
            client.chat.completions.create(model=model, messages=question)
        assert unknown.value.code == "model_not_found" and unknown.value.param == "model"
    # Client tools are refused with a clear 400
    with pytest.raises(openai.BadRequestError) as tools:
        client.chat.completions.create(
            model="threadline",
            messages=question,
            tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        )
    assert tools.value.param == "tools" and "server-side" in tools.value.message
    # Malformed messages: none, not ending with a user question, an unknown role, an image
    for messages, param in (
        ([], "messages"),
        ([{"role": "assistant", "content": "Hi"}], "messages"),
        ([{"role": "robot", "content": "Hi"}], "messages[0].role"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], "messages[0].content[0]"),
    ):
        with pytest.raises(openai.BadRequestError) as malformed:
            client.chat.completions.create(model="threadline", messages=messages)  # type: ignore[arg-type]
        assert malformed.value.param == param, malformed.value.body
    # Another project's thread is not found
    thread = live.post(
        f"/query/v1/projects/{other_tenant.project_id}/chat/", json={"query": "Hi"}, headers=other_tenant.headers
    ).json()["thread_id"]
    with pytest.raises(openai.NotFoundError) as foreign:
        client.chat.completions.create(model="threadline", messages=question, extra_body={"thread_id": thread})
    assert foreign.value.param == "thread_id"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (json.dumps({"model": "threadline", "messages": [], "temperature_x": 1}).encode(), 400, "unknown_parameter"),
        (json.dumps({"messages": [{"role": "user", "content": "Hi"}]}).encode(), 400, "missing_required_parameter"),
        (
            b'{"model": "threadline", "messages": [{"role": "user", "content": "' + b"a" * (2 * 1024 * 1024) + b'"}]}',
            413,
            "request_too_large",
        ),
    ],
)
def test_raw_bad_bodies_are_openai_errors_never_500(
    live: httpx.Client, tenant: Tenant, body: bytes, status: int, code: str
) -> None:
    # When a body is not JSON, names an unknown argument, lacks the model or is too large
    response = live.post(
        "/v1/chat/completions",
        content=body,
        headers={"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"},
    )
    # Then the status and the error shape are OpenAI's
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code


def test_a_model_failure_is_an_error_not_a_broken_answer(
    live_url: str, live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant
) -> None:
    # Given a language model that fails
    llm_stub.script(*[Reply(status=500)] * 4)  # the chat retries each call once
    client = _client(live_url, tenant)
    question = [{"role": "user", "content": "Refunds?"}]
    # When a plain and a streamed completion are asked, then the SDK raises its API errors
    with pytest.raises(openai.InternalServerError) as plain:
        client.chat.completions.create(model="threadline", messages=question)
    assert plain.value.status_code == 503
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="threadline", messages=question, stream=True))
    # And both questions are kept in their threads
    assert len(_threads(live, tenant, channel="openai")) == 2


def test_the_openapi_document_describes_the_openai_routes(client: TestClient) -> None:
    # When the OpenAPI document is read
    spec = client.get("/openapi.json").json()
    # Then the OpenAI-compatible routes are in it, with the bearer scheme and the request's extension field
    assert {"/v1/chat/completions", "/v1/models", "/v1/models/{model}"} <= set(spec["paths"])
    post = spec["paths"]["/v1/chat/completions"]["post"]
    assert any("HTTPBearer" in s for s in post["security"])
    assert "thread_id" in spec["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    assert "/query/v1/projects/{project_id}/mcp-settings/" in spec["paths"]
