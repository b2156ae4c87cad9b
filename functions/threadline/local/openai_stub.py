"""A scripted server speaking the OpenAI chat-completions protocol (streaming SSE, tool calls, usage).

Tests and benchmarks point the real `openai` SDK at it, so the client code that runs against OpenAI,
vLLM or Ollama runs here too. Each request takes the next queued `Reply` (or the default one) and
records what it was sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class ToolCall:
    """A tool call the stub makes; `arguments` is sent verbatim (it may be invalid on purpose)."""

    name: str
    arguments: str
    id: str = "call_1"


@dataclass(frozen=True)
class Reply:
    """One scripted completion: text streamed a word at a time, and/or tool calls, or an HTTP error."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    delay_s: float = 0.0
    prompt_tokens: int = 42
    completion_tokens: int = 7
    status: int = 200
    error: str = "scripted failure"  # the error's message when status is not 200


DEFAULT_REPLY = Reply(text="The documentation answers this [1].")


@dataclass
class OpenAIStub:
    """The ASGI app plus its script and its record of requests."""

    default: Reply = DEFAULT_REPLY
    base_url: str = ""  # set by whoever serves it: the SDK's base URL, ending in /v1
    requests: list[dict[str, Any]] = field(default_factory=list)
    _script: deque[Reply] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order."""
        with self._lock:
            self._script.extend(replies)

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            return self._script.popleft() if self._script else self.default

    @property
    def app(self) -> Starlette:
        """The ASGI application (mount at any base URL ending in /v1)."""
        return Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        reply = self._next(body)
        if reply.status != 200:
            error = {"error": {"message": reply.error, "type": "server_error", "code": None}}
            return JSONResponse(error, status_code=reply.status)
        model = str(body.get("model", "stub"))
        if not body.get("stream"):
            return JSONResponse(_completion(model, reply))
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(_chunks(model, reply, usage), media_type="text/event-stream")


def _completion(model: str, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.tool_calls
        ]
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
        "usage": _usage(reply),
    }


def _usage(reply: Reply) -> dict[str, int]:
    total = reply.prompt_tokens + reply.completion_tokens
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens, "total_tokens": total}


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    payload = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n"


async def _chunks(model: str, reply: Reply, usage: bool) -> AsyncIterator[str]:
    yield _chunk(model, {"role": "assistant", "content": ""})
    words = reply.text.split(" ") if reply.text else []
    for i, word in enumerate(words):
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        yield _chunk(model, {"content": word if i == 0 else f" {word}"})
    for index, call in enumerate(reply.tool_calls):
        # As OpenAI does: the id and name first, then the arguments in pieces.
        head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        yield _chunk(model, {"tool_calls": [head]})
        for start in range(0, len(call.arguments), 8):
            piece = call.arguments[start : start + 8]
            yield _chunk(model, {"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield _chunk(model, {}, "tool_calls" if reply.tool_calls else "stop")
    if usage:
        payload = {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [],
            "usage": _usage(reply),
        }
        yield f"data: {json.dumps(payload)}\n\n"
    yield "data: [DONE]\n\n"
