"""A real HTTP server speaking OpenAI chat completions (non-streaming), scripted per request.

The LLM classifier's tests point the real `openai` SDK at it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ChatServer:
    """Replies with queued (status, content) pairs, the default one when the queue is empty; records requests."""

    base_url: str = ""
    default: tuple[int, str] = (200, "")
    requests: list[dict[str, Any]] = field(default_factory=list)
    replies: deque[tuple[int, str]] = field(default_factory=deque)

    def next_reply(self, body: dict[str, Any]) -> tuple[int, str]:
        self.requests.append(body)
        return self.replies.popleft() if self.replies else self.default


def _handler(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, content = server.next_reply(body)
            if status == 200:
                payload: dict[str, Any] = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
                }
            else:
                payload = {"error": {"message": "scripted failure", "type": "server_error", "code": None}}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def chat_server() -> Iterator[ChatServer]:
    """Serve on 127.0.0.1 (a free port) for the duration of the block."""
    state = ChatServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
