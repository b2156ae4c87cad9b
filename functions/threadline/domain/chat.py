# Over 350 lines: the chat's one flow and its types; being changed in parallel, split types from flow after that lands.
"""Threads and grounded, streamed answers: retrieve, prompt, stream, use tools, save, announce."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

from threadline.domain.channels import DEFAULT_CHANNEL, Channel
from threadline.domain.chat_tools import (
    HandoffToHuman,
    SearchDocuments,
    ToolArgumentError,
    parse_tool_call,
    tool_schemas,
)
from threadline.domain.errors import DomainError, InvalidInput, Unavailable
from threadline.domain.labels import ThreadSummary
from threadline.domain.ports import ChatEvents, Embedder, Vectors
from threadline.domain.prompting import Passage, Turn, build_messages, extractive_answer, format_numbered
from threadline.domain.text import strip_unstorable

MAX_QUESTION_CHARS = 4000
MAX_TOOL_ROUNDS = 2
RECORD_TIMEOUT_S = 30.0
EXCERPT_CHARS = 300
OFFLINE_MODEL = "extractive"
# What a client is told when answering fails for a reason it cannot act on (the details go to the log only).
INTERNAL_ERROR_MESSAGE = "the answer could not be completed"

log = logging.getLogger(__name__)


# ---- entities ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Thread:
    """A conversation of one project."""

    id: UUID
    project_id: UUID
    system_prompt: str | None
    document_ids: list[UUID] | None
    first_question: str | None
    message_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Exchange:
    """One question and its answer (`id` is the question_answer_id)."""

    id: UUID
    question: str
    answer: str
    sources: list[dict[str, Any]]
    status: str
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int | None
    first_token_ms: int | None
    error: str | None
    handoff_reason: str | None
    created_at: datetime
    completed_at: datetime | None
    grounded: bool | None = None


@dataclass(frozen=True, slots=True)
class ThreadHistory:
    """A thread with every exchange, oldest first, and its label as the thread listing shows it."""

    thread: Thread
    exchanges: list[Exchange]
    summary: ThreadSummary


@dataclass(frozen=True, slots=True)
class Context:
    """What answering needs, read in one database round trip: the thread's prompt, its history, the passages."""

    system_prompt: str | None
    history: list[Turn]  # newest first
    passages: list[Passage]


@dataclass(frozen=True, slots=True)
class NewExchange:
    """An exchange about to be answered."""

    thread_id: UUID
    message_id: UUID
    question: str
    new_thread: bool
    context: Context
    channel: Channel = DEFAULT_CHANNEL  # recorded on the thread when this exchange creates it
    api_key_id: UUID | None = None  # the asking key, recorded on the thread when this exchange creates it

    @property
    def passages(self) -> list[Passage]:
        """The passages retrieved for the question."""
        return self.context.passages


@dataclass(slots=True)
class Outcome:
    """How an exchange ended; saved whatever happens to the client."""

    answer: str = ""
    status: str = "complete"
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int | None = None
    first_token_ms: int | None = None
    retrieval_score: float | None = None
    error: str | None = None
    handoff_reason: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    # False: no passage passed the relevance floor, so the documents do not cover the question (an
    # unanswered question, counted as a coverage gap). None until the answer is finished.
    grounded: bool | None = None


# A send to SQS takes milliseconds; when it does not, the answer must not wait long for it.
EVENTS_FLUSH_TIMEOUT_S = 1.0

# ---- events streamed to the client ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Meta:
    """Sent first: where the exchange lives."""

    thread_id: UUID
    question_answer_id: UUID


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class Sources:
    """The passages the answer could draw on, numbered as cited."""

    sources: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Done:
    """Sent last on success: usage and timings."""

    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Failed:
    """The answer could not be completed (the exchange is saved as failed)."""

    code: str
    message: str


ChatEvent = Meta | Token | Sources | Done | Failed


# ---- ports ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Model output text."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """A complete tool call assembled from the stream."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one completion."""

    prompt_tokens: int
    completion_tokens: int


LlmEvent = TextDelta | ToolCallRequest | Usage


class LanguageModel(Protocol):
    """A streaming chat-completions model (raises Unavailable when it cannot answer)."""

    @property
    def model_name(self) -> str: ...

    def stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> AsyncIterator[LlmEvent]: ...


class ChatRepository(Protocol):
    """Storage of threads and exchanges, and retrieval over chunks."""

    def create_thread(self, project_id: UUID, system_prompt: str | None, document_ids: list[UUID] | None) -> Thread: ...

    def get_thread(self, project_id: UUID, thread_id: UUID, started_by: UUID | None = None) -> ThreadHistory:
        """The thread of the project (and, given `started_by`, started with that key); NotFound otherwise."""
        ...

    def read_context(
        self,
        project_id: UUID,
        thread_id: UUID | None,
        query: str,
        query_vector: Vectors,
        top_k: int,
        started_by: UUID | None = None,
    ) -> Context:
        """Prompt, history and passages (by words and meaning) for a question (a follow-up's thread must belong
        to the project, and, given `started_by`, have been started with that key)."""
        ...

    def record_question(
        self,
        project_id: UUID,
        thread_id: UUID,
        message_id: UUID,
        question: str,
        new_thread: bool,
        channel: Channel = DEFAULT_CHANNEL,
        api_key_id: UUID | None = None,
    ) -> bool:
        """Create the thread (in `channel`, started by `api_key_id`) if new, count the question and save it pending;
        True if it is the first."""
        ...

    def finish_exchange(self, message_id: UUID, outcome: Outcome) -> None: ...

    def delete_thread(self, project_id: UUID, thread_id: UUID) -> None:
        """Delete a thread with its exchanges, their metrics and alerts, and take its metric values out of the
        project's running statistics, in one transaction; NotFound for another project's thread."""
        ...

    def search(
        self,
        project_id: UUID,
        thread_id: UUID,
        query: str,
        query_vector: Vectors,
        top_k: int,
        title_filter: str | None,
    ) -> list[Passage]: ...


# ---- the service ------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """The state of one answer while it streams."""

    project_id: UUID
    question: str
    exchange: NewExchange
    started: float
    passages: list[Passage]
    recorded: Future[bool]
    deadline: float | None = None  # time.monotonic() by which the model must have finished
    outcome: Outcome = field(default_factory=Outcome)

    def token(self, text: str) -> Token:
        if self.outcome.first_token_ms is None:
            self.outcome.first_token_ms = _ms_since(self.started)
        self.outcome.answer += text
        return Token(text)


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def source_list(passages: Sequence[Passage], answer: str) -> list[dict[str, Any]]:
    """Passages as stored and shown, each marked with whether the answer cites it."""
    cited = {int(n) for n in re.findall(r"\[(\d{1,3})\]", answer)}
    return [
        {
            "index": number,
            "document_id": str(p.document_id),
            "title": p.title,
            "heading": p.heading,
            "chunk_id": p.chunk_id,
            "score": round(p.score, 4),
            "excerpt": p.content[:EXCERPT_CHARS],
            "cited": number in cited,
        }
        for number, p in enumerate(passages, start=1)
    ]


# How far below the floor a passage of a covered question may score and still be given to the model. The floor
# decides whether the documents cover the question at all (its best passage), calibrated on Git's manual, where
# every right page's passage scored 0.438 or more. On two manuals that chose nothing (bench.retrieval on SQLite's
# and Sphinx's), right pages' passages scored down to 0.32 and 0.26, and a flat floor dropped those of covered
# questions (1 of 78 and 5 of 83) although a better passage had shown the documents cover them. 0.10 below the
# floor (0.25) is where off-topic questions' best passages sit on Git's (p50 0.19, p95 0.30): beneath it, noise.
PASSAGE_MARGIN = 0.10


def relevant_passages(passages: Sequence[Passage], floor: float) -> list[Passage]:
    """Nothing when no passage reaches the relevance floor: the documents do not cover the question, and off-topic
    questions would otherwise get their nearest, unrelated, passages as sources. Otherwise every passage within
    `PASSAGE_MARGIN` below the floor, the rest neither shown to the model nor cited."""
    if not passages or max(p.score for p in passages) < floor:
        return []
    return [p for p in passages if p.score >= floor - PASSAGE_MARGIN]


class ChatService:
    """Answers questions in threads. `start` is synchronous (embed + one round trip); `stream` is async."""

    def __init__(
        self,
        repo: ChatRepository,
        embedder: Embedder,
        llm: LanguageModel | None,
        events: ChatEvents,
        top_k: int,
        history_budget: int,
        min_score: float = -1.0,
    ) -> None:
        self._repo = repo
        self._min_score = min_score
        self._embedder = embedder
        self._llm = llm
        self._events = events
        self._top_k = top_k
        self._history_budget = history_budget
        self._writer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="chat-writer")

    def create_thread(self, project_id: UUID, system_prompt: str | None, document_ids: list[UUID] | None) -> Thread:
        """A new, empty thread; `document_ids` must be documents of the project."""
        unique = list(dict.fromkeys(document_ids)) if document_ids is not None else None
        return self._repo.create_thread(project_id, (system_prompt or "").strip() or None, unique)

    def get_thread(self, project_id: UUID, thread_id: UUID, started_by: UUID | None = None) -> ThreadHistory:
        """A thread of the project with its whole history; given `started_by`, only a thread that key started."""
        return self._repo.get_thread(project_id, thread_id, started_by)

    def relevant(self, passages: Sequence[Passage]) -> list[Passage]:
        """The passages the model sees and may cite (`relevant_passages`)."""
        return relevant_passages(passages, self._min_score)

    def delete_thread(self, project_id: UUID, thread_id: UUID) -> None:
        """Delete a thread of the project and everything measured about it (analytics follow by trigger)."""
        self._repo.delete_thread(project_id, thread_id)

    def start(
        self,
        project_id: UUID,
        question: str,
        thread_id: UUID | None,
        channel: Channel = DEFAULT_CHANNEL,
        api_key_id: UUID | None = None,
        own_threads_only: bool = False,
    ) -> NewExchange:
        """Gather what answering needs; NotFound for another project's thread (or, with `own_threads_only`, for a
        thread `api_key_id` did not start). A new thread is of `channel` and records `api_key_id`."""
        question = question.strip()
        if not question or len(question) > MAX_QUESTION_CHARS:
            raise InvalidInput(f"query must be 1-{MAX_QUESTION_CHARS} characters")
        vector = self._embedder.embed([question])[0]
        started_by = api_key_id if own_threads_only else None
        context = self._repo.read_context(project_id, thread_id, question, vector, self._top_k, started_by)
        context = replace(context, passages=self.relevant(context.passages))
        return NewExchange(thread_id or uuid4(), uuid4(), question, thread_id is None, context, channel, api_key_id)

    async def stream(
        self, project_id: UUID, exchange: NewExchange, started: float, deadline: float | None = None
    ) -> AsyncGenerator[ChatEvent, None]:
        """Stream the answer. Whatever happens (model error, client gone), the exchange is saved.

        `deadline` (time.monotonic()): when the model must have finished, so that the answer is saved and the
        stream ends with `error` before whatever serves it runs out of time (the API derives it from the
        invocation's time limit). A model still writing then is stopped, as one that failed: what it wrote is
        kept with the error."""
        # The question is saved on a worker thread while the model thinks: its durable commit (an fsync)
        # overlaps the wait for the first token instead of preceding it.
        recorded = self._writer.submit(
            self._repo.record_question,
            project_id,
            exchange.thread_id,
            exchange.message_id,
            exchange.question,
            exchange.new_thread,
            exchange.channel,
            exchange.api_key_id,
        )
        run = _Run(project_id, exchange.question, exchange, started, list(exchange.passages), recorded, deadline)
        run.outcome.retrieval_score = exchange.passages[0].score if exchange.passages else None
        try:
            yield Meta(exchange.thread_id, exchange.message_id)
            async for event in self._generate(run):
                yield event
        except (GeneratorExit, asyncio.CancelledError):
            # The client went away. Save synchronously: awaiting is not possible once the stream is being torn down.
            run.outcome.status = "incomplete"
            self._finish(run)
            raise
        except DomainError as exc:
            run.outcome.status, run.outcome.error = "failed", exc.message
            yield Failed(exc.code, exc.message)
        except Exception:
            # Anything else still ends the stream with an `error` event and a saved (failed) exchange: a client
            # that saw `meta` must never be left with a dropped connection and neither `done` nor `error`.
            log.exception("answering failed", extra={"question_answer_id": str(exchange.message_id)})
            run.outcome.status, run.outcome.error = "failed", INTERNAL_ERROR_MESSAGE
            yield Failed("internal_error", INTERNAL_ERROR_MESSAGE)
        run.outcome.sources = source_list(run.passages, run.outcome.answer)
        if run.outcome.status == "complete":
            yield Sources(run.outcome.sources)
        try:
            saved = await asyncio.to_thread(self._finish, run)
        except Exception:
            # Saving failed after `sources` (issue 17: the client got meta, tokens, sources, then a dropped
            # connection): `error` is still the last event, so the client knows the answer was not kept.
            log.exception("saving the exchange failed", extra={"question_answer_id": str(exchange.message_id)})
            yield Failed("internal_error", "the answer could not be saved")
            return
        if not saved:
            yield Failed("not_found", "the thread was deleted while answering")
        elif run.outcome.status == "complete":
            yield Done(run.outcome)
        # After `done` the answer is whole on the client's side; holding the stream open until the classify
        # and metrics messages are handed to the queue keeps them inside this invocation (Lambda may freeze
        # the environment once the response ends) and off the next request's path.
        await asyncio.to_thread(self._events.flush, EVENTS_FLUSH_TIMEOUT_S)

    def _finish(self, run: _Run) -> bool:
        """Save the answer once the question is saved; False if the question could not be (thread gone)."""
        try:
            first_question = run.recorded.result(timeout=RECORD_TIMEOUT_S)
        except DomainError:
            return False
        outcome = run.outcome
        # The model's text is the one input no edge validates: a NUL in it must not lose the whole exchange.
        outcome.answer = strip_unstorable(outcome.answer)
        outcome.latency_ms = _ms_since(run.started)
        # Grounded when any passage passed the floor, including one a search_documents call found.
        outcome.grounded = bool(run.passages)
        if not outcome.sources:
            outcome.sources = source_list(run.passages, outcome.answer)
        self._repo.finish_exchange(run.exchange.message_id, outcome)
        # Both only enqueue: classification and metrics run elsewhere, never on this path.
        if first_question:
            self._events.thread_started(run.project_id, run.exchange.thread_id, run.question)
        self._events.answer_completed(run.project_id, run.exchange.thread_id, run.exchange.message_id)
        return True

    async def _generate(self, run: _Run) -> AsyncIterator[Token]:
        if self._llm is None:
            run.outcome.model = OFFLINE_MODEL
            for piece in extractive_answer(run.passages):
                yield run.token(piece)
            return
        run.outcome.model = self._llm.model_name
        context = run.exchange.context
        messages = build_messages(
            run.question, run.passages, context.history, context.system_prompt, self._history_budget
        )
        for round_number in range(MAX_TOOL_ROUNDS + 1):
            tools = tool_schemas() if round_number < MAX_TOOL_ROUNDS else None
            calls: list[ToolCallRequest] = []
            text = ""
            events = self._llm.stream(messages, tools)
            # Wrapped only when there is a deadline: without one (uvicorn, the tests) no layer per event.
            async for event in events if run.deadline is None else _until(run.deadline, events):
                if isinstance(event, TextDelta):
                    text += event.text
                    yield run.token(event.text)
                elif isinstance(event, ToolCallRequest):
                    calls.append(event)
                else:
                    run.outcome.prompt_tokens += event.prompt_tokens
                    run.outcome.completion_tokens += event.completion_tokens
            if not calls:
                return
            messages.append(_assistant_tool_message(text, calls))
            for call in calls:
                messages.append({"role": "tool", "tool_call_id": call.id, "content": await self._call_tool(run, call)})

    async def _call_tool(self, run: _Run, call: ToolCallRequest) -> str:
        """Run one tool; invalid calls are answered with the reason so the model can correct itself."""
        try:
            args = parse_tool_call(call.name, call.arguments)
        except ToolArgumentError as exc:
            return f"Error: {exc}"
        if isinstance(args, HandoffToHuman):
            run.outcome.handoff_reason = args.reason
            return "A human support agent has been notified and will follow up with the user."
        assert isinstance(args, SearchDocuments)
        vector = (await asyncio.to_thread(self._embedder.embed, [args.query]))[0]
        found = self.relevant(
            await asyncio.to_thread(
                self._repo.search,
                run.project_id,
                run.exchange.thread_id,
                args.query,
                vector,
                args.top_k,
                args.document_title,
            )
        )
        # A passage found again keeps its number, so citations stay consistent across the answer.
        numbers = {p.chunk_id: i for i, p in enumerate(run.passages, start=1)}
        numbered: list[tuple[int, Passage]] = []
        for passage in found:
            if passage.chunk_id not in numbers:
                run.passages.append(passage)
                numbers[passage.chunk_id] = len(run.passages)
            numbered.append((numbers[passage.chunk_id], passage))
        return format_numbered(numbered)


async def _until(deadline: float, events: AsyncIterator[LlmEvent]) -> AsyncIterator[LlmEvent]:
    """`events` as they come, until `deadline` (time.monotonic()): then the model's stream is closed and
    Unavailable raised, whether it was writing or silent."""
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            try:
                # A timer on this one await, not wait_for's task per event: a yield never sits inside it.
                async with asyncio.timeout(remaining):
                    event = await anext(events)
            except StopAsyncIteration:
                return
            yield event
    except TimeoutError as exc:
        raise Unavailable("the language model did not finish in time", reason="deadline") from exc
    finally:
        closing = getattr(events, "aclose", None)
        if closing is not None:
            await closing()


def _assistant_tool_message(text: str, calls: Sequence[ToolCallRequest]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
        ],
    }
