"""The one table from domain errors to HTTP responses, and a JSON body for every error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from python_multipart.exceptions import MultipartParseError
from starlette.exceptions import HTTPException as StarletteHTTPException

from threadline.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from threadline.observability import logger

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    Unauthorized: 401,
    Forbidden: 403,
    RateLimited: 429,
    Unavailable: 503,
    UnsupportedMediaType: 415,
}


class ErrorDetailPublic(BaseModel):
    """What went wrong: a stable `code` per kind of error, a readable `message`, and context in `details`.

    `details` is an object. When fields are at fault, `details.field` names the first one and `details.errors`
    lists each problem as `{"field", "message"}` (plus `in`: body, query or path, and `type` for request
    validation); other keys carry context (`running_id`, `max_bytes`, `document_id`, ...).
    """

    code: str = Field(examples=["invalid_input"])
    message: str
    details: dict[str, Any] | None = None


class ErrorPublic(BaseModel):
    """The body of every error response."""

    error: ErrorDetailPublic


ERROR_SCHEMA = "ErrorPublic"


def _documented(description: str) -> dict[str, Any]:
    # The body's schema by reference rather than as `model`: FastAPI builds a field (a pydantic TypeAdapter) for
    # every (route, status) model it is given, 270 of them for these responses, 0.11 s of the routers' 0.65 s
    # import (every cold start of Api and Chat); `document_error_schema` puts ErrorPublic in the components once.
    schema = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document_error_schema(app: FastAPI) -> None:
    """Add ErrorPublic, and the model it nests, to the OpenAPI components that the error responses reference."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # FastAPI builds the document once and keeps it (this same dict)
            components = generate().setdefault("components", {})
            error = ErrorPublic.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
            added = {**error.pop("$defs", {}), ERROR_SCHEMA: error}
            # In name order, as FastAPI lists the schemas it found itself.
            components["schemas"] = dict(sorted({**added, **components.get("schemas", {})}.items()))
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend its document


# The error responses every /query/v1 route documents; routes add their own (409, 415) next to these.
API_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _documented("`unauthorized`: X-API-KEY is missing or invalid"),
    403: _documented("`forbidden`: a widget key outside its routes, or from an origin not listed on it"),
    404: _documented("`not_found`: no such resource in the key's project (another project's look the same)"),
    422: _documented("`invalid_input`: a field, query parameter or body is not acceptable; `details.field` names it"),
    429: _documented("`rate_limited`: a widget key's requests per minute (per key, per client IP); see Retry-After"),
    503: _documented("`unavailable`: a dependency (database, queue, model) cannot serve the request now"),
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: _documented("`conflict`: the request collides with the current state")
}
UNSUPPORTED: dict[int | str, dict[str, Any]] = {
    415: _documented("`unsupported_media_type`: a format Threadline cannot read")
}


def error_body(code: str, message: str, details: object | None = None) -> dict[str, object]:
    """The JSON shape of every error: {"error": {"code", "message", "details"?}}."""
    error: dict[str, object] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    status = next((s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 400)
    headers = {"WWW-Authenticate": "X-API-KEY"} if status == 401 else None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse(error_body(exc.code, exc.message, exc.details or None), status_code=status, headers=headers)


def field_problems(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic's errors as `{"field", "in", "message", "type"}` (the field without its body/query/path prefix)."""
    problems: list[dict[str, str]] = []
    for e in errors:
        loc = [str(part) for part in e.get("loc", ())]
        where, path = (loc[0], loc[1:]) if loc and loc[0] in {"body", "query", "path", "header"} else ("body", loc)
        problems.append(
            {"field": ".".join(path) or where, "in": where, "message": str(e.get("msg", "")), "type": e.get("type", "")}
        )
    return problems


def invalid_fields(problems: list[dict[str, str]]) -> InvalidInput:
    """One InvalidInput for field problems: the message and `details.field` name the first one."""
    first = problems[0]
    return InvalidInput(f"{first['field']}: {first['message']}", field=first["field"], errors=problems)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    # Request validation is one more kind of invalid input: the same code, status and details as the domain's.
    assert isinstance(exc, RequestValidationError)
    return await _domain_error(request, invalid_fields(field_problems(exc.errors())))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # The framework's own 400s are bodies it could not parse (bytes that are not JSON, a multipart form
        # over its limits): invalid input like any other, so the documented 422 naming `body` (found by fuzzing).
        return await _domain_error(request, InvalidInput(str(exc.detail), field="body"))
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


async def _unparsable_form(request: Request, exc: Exception) -> JSONResponse:
    # A multipart body the parser rejects (a part without headers) escaped the upload routes' `request.form()`
    # as a 500 (found by fuzzing): it is invalid input, named `body`.
    return await _domain_error(request, InvalidInput(f"the multipart body cannot be parsed: {exc}", field="body"))


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", extra={"error_type": type(exc).__name__})
    return JSONResponse(error_body("internal_error", "an unexpected error occurred"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the table on an app."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(MultipartParseError, _unparsable_form)
    app.add_exception_handler(Exception, _unexpected_error)
