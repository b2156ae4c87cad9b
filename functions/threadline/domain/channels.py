"""Where a thread came from: the channel it was asked through, recorded once when the thread is created."""

from __future__ import annotations

from typing import Literal, get_args

Channel = Literal["api", "widget", "openai", "mcp"]
"""`api`: the /query/v1 chat routes (and imported threads); `widget`: the embeddable widget; `openai`: POST
/v1/chat/completions; `mcp`: the hosted MCP server's ask tool. Migration 0009 allows exactly these."""

CHANNELS: tuple[Channel, ...] = get_args(Channel)
DEFAULT_CHANNEL: Channel = "api"
