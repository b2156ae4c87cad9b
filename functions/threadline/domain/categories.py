"""Categories per project: what a project's threads are labelled with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from threadline.domain.errors import InvalidInput
from threadline.domain.pagination import Cursor, Page, PageRequest, page_in_memory

MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 1000
MAX_EXAMPLES = 20
MAX_EXAMPLE_CHARS = 500


@dataclass(frozen=True, slots=True)
class Category:
    """A label a project's threads can carry; description and examples steer the classifier."""

    id: UUID
    project_id: UUID
    name: str
    description: str
    examples: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CategoryChanges:
    """A partial update: None leaves a field as it is."""

    name: str | None = None
    description: str | None = None
    examples: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class CategoryDeleted:
    """What deleting a category did to the threads that carried it."""

    category_id: UUID
    threads_cleared: int
    threads_queued: int


class CategoryRepository(Protocol):
    """Storage of categories. `delete_category` clears the label from its threads in the same transaction."""

    def list_categories(self, project_id: UUID) -> list[Category]: ...
    def get_category(self, project_id: UUID, category_id: UUID) -> Category: ...
    def create_category(self, project_id: UUID, name: str, description: str, examples: tuple[str, ...]) -> Category: ...
    def update_category(self, project_id: UUID, category_id: UUID, changes: CategoryChanges) -> Category: ...
    def delete_category(self, project_id: UUID, category_id: UUID) -> list[UUID]: ...


class ClassificationRequests(Protocol):
    """Asks the classifier (off the request path) to label threads; returns how many were queued."""

    def request_classification(self, project_id: UUID, thread_ids: Sequence[UUID]) -> int: ...


def clean_name(name: str) -> str:
    """A category name, trimmed; 1-100 characters."""
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_NAME_CHARS:
        raise InvalidInput(f"category name must be 1-{MAX_NAME_CHARS} characters")
    return cleaned


def clean_description(description: str) -> str:
    """A description, trimmed; at most 1000 characters."""
    cleaned = description.strip()
    if len(cleaned) > MAX_DESCRIPTION_CHARS:
        raise InvalidInput(f"category description must be at most {MAX_DESCRIPTION_CHARS} characters")
    return cleaned


def clean_examples(examples: Sequence[str]) -> tuple[str, ...]:
    """Example questions: at most 20, each 1-500 characters once trimmed, duplicates dropped."""
    if len(examples) > MAX_EXAMPLES:
        raise InvalidInput(f"a category has at most {MAX_EXAMPLES} example questions")
    cleaned: list[str] = []
    for example in examples:
        text = example.strip()
        if not text or len(text) > MAX_EXAMPLE_CHARS:
            raise InvalidInput(f"each example question must be 1-{MAX_EXAMPLE_CHARS} characters")
        if text not in cleaned:
            cleaned.append(text)
    return tuple(cleaned)


def list_categories(repo: CategoryRepository, project_id: UUID, page: PageRequest) -> Page[Category]:
    """A page of the project's categories, oldest first (a project has a few dozen: they are read whole)."""
    found = repo.list_categories(project_id)
    return page_in_memory(found, page, lambda c: Cursor.after(c.created_at, c.id))


def create_category(
    repo: CategoryRepository, project_id: UUID, name: str, description: str = "", examples: Sequence[str] = ()
) -> Category:
    """Add a category to a project (409 Conflict when the name exists, case-insensitively)."""
    return repo.create_category(project_id, clean_name(name), clean_description(description), clean_examples(examples))


def update_category(
    repo: CategoryRepository, project_id: UUID, category_id: UUID, changes: CategoryChanges
) -> Category:
    """Rename a category or change what steers the classifier; threads keep their label (ids are stable)."""
    cleaned = CategoryChanges(
        name=None if changes.name is None else clean_name(changes.name),
        description=None if changes.description is None else clean_description(changes.description),
        examples=None if changes.examples is None else clean_examples(changes.examples),
    )
    return repo.update_category(project_id, category_id, cleaned)


def delete_category(
    repo: CategoryRepository, queue: ClassificationRequests, project_id: UUID, category_id: UUID
) -> CategoryDeleted:
    """Delete a category; every thread that carried it is cleared and handed back to the classifier.

    User labels included: the category the user chose no longer exists, so keeping the thread
    "labelled by a user" with no label would hide it from the classifier forever. It is relabelled
    among the remaining categories (source `auto`), and the user can correct it again.
    """
    cleared = repo.delete_category(project_id, category_id)
    queued = queue.request_classification(project_id, cleared) if cleared else 0
    return CategoryDeleted(category_id=category_id, threads_cleared=len(cleared), threads_queued=queued)
