"""The one table from domain errors to HTTP responses, and a JSON body for every error."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from threadline.domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
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
    Unavailable: 503,
    UnsupportedMediaType: 415,
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
    return JSONResponse(error_body(exc.code, exc.message, exc.details or None), status_code=status, headers=headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
    ]
    return JSONResponse(error_body("invalid_request", "the request is not valid", details), status_code=422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", extra={"error_type": type(exc).__name__})
    return JSONResponse(error_body("internal_error", "an unexpected error occurred"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the table on an app."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
