"""The chat stream's events as bytes: one `event:` and one `data:` line each, whatever the text holds."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest

from threadline.api.routers.chat import SseEncoder, UsagePublic
from threadline.domain.chat import ChatEvent, Context, Done, Failed, Meta, NewExchange, Outcome, Sources, Token

pytestmark = pytest.mark.unit

EXCHANGE = NewExchange(uuid4(), uuid4(), "Refunds?", True, Context(None, [], []))
IDS = {"thread_id": str(EXCHANGE.thread_id), "question_answer_id": str(EXCHANGE.message_id)}


def _parse(raw: bytes) -> tuple[str, Any]:
    # An event is `event: <name>`, `data: <JSON>`, and a blank line: a raw newline inside the JSON would end it early.
    text = raw.decode("ascii")
    assert text.endswith("\n\n") and text.count("\n") == 3, text
    event, data = text[:-2].split("\n")
    assert event.startswith("event: ") and data.startswith("data: ")
    return event[len("event: ") :], json.loads(data[len("data: ") :])


@pytest.mark.parametrize(
    "text", ["plain", ' "quoted" \\ back', "two\nlines\r\n", "é ünïcode 日本語 🙂", "\u2028 separators \u2029", ""]
)
def test_a_token_is_one_event_whose_text_round_trips(text: str) -> None:
    assert _parse(SseEncoder(EXCHANGE)(Token(text))) == ("token", {"text": text})


def test_meta_sources_error_and_done_carry_their_payloads() -> None:
    encode = SseEncoder(EXCHANGE)
    sources = [{"index": 1, "title": "Billing", "cited": True, "score": 0.5}]
    outcome = Outcome(
        answer="x",
        model="m",
        prompt_tokens=120,
        completion_tokens=9,
        latency_ms=40,
        first_token_ms=12,
        handoff_reason=None,
        grounded=True,
    )
    events: list[tuple[ChatEvent, tuple[str, Any]]] = [
        (Meta(EXCHANGE.thread_id, EXCHANGE.message_id), ("meta", IDS)),
        (Sources(sources), ("sources", {"sources": sources})),
        (
            Failed("unavailable", "the model is down"),
            ("error", {**IDS, "code": "unavailable", "message": "the model is down"}),
        ),
        (
            Done(outcome),
            (
                "done",
                {
                    **IDS,
                    "status": "complete",
                    "model": "m",
                    "usage": {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129},
                    "latency_ms": 40,
                    "first_token_ms": 12,
                    "handoff_reason": None,
                    "grounded": True,
                },
            ),
        ),
    ]
    for event, expected in events:
        assert _parse(encode(event)) == expected
    # And the usage is UsagePublic's shape, field for field (the encoder writes it without building the model)
    assert _parse(encode(Done(outcome)))[1]["usage"] == UsagePublic.of(120, 9).model_dump()
