"""`LanguageModel` over the `openai` SDK (async, streaming): OpenAI, Ollama, vLLM, llama.cpp, ...

The request goes through the SDK's client (its auth, base URL, timeout, retries and error classes), but through
its low-level `post` rather than `chat.completions.create`: `create` transforms the request through its
TypedDicts and parses every streamed chunk into pydantic models, about 40% of the app's CPU per chat in a
py-spy profile (20 streams; ~25% the request, ~13% the chunks), for a wire format this module only reads three
fields of. Here the body is serialised once and each `data:` line is one `json.loads`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI

from threadline.domain.chat import LlmEvent, TextDelta, ToolCallRequest, Usage
from threadline.domain.errors import Unavailable

# How long the end of a response may take after its `[DONE]` before the connection is given up instead.
_DRAIN_TIMEOUT_S = 0.5


@dataclass
class _PartialCall:
    """A tool call as its deltas arrive: the id and name come first, the arguments in pieces."""

    id: str = ""
    name: str = ""
    arguments: str = ""


class OpenAIChat:
    """Streams chat completions; tool-call deltas are assembled and emitted once the stream ends."""

    def __init__(self, base_url: str, api_key: str, model: str, timeout_s: float) -> None:
        # Local servers (Ollama, vLLM) need no key, but the SDK insists on one.
        self._client = AsyncOpenAI(
            base_url=base_url or None, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=1
        )
        self._model = model

    @property
    def model_name(self) -> str:
        """The model every request names."""
        return self._model

    async def stream(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> AsyncIterator[LlmEvent]:
        """Text deltas as they come, then the assembled tool calls, and usage when the server reports it."""
        body: dict[str, Any] = {
            "model": self._model,
            # Plain dicts in the documented wire shape, sent as they are.
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = tools
        calls: dict[int, _PartialCall] = {}
        try:
            # Bytes are sent as the body unchanged (the SDK's JSON content type and headers still apply).
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            response = await self._client.post(
                "/chat/completions", cast_to=httpx.Response, body=content, stream=True, stream_cls=None
            )
            try:
                events = _event_data(response)
                async for data in events:
                    if data.startswith("[DONE]"):
                        await _drain(events)
                        break
                    for event in _events_of(json.loads(data), calls, response):
                        yield event
            finally:
                await response.aclose()
        except (openai.APIError, httpx.HTTPError) as exc:
            # A stream cut mid-way surfaces as a raw httpx error, not as one of the SDK's own.
            raise Unavailable("the language model could not answer", reason=type(exc).__name__) from exc
        except ValueError as exc:
            # Not JSON (or not the chunk shape): the server does not speak the protocol, as good as no model.
            raise Unavailable("the language model could not answer", reason="malformed stream") from exc
        for index in sorted(calls):
            call = calls[index]
            yield ToolCallRequest(call.id or f"call_{index}", call.name, call.arguments)


async def _drain(rest: AsyncIterator[str]) -> None:
    """Read what follows `[DONE]` (the end of the chunked body, normally in the same packet), so the connection
    goes back to the pool: closed unread, every request paid a new TCP connection, in the app and in the server
    (cProfile: connect and close about 1.4 ms of the adapter's 5.8 ms CPU a stream, against the stub). A server
    that keeps the response open after `[DONE]` loses its connection, not the answer."""
    try:
        async with asyncio.timeout(_DRAIN_TIMEOUT_S):
            async for _ in rest:
                pass
    except (TimeoutError, httpx.HTTPError):
        pass


async def _event_data(response: httpx.Response) -> AsyncIterator[str]:
    """The `data` of each Server-Sent Event (its `data:` lines joined); other fields and comments are skipped."""
    data: list[str] = []
    # aiter_lines splits on \n, \r\n and \r, also across network reads.
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def _events_of(chunk: Any, calls: dict[int, _PartialCall], response: httpx.Response) -> list[LlmEvent]:
    """What one streamed chunk says: usage, text deltas; tool-call pieces go into `calls`."""
    try:
        return _read(chunk, calls, response)
    except (AttributeError, TypeError) as exc:  # a field of the wrong type: a list where an object belongs
        raise ValueError(f"a streamed chunk is not the documented shape: {exc}") from exc


def _read(chunk: Any, calls: dict[int, _PartialCall], response: httpx.Response) -> list[LlmEvent]:
    if not isinstance(chunk, dict):
        raise ValueError("a streamed chunk is not an object")
    error = chunk.get("error")
    if error:
        # As the SDK's own stream does: an error object mid-stream is the server giving up.
        message = error.get("message") if isinstance(error, dict) else None
        raise openai.APIError(
            message if isinstance(message, str) and message else "An error occurred during streaming",
            request=response.request,
            body=error,
        )
    events: list[LlmEvent] = []
    usage = chunk.get("usage")
    if usage is not None:
        events.append(Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)))
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        text = delta.get("content")
        if text:
            events.append(TextDelta(text))
        for piece in delta.get("tool_calls") or ():
            _merge(calls.setdefault(int(piece.get("index") or 0), _PartialCall()), piece)
    return events


def _merge(call: _PartialCall, piece: dict[str, Any]) -> None:
    if piece.get("id"):
        call.id = piece["id"]
    function = piece.get("function")
    if function:
        call.name += function.get("name") or ""
        call.arguments += function.get("arguments") or ""
