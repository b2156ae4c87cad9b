"""Where a thread came from: the channel it was asked through, recorded once when the thread is created."""

from __future__ import annotations

from typing import Literal, get_args

from threadline.domain.errors import InvalidInput

Channel = Literal["api", "widget", "openai", "mcp"]
"""`api`: the /query/v1 chat routes (and imported threads); `widget`: the embeddable widget; `openai`: POST
/v1/chat/completions; `mcp`: the hosted MCP server's ask tool."""

CHANNELS: tuple[Channel, ...] = get_args(Channel)
DEFAULT_CHANNEL: Channel = "api"


def parse_channel(value: str) -> Channel:
    """A known channel, or InvalidInput naming the known ones."""
    for channel in CHANNELS:
        if value == channel:
            return channel
    raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}", channel=value[:50])
