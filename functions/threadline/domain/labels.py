"""The thread listing with labels, and user corrections of labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

from threadline.domain.categories import ClassificationRequests
from threadline.domain.channels import DEFAULT_CHANNEL, Channel
from threadline.domain.errors import InvalidInput
from threadline.domain.pagination import FIRST_PAGE, Cursor, Page, PageRequest, page_of
from threadline.domain.ports import Vectors

LabelSource = Literal["auto", "user"]


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
    # An auto label's second choice: with a low confidence, what a reviewer most likely picks instead.
    label_runner_up: CategoryRef | None = None


@dataclass(frozen=True, slots=True)
class ThreadQuery:
    """Filters and position of one listing page."""

    page: PageRequest = FIRST_PAGE
    category_id: UUID | None = None
    unlabelled: bool = False
    label_source: LabelSource | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    channel: Channel | None = None
    label_confidence_below: float | None = None


ThreadPage = Page[ThreadSummary]


@dataclass(frozen=True, slots=True)
class Correction:
    """A user's label: the thread's first question as an example of the category, its vector once embedded."""

    thread_id: UUID
    category_id: UUID
    question: str
    vector: Vectors | None


@dataclass(frozen=True, slots=True)
class CorrectionsVersion:
    """Changes whenever a user label of the project is set, changed or cleared (each sets labelled_at)."""

    count: int
    latest: datetime | None


class CorrectionSource(Protocol):
    """The project's user labels as labelled examples, and where their embeddings are kept."""

    def corrections_version(self, project_id: UUID) -> CorrectionsVersion: ...

    def corrections(self, project_id: UUID, per_category: int) -> list[Correction]:
        """The latest `per_category` user labels of each category, with their stored vectors (or None)."""
        ...

    def store_correction_vectors(self, project_id: UUID, vectors: Sequence[tuple[UUID, Vectors]]) -> None:
        """Keep the embeddings of corrected threads' questions, so each is embedded once."""
        ...


class LabelRepository(Protocol):
    """Reads threads with their labels and writes user labels."""

    def list_threads(self, project_id: UUID, query: ThreadQuery) -> list[ThreadSummary]: ...
    def get_thread(self, project_id: UUID, thread_id: UUID) -> ThreadSummary: ...
    def set_user_label(self, project_id: UUID, thread_id: UUID, category_id: UUID) -> ThreadSummary: ...
    def clear_label(self, project_id: UUID, thread_id: UUID) -> ThreadSummary: ...


def build_query(
    page: PageRequest = FIRST_PAGE,
    category_id: UUID | None = None,
    unlabelled: bool = False,
    label_source: LabelSource | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    channel: Channel | None = None,
    label_confidence_below: float | None = None,
) -> ThreadQuery:
    """Validate listing parameters; contradictory filters are InvalidInput rather than an empty page."""
    if unlabelled and (category_id is not None or label_source is not None):
        raise InvalidInput("unlabelled=true cannot be combined with category_id or label_source", field="unlabelled")
    for name, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone (e.g. 2026-01-31T00:00:00Z)", field=name)
    if label_confidence_below is not None:
        if not 0.0 < label_confidence_below <= 1.0:
            raise InvalidInput("label_confidence_below must be in (0, 1]", field="label_confidence_below")
        if unlabelled or label_source == "user":
            # Only auto labels have a confidence: the combination could only ever list nothing.
            raise InvalidInput("label_confidence_below applies to auto labels only", field="label_confidence_below")
    return ThreadQuery(
        page=page,
        category_id=category_id,
        unlabelled=unlabelled,
        label_source=label_source,
        created_after=created_after,
        created_before=created_before,
        channel=channel,
        label_confidence_below=label_confidence_below,
    )


def list_threads(repo: LabelRepository, project_id: UUID, query: ThreadQuery) -> ThreadPage:
    """One page, newest first, by keyset (the repository returns `query.page.fetch` rows)."""
    return page_of(repo.list_threads(project_id, query), query.page, thread_cursor)


def thread_cursor(thread: ThreadSummary) -> Cursor:
    """The listing's position after a thread: (created_at, id)."""
    return Cursor.after(thread.created_at, thread.id)


def correct_label(
    repo: LabelRepository, queue: ClassificationRequests, project_id: UUID, thread_id: UUID, category_id: UUID | None
) -> ThreadSummary:
    """Set a user label (it then outranks every automatic path), or with None hand the thread back to the classifier."""
    if category_id is not None:
        return repo.set_user_label(project_id, thread_id, category_id)
    thread = repo.clear_label(project_id, thread_id)
    queue.request_classification(project_id, [thread_id])
    return thread
