"""Threads and chat: JSON answers, and the same answers streamed as Server-Sent Events."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from threadline.api.deps import ContainerDep, PrincipalDep, ProjectIdDep
from threadline.api.invocation import answer_deadline
from threadline.api.models import RequestModel
from threadline.api.routers.thread_labels import CategoryRefPublic, ThreadListItem
from threadline.api.routing import contract_router
from threadline.bootstrap import Container
from threadline.domain.channels import DEFAULT_CHANNEL, Channel
from threadline.domain.chat import (
    MAX_QUESTION_CHARS,
    ChatEvent,
    Done,
    Exchange,
    Failed,
    Meta,
    NewExchange,
    Outcome,
    Sources,
    Token,
)
from threadline.domain.errors import Unavailable
from threadline.domain.feedback import AnswerFeedback
from threadline.domain.tenancy import Principal

router = contract_router(prefix="/query/v1", tags=["chat"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `meta`, then `token` (many), then `sources` and `done`, or `error`",
        # Each event as `{"event", "data"}`: `data` is the JSON text of the event's payload.
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"enum": ["meta", "token", "sources", "done", "error"]},
                        "data": {"type": "string", "contentMediaType": "application/json"},
                    },
                }
            }
        },
    }
}


class ThreadCreate(RequestModel):
    """A thread's own instructions and the documents its answers may draw on (all of them when omitted)."""

    system_prompt: str | None = Field(default=None, max_length=8000)
    document_ids: list[UUID] | None = Field(default=None, max_length=200)


class ChatRequest(RequestModel):
    """A question (a follow-up goes to /threads/{thread_id}/chat/: a `thread_id` here is a 422, not a new thread)."""

    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)


class UsagePublic(BaseModel):
    """Tokens the language model counted."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt: int, completion: int) -> UsagePublic:
        """Usage with its total."""
        return cls(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


class ThreadPublic(BaseModel):
    """A thread without its messages."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    project_id: UUID
    system_prompt: str | None
    document_ids: list[UUID] | None
    first_question: str | None
    message_count: int
    created_at: datetime
    updated_at: datetime


class FeedbackCommentPublic(BaseModel):
    """A comment left with a rating."""

    model_config = ConfigDict(from_attributes=True)

    rating: Literal["up", "down"]
    comment: str
    updated_at: datetime


class AnswerFeedbackPublic(BaseModel):
    """The answer's ratings: counts, the reading key's own (`mine`), and the comments, oldest first."""

    model_config = ConfigDict(from_attributes=True)

    up: int = 0
    down: int = 0
    mine: Literal["up", "down"] | None = None
    comments: list[FeedbackCommentPublic] = Field(default_factory=list)


class ExchangePublic(BaseModel):
    """One question and its answer, with the sources the answer drew on and its ratings."""

    question_answer_id: UUID
    question: str
    answer: str
    status: str
    sources: list[dict[str, Any]]
    model: str | None
    usage: UsagePublic
    latency_ms: int | None
    first_token_ms: int | None
    handoff_reason: str | None
    error: str | None
    created_at: datetime
    completed_at: datetime | None
    # False: the documents do not cover the question (no passage passed the relevance floor); null: unknown.
    grounded: bool | None
    feedback: AnswerFeedbackPublic = Field(default_factory=AnswerFeedbackPublic)

    @classmethod
    def of(cls, exchange: Exchange, feedback: AnswerFeedback | None = None) -> ExchangePublic:
        """The public view of an exchange (with no ratings unless given)."""
        return cls(
            question_answer_id=exchange.id,
            question=exchange.question,
            answer=exchange.answer,
            status=exchange.status,
            sources=exchange.sources,
            model=exchange.model,
            usage=UsagePublic.of(exchange.prompt_tokens, exchange.completion_tokens),
            latency_ms=exchange.latency_ms,
            first_token_ms=exchange.first_token_ms,
            handoff_reason=exchange.handoff_reason,
            error=exchange.error,
            created_at=exchange.created_at,
            completed_at=exchange.completed_at,
            grounded=exchange.grounded,
            feedback=AnswerFeedbackPublic.model_validate(feedback or AnswerFeedback()),
        )


class ThreadDetail(ThreadPublic):
    """A thread with its label (as the thread listing and PATCH show it), its whole history, oldest first,
    and the usage of all its answers."""

    category: CategoryRefPublic | None
    label_source: Literal["auto", "user"] | None
    label_confidence: float | None
    label_model: str | None
    labelled_at: datetime | None
    label_runner_up: CategoryRefPublic | None
    messages: list[ExchangePublic]
    usage: UsagePublic


class ChatAnswer(BaseModel):
    """A complete answer."""

    thread_id: UUID
    question_answer_id: UUID
    answer: str
    sources: list[dict[str, Any]]
    status: str
    usage: UsagePublic
    latency_ms: int | None
    handoff_reason: str | None
    # False: the documents do not cover the question, and the answer says so (an unanswered question).
    grounded: bool | None


@router.post("/projects/{project_id}/threads/", status_code=201)
def create_thread(body: ThreadCreate, container: ContainerDep, project_id: ProjectIdDep) -> ThreadPublic:
    """Start an empty thread; follow-ups inherit its system prompt and document scope."""
    thread = container.chat.create_thread(project_id, body.system_prompt, body.document_ids)
    return ThreadPublic.model_validate(thread)


@router.get("/threads/{thread_id}/")
def get_thread(thread_id: UUID, container: ContainerDep, principal: PrincipalDep) -> ThreadDetail:
    """The thread with its label and every question, answer, sources and usage; 404 for another project's thread."""
    found = container.chat.get_thread(principal.project_id, thread_id, _started_by(principal))
    ratings = container.feedback.for_thread(thread_id, principal.key_id)
    messages = [ExchangePublic.of(e, ratings.get(e.id)) for e in found.exchanges]
    usage = UsagePublic.of(
        sum(m.usage.prompt_tokens for m in messages), sum(m.usage.completion_tokens for m in messages)
    )
    label = ThreadListItem.model_validate(found.summary).model_dump(include=_LABEL_FIELDS)
    return ThreadDetail(
        **ThreadPublic.model_validate(found.thread).model_dump(), **label, messages=messages, usage=usage
    )


_LABEL_FIELDS = {"category", "label_source", "label_confidence", "label_model", "labelled_at", "label_runner_up"}


@router.delete("/threads/{thread_id}/", status_code=204)
def delete_thread(thread_id: UUID, container: ContainerDep, principal: PrincipalDep) -> Response:
    """Delete a thread: its exchanges, their metrics and alerts go with it, and analytics no longer count it."""
    container.chat.delete_thread(principal.project_id, thread_id)
    return Response(status_code=204)


def _started_by(principal: Principal) -> UUID | None:
    """A widget key sees only the threads it started (other visitors' conversations are not its to read)."""
    return principal.key_id if principal.is_widget else None


async def _start(container: Container, principal: Principal, query: str, thread_id: UUID | None) -> NewExchange:
    # The widget's threads are of the `widget` channel; every thread records the key that started it.
    channel: Channel = "widget" if principal.is_widget else DEFAULT_CHANNEL
    return await run_in_threadpool(
        container.chat.start, principal.project_id, query, thread_id, channel, principal.key_id, principal.is_widget
    )


@router.post("/projects/{project_id}/chat/")
async def chat_new(
    body: ChatRequest, container: ContainerDep, project_id: ProjectIdDep, principal: PrincipalDep, request: Request
) -> ChatAnswer:
    """Ask in a new thread; the whole answer as JSON."""
    started = time.perf_counter()
    exchange = await _start(container, principal, body.query, None)
    return await _collect(exchange, container.chat.stream(project_id, exchange, started, answer_deadline(request)))


@router.post("/threads/{thread_id}/chat/")
async def chat_follow_up(
    thread_id: UUID, body: ChatRequest, container: ContainerDep, principal: PrincipalDep, request: Request
) -> ChatAnswer:
    """Ask a follow-up in a thread; the whole answer as JSON."""
    started = time.perf_counter()
    exchange = await _start(container, principal, body.query, thread_id)
    return await _collect(
        exchange, container.chat.stream(principal.project_id, exchange, started, answer_deadline(request))
    )


@router.post("/projects/{project_id}/chat/stream/", response_class=StreamingResponse, responses=_SSE_RESPONSE)
async def chat_new_stream(
    body: ChatRequest, container: ContainerDep, project_id: ProjectIdDep, principal: PrincipalDep, request: Request
) -> StreamingResponse:
    """Ask in a new thread; the answer as Server-Sent Events: meta, token..., sources, done (or error)."""
    started = time.perf_counter()
    exchange = await _start(container, principal, body.query, None)
    return _event_stream(exchange, container.chat.stream(project_id, exchange, started, answer_deadline(request)))


@router.post("/threads/{thread_id}/chat/stream/", response_class=StreamingResponse, responses=_SSE_RESPONSE)
async def chat_follow_up_stream(
    thread_id: UUID, body: ChatRequest, container: ContainerDep, principal: PrincipalDep, request: Request
) -> StreamingResponse:
    """Ask a follow-up; the answer as Server-Sent Events."""
    started = time.perf_counter()
    exchange = await _start(container, principal, body.query, thread_id)
    return _event_stream(
        exchange, container.chat.stream(principal.project_id, exchange, started, answer_deadline(request))
    )


async def _collect(exchange: NewExchange, events: AsyncIterator[ChatEvent]) -> ChatAnswer:
    outcome: Outcome | None = None
    async for event in events:
        if isinstance(event, Failed):
            raise Unavailable(event.message, question_answer_id=str(exchange.message_id))
        if isinstance(event, Done):
            outcome = event.outcome
    assert outcome is not None  # the stream ends with Done or Failed
    return ChatAnswer(
        thread_id=exchange.thread_id,
        question_answer_id=exchange.message_id,
        answer=outcome.answer,
        sources=outcome.sources,
        status=outcome.status,
        usage=UsagePublic.of(outcome.prompt_tokens, outcome.completion_tokens),
        latency_ms=outcome.latency_ms,
        handoff_reason=outcome.handoff_reason,
        grounded=outcome.grounded,
    )


def _event_stream(exchange: NewExchange, events: AsyncIterator[ChatEvent]) -> StreamingResponse:
    encode = SseEncoder(exchange)

    async def body() -> AsyncIterator[bytes]:
        async for event in events:
            yield encode(event)

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


# JSON as json.dumps(..., separators=(",", ":")) writes it, without building an encoder per call (dumps does,
# given any option); a str is encoded straight by the C escaper.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


class SseEncoder:
    """The bytes of each Server-Sent Event of one exchange, whose `event:` field names its type.

    A token is one string escape and a concatenation (the ids and the usage no longer go through dicts and a
    pydantic model per event): an answer is mostly tokens, each its own event.
    """

    def __init__(self, exchange: NewExchange) -> None:
        self._ids = {"thread_id": str(exchange.thread_id), "question_answer_id": str(exchange.message_id)}

    def __call__(self, event: ChatEvent) -> bytes:
        """One event, `event: <name>\ndata: <JSON>\n\n`, as bytes (the JSON is ASCII: non-ASCII is escaped)."""
        if isinstance(event, Token):
            return f'event: token\ndata: {{"text":{_compact_json(event.text)}}}\n\n'.encode()
        name, data = self._payload(event)
        return f"event: {name}\ndata: {_compact_json(data)}\n\n".encode()

    def _payload(self, event: Meta | Sources | Done | Failed) -> tuple[str, dict[str, Any]]:
        if isinstance(event, Meta):
            return "meta", self._ids
        if isinstance(event, Sources):
            return "sources", {"sources": event.sources}
        if isinstance(event, Failed):
            return "error", {**self._ids, "code": event.code, "message": event.message}
        outcome = event.outcome
        prompt, completion = outcome.prompt_tokens, outcome.completion_tokens
        return "done", {
            **self._ids,
            "status": outcome.status,
            "model": outcome.model,
            # UsagePublic's fields, without building the model for one dump.
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
            "latency_ms": outcome.latency_ms,
            "first_token_ms": outcome.first_token_ms,
            "handoff_reason": outcome.handoff_reason,
            "grounded": outcome.grounded,
        }
