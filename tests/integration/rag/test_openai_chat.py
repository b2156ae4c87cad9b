"""The language-model adapter against real HTTP servers: the OpenAI-protocol stub, and servers that misbehave."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from threadline.adapters.llm.openai_chat import OpenAIChat
from threadline.domain.chat import LlmEvent, TextDelta, ToolCallRequest, Usage
from threadline.domain.errors import Unavailable
from threadline.local.openai_stub import OpenAIStub, Reply, ToolCall
from threadline.local.serving import BackgroundServer

pytestmark = pytest.mark.integration

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


@pytest.fixture
def stub(llm_stub: OpenAIStub) -> OpenAIStub:
    """The package's OpenAI-protocol stub (conftest), under a shorter name."""
    return llm_stub


def _collect(llm: OpenAIChat, tools: list[dict[str, Any]] | None = None) -> list[LlmEvent]:
    async def run() -> list[LlmEvent]:
        return [event async for event in llm.stream([{"role": "user", "content": "Hi?"}], tools)]

    return asyncio.run(run())


def test_text_streams_in_pieces_with_usage_and_the_request_is_the_documented_shape(stub: OpenAIStub) -> None:
    # Given a model that answers in words and reports usage
    stub.script(Reply(text="Refunds take five days.", prompt_tokens=11, completion_tokens=5))
    # When the adapter streams a completion with tools
    events = _collect(OpenAIChat(stub.base_url, "sk-test", "m-1", 5), TOOLS)
    # Then each word is its own delta, in order, and usage comes once
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Refunds", " take", " five", " days."]
    assert [e for e in events if isinstance(e, Usage)] == [Usage(11, 5)]
    assert not [e for e in events if isinstance(e, ToolCallRequest)]
    # And the server got the model, the messages, the tools, a streamed request with usage, and the key
    sent = stub.requests[0]
    assert sent["model"] == "m-1" and sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == [{"role": "user", "content": "Hi?"}] and sent["tools"] == TOOLS


def test_tool_calls_are_assembled_from_their_pieces_in_index_order(stub: OpenAIStub) -> None:
    # Given a model that calls two tools, each call's arguments sent 8 characters at a time
    first = ToolCall("search_documents", json.dumps({"query": "refund policy for annual plans"}), id="call_a")
    second = ToolCall("handoff_to_human", '{"reason": "wants a person"}', id="call_b")
    stub.script(Reply(text="Let me look.", tool_calls=(first, second)))
    # When streamed without tools offered (no `tools` key is sent)
    events = _collect(OpenAIChat(stub.base_url, "", "m-1", 5))
    # Then both calls come whole, after the text, in index order
    calls = [e for e in events if isinstance(e, ToolCallRequest)]
    assert calls == [
        ToolCallRequest("call_a", "search_documents", first.arguments),
        ToolCallRequest("call_b", "handoff_to_human", second.arguments),
    ]
    assert events.index(calls[0]) > max(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert "tools" not in stub.requests[0]


def test_a_failing_server_is_unavailable_after_one_retry(stub: OpenAIStub) -> None:
    # Given a server that fails twice (the first try and the SDK's one retry)
    stub.script(Reply(status=500), Reply(status=500), Reply(text="never read"))
    # When streamed, then the failure is the domain's Unavailable, and exactly two requests were made
    with pytest.raises(Unavailable):
        _collect(OpenAIChat(stub.base_url, "k", "m", 5))
    assert len(stub.requests) == 2


def test_one_failure_is_retried_and_then_answers(stub: OpenAIStub) -> None:
    stub.script(Reply(status=503), Reply(text="Second time lucky."))
    events = _collect(OpenAIChat(stub.base_url, "k", "m", 5))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Second time lucky."
    assert len(stub.requests) == 2


def _misbehaving(body: AsyncIterator[bytes]) -> Starlette:
    async def completions(request: Request) -> Response:
        await request.body()
        return StreamingResponse(body, media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def _data(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _delta(text: str) -> bytes:
    return _data({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]})


def test_a_stream_cut_mid_way_is_unavailable_after_the_text_so_far() -> None:
    # Given a server that sends two words, then drops the connection without ending the response
    async def cut() -> AsyncIterator[bytes]:
        yield _delta("Half")
        yield _delta(" an")
        await asyncio.sleep(0.05)
        raise RuntimeError("connection lost")

    seen: list[str] = []

    async def run(url: str) -> None:
        async for event in OpenAIChat(url, "k", "m", 5).stream([{"role": "user", "content": "Hi?"}], None):
            if isinstance(event, TextDelta):
                seen.append(event.text)

    with BackgroundServer(_misbehaving(cut())) as server:
        # Then the words already sent arrive, and the cut is Unavailable (not a raw transport error)
        with pytest.raises(Unavailable):
            asyncio.run(run(f"{server.url}/v1"))
    assert seen == ["Half", " an"]


def test_an_error_event_in_the_stream_is_unavailable() -> None:
    # Given a server whose stream carries an error object after one word, as OpenAI's does on a mid-stream failure
    async def errored() -> AsyncIterator[bytes]:
        yield _delta("Hello")
        yield _data({"error": {"message": "overloaded", "type": "server_error"}})
        yield _delta(" never")

    with BackgroundServer(_misbehaving(errored())) as server, pytest.raises(Unavailable):
        _collect(OpenAIChat(f"{server.url}/v1", "k", "m", 5))


def test_comments_crlf_lines_and_split_packets_are_read_as_one_stream() -> None:
    # Given a server that sends keep-alive comments, CRLF line ends, an event split across packets, and [DONE]
    whole = _delta("Split across packets").replace(b"\n", b"\r\n")

    async def awkward() -> AsyncIterator[bytes]:
        yield b": keep-alive\n\n"
        yield whole[:17]
        await asyncio.sleep(0.01)
        yield whole[17:]
        yield _data({"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
        yield b"data: [DONE]\n\n"
        yield _delta("after done")

    with BackgroundServer(_misbehaving(awkward())) as server:
        events = _collect(OpenAIChat(f"{server.url}/v1", "k", "m", 5))
    # Then the event arrives whole, usage is read, and nothing after [DONE] is
    assert events == [TextDelta("Split across packets"), Usage(3, 4)]


def test_consecutive_completions_reuse_one_connection() -> None:
    # Given a server that records the client port of each request (one port: one TCP connection)
    ports: list[int] = []

    async def completions(request: Request) -> Response:
        await request.body()
        ports.append(request.client.port if request.client else -1)

        async def body() -> AsyncIterator[bytes]:
            yield _delta("Hi")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])

    async def three(url: str) -> list[list[LlmEvent]]:
        llm = OpenAIChat(url, "k", "m", 5)
        return [[e async for e in llm.stream([{"role": "user", "content": "Hi?"}], None)] for _ in range(3)]

    with BackgroundServer(app) as server:
        answers = asyncio.run(three(f"{server.url}/v1"))
    # Then every answer is whole, and all three went over the first request's connection
    assert answers == [[TextDelta("Hi")]] * 3
    assert len(ports) == 3 and len(set(ports)) == 1


def test_a_response_held_open_after_done_still_answers() -> None:
    # Given a server that sends [DONE] but does not end the response for a long while
    async def held() -> AsyncIterator[bytes]:
        yield _delta("Complete answer.")
        yield b"data: [DONE]\n\n"
        await asyncio.sleep(30)

    with BackgroundServer(_misbehaving(held())) as server:
        started = time.monotonic()
        events = _collect(OpenAIChat(f"{server.url}/v1", "k", "m", 20))
        # Then the answer is whole and not held for the server (nor failed by the read timeout)
        assert events == [TextDelta("Complete answer.")]
        assert time.monotonic() - started < 5


def test_the_request_carries_the_sdks_key_and_json_content_type_and_non_ascii_text() -> None:
    # Given a server that records the request's headers and body
    seen: dict[str, Any] = {}

    async def completions(request: Request) -> Response:
        seen["headers"], seen["body"] = dict(request.headers), await request.json()

        async def body() -> AsyncIterator[bytes]:
            yield _delta("ok")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])

    async def ask(url: str) -> list[LlmEvent]:
        llm = OpenAIChat(url, "sk-secret", "m", 5)
        return [e async for e in llm.stream([{"role": "user", "content": "Prix en € ?"}], None)]

    with BackgroundServer(app) as server:
        assert asyncio.run(ask(f"{server.url}/v1")) == [TextDelta("ok")]
    # Then the key is the SDK's bearer, the body is JSON, and the text arrives intact
    assert seen["headers"]["authorization"] == "Bearer sk-secret"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["body"]["messages"] == [{"role": "user", "content": "Prix en € ?"}]
