"""A whole answer from the chat's event stream, and its sources as citations a plain-text client can read.

The OpenAI-compatible endpoint and the MCP server's `ask` tool answer through `ChatService` like every other
channel (the thread is saved, classified and measured the same way); these helpers only change the shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from threadline.domain.chat import ChatEvent, Done, Failed, Outcome
from threadline.domain.errors import Unavailable


async def collect(events: AsyncIterator[ChatEvent]) -> Outcome:
    """Run the stream to its end; the outcome of `Done`, or Unavailable when the answer failed."""
    outcome: Outcome | None = None
    async for event in events:
        if isinstance(event, Failed):
            failure = Unavailable(event.message, reason=event.code)
            # Drain the rest (the service still saves the exchange and flushes its events after a failure).
            async for _ in events:
                pass
            raise failure
        if isinstance(event, Done):
            outcome = event.outcome
    if outcome is None:  # the stream ends with Done or Failed; anything else is a broken promise
        raise Unavailable("the answer ended without a result")
    return outcome


def cited(sources: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sources the answer cites as [n]."""
    return [s for s in sources if s.get("cited")]


def citation_footer(sources: Sequence[dict[str, Any]]) -> str:
    """The cited sources as lines under the answer: "[1] Title > Heading". Empty when nothing is cited."""
    lines = []
    for source in cited(sources):
        where = f"{source['title']} > {source['heading']}" if source.get("heading") else str(source["title"])
        lines.append(f"[{source['index']}] {where}")
    return "\n\nSources:\n" + "\n".join(lines) if lines else ""
