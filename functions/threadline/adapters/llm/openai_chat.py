"""`LanguageModel` over the `openai` SDK (async, streaming): OpenAI, Ollama, vLLM, llama.cpp, ..."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import httpx
import openai
from openai import AsyncOpenAI, omit

from threadline.domain.chat import LlmEvent, TextDelta, ToolCallRequest, Usage
from threadline.domain.errors import Unavailable

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam


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
        try:
            stream = await self._client.chat.completions.create(
                model=self._model,
                # Plain dicts in the documented wire shape; the SDK's TypedDicts add nothing at run time.
                messages=cast("list[ChatCompletionMessageParam]", messages),
                stream=True,
                stream_options={"include_usage": True},
                tools=cast("list[ChatCompletionToolParam]", tools) if tools else omit,
            )
            calls: dict[int, _PartialCall] = {}
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        yield Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    for choice in chunk.choices:
                        if choice.delta.content:
                            yield TextDelta(choice.delta.content)
                        for delta in choice.delta.tool_calls or []:
                            _merge(calls.setdefault(delta.index, _PartialCall()), delta)
        except (openai.APIError, httpx.HTTPError) as exc:
            # A stream cut mid-way surfaces as a raw httpx error, not as one of the SDK's own.
            raise Unavailable("the language model could not answer", reason=type(exc).__name__) from exc
        for index in sorted(calls):
            call = calls[index]
            yield ToolCallRequest(call.id or f"call_{index}", call.name, call.arguments)


def _merge(call: _PartialCall, delta: Any) -> None:
    if delta.id:
        call.id = delta.id
    if delta.function is not None:
        call.name += delta.function.name or ""
        call.arguments += delta.function.arguments or ""
