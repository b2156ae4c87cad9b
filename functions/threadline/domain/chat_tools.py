"""Tools the model may call, with arguments validated by pydantic before anything runs."""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SearchDocuments(BaseModel):
    """Search this project's documents again with a narrower query (within the thread's document scope)."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=2, max_length=500, description="What to look for, in a few specific words")
    document_title: str | None = Field(
        default=None, max_length=300, description="Only search documents whose title contains this text"
    )
    top_k: int = Field(default=4, ge=1, le=10, description="How many passages to return")


class HandoffToHuman(BaseModel):
    """Hand the conversation to a human support agent."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500, description="Why a human is needed, in one sentence")


TOOL_MODELS: dict[str, type[BaseModel]] = {
    "search_documents": SearchDocuments,
    "handoff_to_human": HandoffToHuman,
}


def tool_schemas() -> list[dict[str, Any]]:
    """The `tools` parameter of a chat-completions request (a fresh copy: the caller may change it)."""
    return copy.deepcopy(_tool_schemas())


@functools.cache
def _tool_schemas() -> list[dict[str, Any]]:
    # Built once per process: pydantic's model_json_schema on every model call was 9.6% of the chat app's CPU
    # with 20 concurrent streams (py-spy, bench.chat), a copy costs a few microseconds.
    return [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": model.__doc__ or name,
                "parameters": model.model_json_schema(),
            },
        }
        for name, model in TOOL_MODELS.items()
    ]


class ToolArgumentError(Exception):
    """The model named an unknown tool or sent arguments that do not validate; the message goes back to it."""


def parse_tool_call(name: str, arguments: str) -> BaseModel:
    """Validate a call; raises ToolArgumentError with a message the model can act on."""
    model = TOOL_MODELS.get(name)
    if model is None:
        raise ToolArgumentError(f"unknown tool {name!r}; available tools: {', '.join(TOOL_MODELS)}")
    try:
        return model.model_validate_json(arguments or "{}")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
        raise ToolArgumentError(f"invalid arguments for {name}: {problems}. Call it again with valid JSON.") from exc
