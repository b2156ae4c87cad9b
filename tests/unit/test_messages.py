"""The queue contracts: every message kind round-trips, and anything else is refused."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from pydantic import ValidationError

from threadline.messages import ClassifyThread, ImportChunk, MeasureInteraction, QueueMessage, parse_body


@pytest.mark.unit
@pytest.mark.parametrize(
    "message",
    [
        ClassifyThread(project_id=uuid4(), thread_id=uuid4()),
        MeasureInteraction(project_id=uuid4(), thread_id=uuid4(), message_id=uuid4()),
        ImportChunk(project_id=uuid4(), job_id=uuid4(), chunk_no=3),
    ],
)
def test_every_kind_round_trips_through_its_json_body(message: QueueMessage) -> None:
    # When a message is sent as JSON and parsed back with its own model
    parsed = parse_body(type(message), message.model_dump_json())
    # Then it is the same message, and its body names its kind
    assert parsed == message and f'"kind":"{message.kind}"' in message.model_dump_json()  # type: ignore[attr-defined]


@pytest.mark.unit
@pytest.mark.parametrize(
    "body",
    [
        "",
        "[]",
        json.dumps({"kind": "measure_interaction", "project_id": str(uuid4()), "thread_id": str(uuid4())}),
        '{"kind": "classify_thread", "project_id": "x", "thread_id": "y"}',
        # A field the consumer does not know means producer and consumer drifted apart: refused, not ignored.
        json.dumps({"kind": "classify_thread", "project_id": str(uuid4()), "thread_id": str(uuid4()), "force": True}),
    ],
)
def test_poison_is_refused(body: str) -> None:
    with pytest.raises(ValidationError):
        parse_body(ClassifyThread, body)


@pytest.mark.unit
def test_a_chunk_number_is_never_negative() -> None:
    with pytest.raises(ValidationError):
        ImportChunk(project_id=uuid4(), job_id=uuid4(), chunk_no=-1)
