"""The thread listing with labels, and user corrections of labels."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

from threadline.domain.categories import ClassificationRequests
from threadline.domain.channels import DEFAULT_CHANNEL, Channel
from threadline.domain.errors import InvalidInput

LabelSource = Literal["auto", "user"]
MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class CategoryRef:
    """The label of a thread, as shown in listings."""

    id: UUID
    name: str


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """One row of the thread listing."""

    id: UUID
    project_id: UUID
    category: CategoryRef | None
    label_source: LabelSource | None
    label_confidence: float | None
    label_model: str | None
    labelled_at: datetime | None
    first_question: str | None
    message_count: int
    created_at: datetime
    updated_at: datetime
    channel: Channel = DEFAULT_CHANNEL


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position after the last thread of a page: (created_at, id) of that thread."""

    created_at: datetime
    id: UUID

    def encode(self) -> str:
        """Opaque to clients: base64url of the ISO time and the id."""
        raw = f"{self.created_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Parse a cursor from `encode`; InvalidInput for anything else."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            when, _, ident = raw.partition("|")
            created_at = datetime.fromisoformat(when)
            if created_at.tzinfo is None:
                raise ValueError("cursor time has no zone")
            return cls(created_at=created_at, id=UUID(ident))
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidInput("invalid cursor", cursor=token[:100]) from exc


@dataclass(frozen=True, slots=True)
class ThreadQuery:
    """Filters and position of one listing page."""

    limit: int = 50
    cursor: Cursor | None = None
    category_id: UUID | None = None
    unlabelled: bool = False
    label_source: LabelSource | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    channel: Channel | None = None


@dataclass(frozen=True, slots=True)
class ThreadPage:
    """A page of threads, newest first, and the cursor of the next page (None at the end)."""

    results: list[ThreadSummary]
    next_cursor: str | None


class LabelRepository(Protocol):
    """Reads threads with their labels and writes user labels."""

    def list_threads(self, project_id: UUID, query: ThreadQuery) -> list[ThreadSummary]: ...
    def get_thread(self, project_id: UUID, thread_id: UUID) -> ThreadSummary: ...
    def set_user_label(self, project_id: UUID, thread_id: UUID, category_id: UUID) -> ThreadSummary: ...
    def clear_label(self, project_id: UUID, thread_id: UUID) -> ThreadSummary: ...


def build_query(
    limit: int = 50,
    cursor: str | None = None,
    category_id: UUID | None = None,
    unlabelled: bool = False,
    label_source: LabelSource | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    channel: Channel | None = None,
) -> ThreadQuery:
    """Validate listing parameters; contradictory filters are InvalidInput rather than an empty page."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1-{MAX_PAGE}")
    if unlabelled and (category_id is not None or label_source is not None):
        raise InvalidInput("unlabelled=true cannot be combined with category_id or label_source")
    for name, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone (e.g. 2026-01-31T00:00:00Z)")
    return ThreadQuery(
        limit=limit,
        cursor=Cursor.decode(cursor) if cursor else None,
        category_id=category_id,
        unlabelled=unlabelled,
        label_source=label_source,
        created_after=created_after,
        created_before=created_before,
        channel=channel,
    )


def list_threads(repo: LabelRepository, project_id: UUID, query: ThreadQuery) -> ThreadPage:
    """One page, newest first, by keyset: the repository is asked for one row more to know if a next page exists."""
    rows = repo.list_threads(project_id, replace(query, limit=query.limit + 1))
    if len(rows) <= query.limit:
        return ThreadPage(results=rows, next_cursor=None)
    last = rows[query.limit - 1]
    return ThreadPage(results=rows[: query.limit], next_cursor=Cursor(last.created_at, last.id).encode())


def correct_label(
    repo: LabelRepository, queue: ClassificationRequests, project_id: UUID, thread_id: UUID, category_id: UUID | None
) -> ThreadSummary:
    """Set a user label (it then outranks every automatic path), or with None hand the thread back to the classifier."""
    if category_id is not None:
        return repo.set_user_label(project_id, thread_id, category_id)
    thread = repo.clear_label(project_id, thread_id)
    queue.request_classification(project_id, [thread_id])
    return thread
