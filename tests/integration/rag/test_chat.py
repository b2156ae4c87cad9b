"""Chat against real parts: Postgres, the embedding model, the `openai` SDK talking to a real HTTP server."""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import uuid4

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx_sse import connect_sse

from tests.integration.rag.conftest import Tenant, upload
from threadline.bootstrap import Container
from threadline.local.openai_stub import OpenAIStub, Reply, ToolCall

pytestmark = pytest.mark.integration

BILLING = """# Billing

## Refunds

Refunds are paid back to the original card within five business days after approval.

## Invoices

Invoices are emailed on the first day of every month as PDF files.
"""
SHIPPING = """# Shipping

Orders ship from the Rotterdam warehouse. Express delivery to Germany takes one day.
"""


def _events(client: httpx.Client, path: str, tenant: Tenant, query: str) -> list[tuple[str, dict[str, Any]]]:
    with connect_sse(client, "POST", path, json={"query": query}, headers=tenant.headers) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [(event.event, json.loads(event.data)) for event in source.iter_sse()]


@pytest.fixture
def live(live_url: str) -> Any:
    with httpx.Client(base_url=live_url, timeout=30) as client:
        yield client


def test_offline_answer_quotes_passages_and_says_no_model(client: TestClient, tenant: Tenant) -> None:
    # Given a project with documents and no language model
    upload(client, tenant, "Billing", BILLING)
    upload(client, tenant, "Shipping", SHIPPING)
    # When a question is asked
    response = client.post(
        f"/query/v1/projects/{tenant.project_id}/chat/",
        json={"query": "How long do refunds take?"},
        headers=tenant.headers,
    )
    # Then the answer says so plainly and quotes the most relevant passage with its source
    assert response.status_code == 200, response.text
    body = response.json()
    assert "No language model is configured" in body["answer"]
    assert "five business days" in body["answer"]
    assert body["sources"][0]["title"] == "Billing" and body["sources"][0]["heading"] == "Billing > Refunds"
    assert body["sources"][0]["cited"] is True
    # And the thread keeps the exchange
    thread = client.get(f"/query/v1/threads/{body['thread_id']}/", headers=tenant.headers).json()
    assert thread["first_question"] == "How long do refunds take?" and thread["message_count"] == 1
    assert thread["messages"][0]["question_answer_id"] == body["question_answer_id"]
    assert thread["messages"][0]["status"] == "complete" and thread["messages"][0]["model"] == "extractive"


def test_stream_is_typed_sse_grounded_in_sources(live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant) -> None:
    # Given a document and a model that answers in words
    upload(live, tenant, "Billing", BILLING)
    llm_stub.script(Reply(text="Refunds take five business days [1].", prompt_tokens=120, completion_tokens=9))
    # When the question is streamed
    events = _events(live, f"/query/v1/projects/{tenant.project_id}/chat/stream/", tenant, "How long do refunds take?")
    # Then the events are meta, tokens, sources, done, in that order
    names = [name for name, _ in events]
    assert names[0] == "meta" and names[-2:] == ["sources", "done"]
    assert set(names[1:-2]) == {"token"} and len(names[1:-2]) >= 5
    assert "".join(data["text"] for name, data in events if name == "token") == "Refunds take five business days [1]."
    meta, done = events[0][1], events[-1][1]
    assert done["usage"] == {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129}
    assert done["question_answer_id"] == meta["question_answer_id"] and done["status"] == "complete"
    assert done["first_token_ms"] <= done["latency_ms"]
    sources = events[-2][1]["sources"]
    assert sources[0]["heading"] == "Billing > Refunds" and sources[0]["cited"] is True
    # And the model was given the grounded rules, the numbered passage and the question
    sent = llm_stub.requests[0]
    assert sent["stream"] is True and sent["model"] == "stub-model"
    assert "cite it like [1]" in sent["messages"][0]["content"]
    assert "[1] Billing > Billing > Refunds" in sent["messages"][-1]["content"]
    assert sent["messages"][-1]["content"].endswith("Question: How long do refunds take?")
    assert {tool["function"]["name"] for tool in sent["tools"]} == {"search_documents", "handoff_to_human"}


def test_follow_up_sends_history_and_thread_keeps_it_whole(
    live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant
) -> None:
    # Given a thread with one exchange
    upload(live, tenant, "Billing", BILLING)
    llm_stub.script(Reply(text="Five business days [1]."), Reply(text="On the first of the month [2]."))
    first = live.post(
        f"/query/v1/projects/{tenant.project_id}/chat/", json={"query": "Refund time?"}, headers=tenant.headers
    ).json()
    # When a follow-up is asked in it
    second = live.post(
        f"/query/v1/threads/{first['thread_id']}/chat/", json={"query": "And invoices?"}, headers=tenant.headers
    )
    # Then the model saw the earlier turn before the new question
    assert second.status_code == 200, second.text
    roles = [(m["role"], m["content"]) for m in llm_stub.requests[1]["messages"]]
    assert roles[1] == ("user", "Refund time?") and roles[2] == ("assistant", "Five business days [1].")
    # And the thread comes back whole, with sources and usage per answer
    thread = live.get(f"/query/v1/threads/{first['thread_id']}/", headers=tenant.headers).json()
    assert [m["question"] for m in thread["messages"]] == ["Refund time?", "And invoices?"]
    assert thread["message_count"] == 2 and thread["first_question"] == "Refund time?"
    assert all(m["sources"] and m["usage"]["total_tokens"] == 49 for m in thread["messages"])
    assert thread["usage"]["total_tokens"] == 98


def test_thread_scope_and_system_prompt_are_inherited(live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant) -> None:
    # Given two documents and a thread limited to the shipping one, with its own instructions
    upload(live, tenant, "Billing", BILLING)
    shipping = upload(live, tenant, "Shipping", SHIPPING)
    thread = live.post(
        f"/query/v1/projects/{tenant.project_id}/threads/",
        json={"system_prompt": "Answer like a pirate.", "document_ids": [shipping]},
        headers=tenant.headers,
    )
    assert thread.status_code == 201
    # When a question that both documents touch is asked twice in it
    for _ in range(2):
        answer = live.post(
            f"/query/v1/threads/{thread.json()['id']}/chat/",
            json={"query": "How long do refunds and express deliveries take?"},
            headers=tenant.headers,
        ).json()
        # Then only the shipping document is searched, and the operator's prompt reaches the model
        assert {s["title"] for s in answer["sources"]} == {"Shipping"}
        assert "Answer like a pirate." in llm_stub.requests[-1]["messages"][0]["content"]
    assert live.get(f"/query/v1/threads/{thread.json()['id']}/", headers=tenant.headers).json()["message_count"] == 2


def test_tool_call_runs_a_narrower_search_then_answers(
    live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant
) -> None:
    # Given a model that first searches, then answers
    upload(live, tenant, "Billing", BILLING)
    upload(live, tenant, "Shipping", SHIPPING)
    llm_stub.script(
        Reply(
            tool_calls=(
                ToolCall("search_documents", '{"query": "express delivery Germany", "document_title": "Ship"}'),
            )
        ),
        Reply(text="Express to Germany takes one day."),
    )
    # When a question is streamed
    events = _events(live, f"/query/v1/projects/{tenant.project_id}/chat/stream/", tenant, "What about invoices?")
    # Then the tool result went back to the model with the new passage
    assert len(llm_stub.requests) == 2
    tool_message = llm_stub.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_1"
    assert "Rotterdam" in tool_message["content"]
    assistant = llm_stub.requests[1]["messages"][-2]
    assert assistant["tool_calls"][0]["function"]["name"] == "search_documents"
    # And the answer streams with the found passage among its sources
    assert events[-1][0] == "done"
    assert any(s["title"] == "Shipping" for s in events[-2][1]["sources"])


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("search_documents", '{"query": 5, "bogus": true}', "invalid arguments for search_documents"),
        ("search_documents", '{"query": "unterminated', "invalid arguments for search_documents"),
        ("delete_everything", "{}", "unknown tool"),
        ("handoff_to_human", '{"reason": ""}', "invalid arguments for handoff_to_human"),
    ],
)
def test_invalid_tool_calls_are_reported_back_to_the_model(
    live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant, name: str, arguments: str, expected: str
) -> None:
    # Given a model that calls a tool badly, then answers
    llm_stub.script(Reply(tool_calls=(ToolCall(name, arguments),)), Reply(text="Sorry, the documents do not say."))
    # When asked
    response = live.post(f"/query/v1/projects/{tenant.project_id}/chat/", json={"query": "Hi?"}, headers=tenant.headers)
    # Then the chat completes and the model was told what was wrong
    assert response.status_code == 200 and response.json()["answer"] == "Sorry, the documents do not say."
    tool_message = llm_stub.requests[1]["messages"][-1]
    assert (
        tool_message["role"] == "tool"
        and tool_message["content"].startswith("Error:")
        and expected in tool_message["content"]
    )


def test_handoff_to_human_is_recorded(live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant) -> None:
    llm_stub.script(
        Reply(tool_calls=(ToolCall("handoff_to_human", '{"reason": "customer wants to cancel the contract"}'),)),
        Reply(text="A colleague will contact you."),
    )
    events = _events(live, f"/query/v1/projects/{tenant.project_id}/chat/stream/", tenant, "I want a human")
    done = events[-1][1]
    assert done["handoff_reason"] == "customer wants to cancel the contract"
    thread = live.get(f"/query/v1/threads/{done['thread_id']}/", headers=tenant.headers).json()
    assert thread["messages"][0]["handoff_reason"] == "customer wants to cancel the contract"


def test_model_failure_is_an_error_event_or_503_and_the_question_is_kept(
    live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant
) -> None:
    # Given a model server that fails (the SDK retries once, so each failure is scripted twice)
    llm_stub.script(*[Reply(status=500)] * 4)
    # When asked over SSE and over JSON
    events = _events(live, f"/query/v1/projects/{tenant.project_id}/chat/stream/", tenant, "Anyone there?")
    response = live.post(
        f"/query/v1/projects/{tenant.project_id}/chat/", json={"query": "Hello?"}, headers=tenant.headers
    )
    # Then SSE ends with an error event, JSON is a 503, and the question is saved as failed
    assert [name for name, _ in events] == ["meta", "error"]
    assert events[-1][1]["code"] == "unavailable"
    assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"
    thread = live.get(f"/query/v1/threads/{events[0][1]['thread_id']}/", headers=tenant.headers).json()
    assert thread["messages"][0]["status"] == "failed" and thread["messages"][0]["question"] == "Anyone there?"


def test_client_disconnect_mid_stream_saves_an_incomplete_answer(
    live: httpx.Client, llm_stub: OpenAIStub, llm_container: Container, tenant: Tenant
) -> None:
    # Given a slow model with a long answer
    llm_stub.script(Reply(text=" ".join(f"word{i}" for i in range(300)), delay_s=0.02))
    # When the client reads the first few tokens and hangs up
    seen: list[str] = []
    with connect_sse(
        live,
        "POST",
        f"/query/v1/projects/{tenant.project_id}/chat/stream/",
        json={"query": "Tell me everything"},
        headers=tenant.headers,
    ) as source:
        for event in source.iter_sse():
            seen.append(event.event)
            if event.event == "meta":
                message_id = json.loads(event.data)["question_answer_id"]
            if seen.count("token") == 5:
                break
    # Then the server saves the question and the partial answer, marked incomplete
    row = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with psycopg.connect(llm_container.settings.database_url) as conn:
            row = conn.execute("SELECT status, answer, question FROM messages WHERE id = %s", (message_id,)).fetchone()
        if row is not None and row[0] != "pending":
            break
        time.sleep(0.05)
    assert row is not None and row[0] == "incomplete"
    assert row[1].startswith("word0 word1 word2 word3") and "word299" not in row[1]
    assert row[2] == "Tell me everything"


def test_another_project_cannot_read_chat_in_or_retrieve_from_a_thread(
    live: httpx.Client, llm_stub: OpenAIStub, tenant: Tenant, other_tenant: Tenant
) -> None:
    # Given the tenant's document and thread
    secret = upload(live, tenant, "Billing", BILLING)
    asked = live.post(
        f"/query/v1/projects/{tenant.project_id}/chat/", json={"query": "Refunds?"}, headers=tenant.headers
    ).json()
    thread_path = f"/query/v1/threads/{asked['thread_id']}/"
    # When the other project reads it, chats in it, scopes a thread to its document, or asks the same question
    read = live.get(thread_path, headers=other_tenant.headers)
    follow_up = live.post(f"{thread_path}chat/", json={"query": "Refunds?"}, headers=other_tenant.headers)
    follow_up_stream = live.post(f"{thread_path}chat/stream/", json={"query": "Refunds?"}, headers=other_tenant.headers)
    scoped = live.post(
        f"/query/v1/projects/{other_tenant.project_id}/threads/",
        json={"document_ids": [secret]},
        headers=other_tenant.headers,
    )
    own = live.post(
        f"/query/v1/projects/{other_tenant.project_id}/chat/",
        json={"query": "How long do refunds take?"},
        headers=other_tenant.headers,
    ).json()
    # Then it is all absent, and its own chat retrieves nothing of the tenant's
    assert read.status_code == follow_up.status_code == follow_up_stream.status_code == scoped.status_code == 404
    assert own["sources"] == []
    assert "five business days" not in json.dumps(llm_stub.requests[-1])
    # And the tenant's thread is untouched
    assert len(live.get(thread_path, headers=tenant.headers).json()["messages"]) == 1


@pytest.mark.parametrize("query", ["", " " * 3, "x" * 4001])
def test_bad_queries_are_422(client: TestClient, tenant: Tenant, query: str) -> None:
    response = client.post(
        f"/query/v1/projects/{tenant.project_id}/chat/", json={"query": query}, headers=tenant.headers
    )
    assert response.status_code == 422 and "error" in response.json()


def test_a_thread_id_in_a_new_chat_body_is_422_not_a_new_thread(
    client: TestClient, tenant: Tenant, container: Container
) -> None:
    # Given a tenant (and no threads yet)
    url = f"/query/v1/projects/{tenant.project_id}/chat/"
    # When the thread's id is put in the body instead of the URL
    response = client.post(url, json={"query": "And then?", "thread_id": str(uuid4())}, headers=tenant.headers)
    # Then it is a 422 naming the field, and no thread was started
    assert response.status_code == 422 and response.json()["error"]["details"]["field"] == "thread_id"
    with container.db.transaction() as conn:
        row = conn.execute("SELECT count(*) AS n FROM threads WHERE project_id = %s", (tenant.project_id,)).fetchone()
    assert row is not None and row["n"] == 0
