"""The queue contracts: every message Threadline puts on SQS, as one typed model per `kind`.

Producers send `model_dump_json()` through `adapters.aws.queues.send_messages`; consumers parse a record's
body with `parse_body(Model, body)`. Unknown fields are refused, so a producer and a consumer that drift
apart fail loudly (and the message goes to its dead-letter queue) instead of being half understood.

Consumers parse with the model in their record handler rather than through Powertools'
`BatchProcessor(model=...)`: that needs `aws_lambda_powertools.utilities.parser.models`, which builds
every event model Powertools ships on import and roughly doubled a handler's import time here.
"""

from __future__ import annotations

from typing import Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class QueueMessage(BaseModel):
    """Base of every queue message: immutable, and no field it does not declare."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassifyThread(QueueMessage):
    """ClassifyQueue: label a thread from its first question (chat, hand-backs, imports, the sweeper)."""

    kind: Literal["classify_thread"] = "classify_thread"
    project_id: UUID
    thread_id: UUID


class MeasureInteraction(QueueMessage):
    """MetricsQueue: measure one saved exchange (question and answer) and raise its alerts."""

    kind: Literal["measure_interaction"] = "measure_interaction"
    project_id: UUID
    thread_id: UUID
    message_id: UUID


class ImportChunk(QueueMessage):
    """ImportQueue: import one chunk (a byte range of whole CSV records) of an uploaded file."""

    kind: Literal["import_chunk"] = "import_chunk"
    project_id: UUID
    job_id: UUID
    chunk_no: int = Field(ge=0)


class ContinueIngest(QueueMessage):
    """IngestQueue: carry on ingesting a document that one invocation could not finish in its time.

    The content hash names the upload: a message about content the document no longer has changes nothing.
    """

    kind: Literal["continue_ingest"] = "continue_ingest"
    project_id: UUID
    document_id: UUID
    content_hash: str = Field(min_length=64, max_length=64)
    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)


M = TypeVar("M", bound=QueueMessage)


def parse_body(model: type[M], body: str) -> M:
    """A record's body as `model`; raises pydantic's ValidationError for anything else (a poison message)."""
    return model.model_validate_json(body)
