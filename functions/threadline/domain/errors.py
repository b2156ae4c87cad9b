"""Domain errors. Adapters raise these; the API maps each to one HTTP status in one table."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain reports to a caller."""

    code = "error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it does."""

    code = "not_found"


class Conflict(DomainError):
    """The request collides with the current state (a duplicate name, a running job)."""

    code = "conflict"


class InvalidInput(DomainError):
    """The request is well-formed but its content is not acceptable."""

    code = "invalid_input"


class Unauthorized(DomainError):
    """No valid credentials were presented."""

    code = "unauthorized"


class Forbidden(DomainError):
    """Valid credentials that may not do this (a widget key outside the chat, or from an unlisted origin)."""

    code = "forbidden"


class RateLimited(DomainError):
    """Too many requests in the current window; `retry_after_s` says when the next one is counted afresh."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int, **details: object) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    """A dependency (database, queue, model) cannot serve the request right now."""

    code = "unavailable"


class UnsupportedMediaType(DomainError):
    """A file whose format Threadline cannot read."""

    code = "unsupported_media_type"


class DocumentRejected(InvalidInput):
    """A document that could not be ingested (corrupt, encrypted, empty); it is kept with status `failed`."""

    code = "document_failed"
