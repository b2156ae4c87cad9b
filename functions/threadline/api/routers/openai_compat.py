# Over 350 lines: OpenAI's wire models (request, response, stream chunk) and the two routes speaking them.
"""OpenAI-compatible chat: POST /v1/chat/completions and GET /v1/models, for any OpenAI client.

The key is the bearer token (`Authorization: Bearer <project key>`, as the openai SDK sends it). Every request
is answered by the chat service like any other question (a thread of channel `openai`, classified and measured),
and every error, including a body that does not parse, comes back in OpenAI's own shape
`{"error": {"message", "type", "param", "code"}}` so that OpenAI clients raise their usual exceptions.
Extensions: `thread_id` in the body continues a thread (its history kept server-side); responses carry
`thread_id`, `question_answer_id` and `sources`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from contextlib import aclosing
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from threadline.api.access import authorize
from threadline.api.deps import ContainerDep
from threadline.api.invocation import answer_deadline
from threadline.api.models import RequestModel
from threadline.domain import openai_compat
from threadline.domain.answering import citation_footer, collect
from threadline.domain.chat import ChatEvent, Failed, Meta, NewExchange, Outcome, Sources, Token
from threadline.domain.errors import DomainError, Forbidden, InvalidInput, NotFound, Unauthorized, Unavailable
from threadline.domain.openai_compat import MODEL_ALIAS, ChatMessage, InvalidMessages
from threadline.domain.tenancy import Principal
from threadline.observability import logger

# A chat request is a question and some history; 1 MiB is far above any real one and bounds what is parsed.
MAX_REQUEST_BYTES = 1024 * 1024
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
}


class OpenAIErrorDetail(BaseModel):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorPublic(BaseModel):
    """The body of every error of the OpenAI-compatible routes: OpenAI's shape, so its SDKs raise the right class."""

    error: OpenAIErrorDetail


def _documented(description: str) -> dict[str, Any]:
    return {"model": OpenAIErrorPublic, "description": description}


# Documented on every route, so a client (and the schema fuzzing) knows each status it may get.
OPENAI_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _documented("`invalid_request_error`: a parameter is invalid or not supported; `param` names it"),
    401: _documented("the bearer key is missing or invalid"),
    404: _documented("no such model (or thread) for this key"),
    503: _documented("a dependency (database, model) cannot serve the request now"),
}


def openai_error(
    status: int, message: str, code: str | None, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error as OpenAI sends it; the SDK raises the exception class of `status` with this body."""
    error = {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "param": param, "code": code}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _domain_error(exc: DomainError) -> JSONResponse:
    param = exc.details.get("param")
    param = param if isinstance(param, str) else None
    if isinstance(exc, Unauthorized):
        return openai_error(401, exc.message, "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, Forbidden):
        return openai_error(403, exc.message, exc.code)
    if isinstance(exc, NotFound):
        return openai_error(404, exc.message, "model_not_found" if param == "model" else "not_found", param)
    if isinstance(exc, InvalidInput):
        return openai_error(400, exc.message, exc.code, param)
    if isinstance(exc, Unavailable):
        return openai_error(503, exc.message, exc.code)
    return openai_error(400, exc.message, exc.code, param)


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    """The first problem of the body, as OpenAI words it: an unknown argument, a missing or invalid one."""
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = loc[0] + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:]) if loc else None
    kind = first.get("type", "")
    if kind == "json_invalid" or (kind == "model_attributes_type" and not loc):
        return openai_error(400, "We could not parse the JSON body of your request.", "invalid_json")
    if kind == "missing" and not loc:
        return openai_error(400, "The request needs a JSON body.", "invalid_json")
    if kind == "extra_forbidden":
        return openai_error(400, f"Unrecognized request argument supplied: {param}", "unknown_parameter", param)
    if kind == "missing":
        return openai_error(400, f"Missing required parameter: '{param}'.", "missing_required_parameter", param)
    return openai_error(400, f"Invalid value for '{param}': {first.get('msg', 'invalid')}.", "invalid_value", param)


async def _read_capped(request: Request) -> bool:
    """Read the body (at most MAX_REQUEST_BYTES) ahead of FastAPI; False when it is larger."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        return False
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            return False
    # Starlette's own cache of the body: FastAPI's parsing then reads these bytes instead of the spent stream.
    request._body = bytes(body)
    return True


class OpenAIRoute(APIRoute):
    """Routes whose every failure, validation of the body included, answers in OpenAI's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, wrapped: a body cap first, then OpenAI-shaped errors."""
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            if not await _read_capped(request):
                message = f"The request body may be at most {MAX_REQUEST_BYTES} bytes."
                return openai_error(413, message, "request_too_large")
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _validation_error(exc)
            except DomainError as exc:
                return _domain_error(exc)
            except StarletteHTTPException as exc:
                return openai_error(exc.status_code, str(exc.detail), None)
            except Exception:
                logger.exception("unhandled error in the OpenAI-compatible API")
                return openai_error(500, "The server had an error while processing your request.", None)

        return route


router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute, responses=OPENAI_ERRORS)
_bearer = HTTPBearer(auto_error=False, description="A project API key, as `Authorization: Bearer <key>`")


async def bearer_principal(
    request: Request,
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The project of the bearer key; 401 in OpenAI's shape when it is missing or invalid, 403 for a widget key."""
    if credentials is None:
        raise Unauthorized("You didn't provide an API key: send a project key as 'Authorization: Bearer <key>'.")
    return await run_in_threadpool(authorize, container, request, credentials.credentials)


BearerPrincipal = Annotated[Principal, Depends(bearer_principal)]


class ModelCard(BaseModel):
    """A model the key may use: its project's chatbot."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    """What `GET /v1/models` lists."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class ChatMessageIn(RequestModel):
    """A message as OpenAI clients send it. Content is text or a list of parts of which only text is read."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(RequestModel):
    """`include_usage`: a last chunk with the usage and no choices, as OpenAI sends it."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(RequestModel):
    """OpenAI's chat-completions request. Sampling parameters are accepted and ignored (the project's own model
    settings apply); tools, several choices, log probabilities and non-text output are refused with a 400;
    any argument OpenAI does not define is refused, as OpenAI refuses it."""

    model: str = Field(min_length=1, max_length=200, description=f"`{MODEL_ALIAS}` or the project's id")
    messages: list[ChatMessageIn]
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    thread_id: UUID | None = Field(
        default=None, description="Threadline extension: continue this thread (its history is kept server-side)"
    )
    # Refused unless empty or the default: Threadline runs its own tools server-side and answers once.
    tools: list[dict[str, Any]] | None = None
    functions: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    function_call: Any = None
    parallel_tool_calls: bool | None = None
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    # Accepted and ignored.
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    seed: int | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None


class AssistantMessage(BaseModel):
    """The answer, with its cited sources listed under it."""

    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    """The one choice of an answer."""

    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class CompletionUsage(BaseModel):
    """Tokens the language model counted for this answer (tool rounds included); 0 without a model."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """OpenAI's chat.completion, plus the Threadline extensions `thread_id`, `question_answer_id`, `sources`."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    thread_id: UUID
    question_answer_id: UUID
    sources: list[dict[str, Any]]


def _refuse_unsupported(body: ChatCompletionRequest) -> None:
    """Parameters that would change what an answer is, and that Threadline cannot honour: a clear 400 each."""
    if body.tools or body.functions:
        param = "tools" if body.tools else "functions"
        raise InvalidInput(
            "Tool definitions are not supported: the project's own tools (document search, handoff) run "
            "server-side. Send the conversation without tools.",
            param=param,
        )
    if body.tool_choice not in (None, "none") or body.function_call not in (None, "none"):
        raise InvalidInput("tool_choice is not supported (no client tools)", param="tool_choice")
    if body.n not in (None, 1):
        raise InvalidInput("only n=1 is supported", param="n")
    if body.logprobs:
        raise InvalidInput("logprobs are not supported", param="logprobs")
    if body.response_format is not None and body.response_format.get("type") != "text":
        raise InvalidInput("only the text response format is supported", param="response_format")
    if body.audio is not None or (body.modalities and set(body.modalities) != {"text"}):
        raise InvalidInput("only text output is supported", param="modalities")


def _messages(body: ChatCompletionRequest) -> list[ChatMessage]:
    """Each message reduced to its text; tool traffic and non-text parts are refused, naming the message."""
    messages: list[ChatMessage] = []
    for i, m in enumerate(body.messages):
        if m.role in ("tool", "function") or m.tool_calls:
            raise InvalidMessages("tool messages are not supported (no client tools)", param=f"messages[{i}]")
        if isinstance(m.content, list):
            texts: list[str] = []
            for j, part in enumerate(m.content):
                if part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise InvalidMessages("only text content parts are supported", param=f"messages[{i}].content[{j}]")
                texts.append(part["text"])
            text = "\n".join(texts)
        else:
            text = m.content or ""
        messages.append(ChatMessage(m.role, text))
    return messages


@router.get("/models")
async def list_models(container: ContainerDep, principal: BearerPrincipal) -> ModelList:
    """The models this key may use: its project's chatbot, as `threadline` (the project's id is accepted too)."""
    project = await run_in_threadpool(container.tenancy.get_project, principal.project_id)
    return ModelList(
        data=[ModelCard(id=MODEL_ALIAS, created=int(project.created_at.timestamp()), owned_by=project.name)]
    )


@router.get("/models/{model}")
async def get_model(model: str, container: ContainerDep, principal: BearerPrincipal) -> ModelCard:
    """One model: `threadline` or the key's project id; 404 for any other."""
    openai_compat.resolve_model(model, principal.project_id)
    project = await run_in_threadpool(container.tenancy.get_project, principal.project_id)
    return ModelCard(id=model, created=int(project.created_at.timestamp()), owned_by=project.name)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or chunks when stream is true"}},
)
async def chat_completions(
    body: ChatCompletionRequest, container: ContainerDep, principal: BearerPrincipal, request: Request
) -> ChatCompletion | StreamingResponse:
    """Answer the last user message from the project's documents, in a new thread or in `thread_id`'s."""
    started = time.perf_counter()
    openai_compat.resolve_model(body.model, principal.project_id)
    _refuse_unsupported(body)
    asked = openai_compat.conversation(_messages(body))
    try:
        exchange = await run_in_threadpool(
            container.chat.start, principal.project_id, asked.question, body.thread_id, "openai"
        )
    except NotFound as exc:
        raise NotFound(exc.message, param="thread_id") from exc
    exchange = openai_compat.with_conversation(exchange, asked)
    events = container.chat.stream(principal.project_id, exchange, started, answer_deadline(request))
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        chunks = _chunks(exchange, body.model, events, include_usage)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
    outcome = await collect(events)
    return _completion(exchange, body.model, outcome)


def _completion(exchange: NewExchange, model: str, outcome: Outcome) -> ChatCompletion:
    return ChatCompletion(
        id=_completion_id(exchange),
        created=int(time.time()),
        model=model,
        choices=[Choice(message=AssistantMessage(content=outcome.answer + citation_footer(outcome.sources)))],
        usage=_usage(outcome),
        thread_id=exchange.thread_id,
        question_answer_id=exchange.message_id,
        sources=outcome.sources,
    )


def _completion_id(exchange: NewExchange) -> str:
    return f"chatcmpl-{exchange.message_id.hex}"


def _usage(outcome: Outcome) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        total_tokens=outcome.prompt_tokens + outcome.completion_tokens,
    )


class _Chunks:
    """Chat events as chat.completion.chunk events: the role, the text, the cited sources, the finish."""

    def __init__(self, exchange: NewExchange, model: str, include_usage: bool) -> None:
        self._exchange = exchange
        self._include_usage = include_usage
        self._base = {
            "id": _completion_id(exchange),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "thread_id": str(exchange.thread_id),
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        data = {**self._base, "choices": [choice], **extra}
        if self._include_usage:
            data.setdefault("usage", None)
        return _sse(data)

    def of(self, event: ChatEvent) -> list[str]:
        """The chunks one chat event becomes (none for some)."""
        if isinstance(event, Token):
            return [self._chunk({"content": event.text})]
        if isinstance(event, Meta):
            return [self._chunk({"role": "assistant", "content": ""}, question_answer_id=str(event.question_answer_id))]
        if isinstance(event, Sources):
            footer = citation_footer(event.sources)
            return [self._chunk({"content": footer})] if footer else []
        if isinstance(event, Failed):
            # The openai SDK raises an APIError for a stream event that carries `error`.
            error = {"message": event.message, "type": "server_error", "param": None, "code": event.code}
            return [_sse({"error": error})]
        chunks = [self._chunk({}, "stop", sources=event.outcome.sources)]
        if self._include_usage:
            chunks.append(_sse({**self._base, "choices": [], "usage": _usage(event.outcome).model_dump()}))
        return chunks


async def _chunks(
    exchange: NewExchange, model: str, events: AsyncGenerator[ChatEvent, None], include_usage: bool
) -> AsyncIterator[str]:
    """The whole stream, ending with `data: [DONE]` as OpenAI's does."""
    writer = _Chunks(exchange, model, include_usage)
    # aclosing: a client that goes away closes the chat's generator at once, which saves the answer `incomplete`.
    async with aclosing(events) as stream:
        async for event in stream:
            for chunk in writer.of(event):
                yield chunk
    yield "data: [DONE]\n\n"


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"
