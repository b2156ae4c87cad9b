"""Categories in Postgres."""

from __future__ import annotations

from uuid import UUID

from threadline.adapters.postgres.db import Database, Row
from threadline.domain.categories import Category, CategoryChanges
from threadline.domain.errors import Conflict, NotFound

_COLUMNS = "id, project_id, name, description, examples, created_at, updated_at"

_LIST = "SELECT " + _COLUMNS + " FROM categories WHERE project_id = %(project_id)s ORDER BY created_at, id"

_GET = "SELECT " + _COLUMNS + " FROM categories WHERE id = %(id)s AND project_id = %(project_id)s"

_INSERT = (
    "INSERT INTO categories (project_id, name, description, examples)"
    " VALUES (%(project_id)s, %(name)s, %(description)s, %(examples)s) RETURNING " + _COLUMNS
)

_UPDATE = (
    "UPDATE categories SET name = coalesce(%(name)s, name),"
    " description = coalesce(%(description)s, description),"
    " examples = coalesce(%(examples)s::text[], examples), updated_at = now()"
    " WHERE id = %(id)s AND project_id = %(project_id)s RETURNING " + _COLUMNS
)

# Locking the row first makes a concurrent auto-label write with this category wait, then fail its
# foreign key check (and be retried by SQS), instead of slipping a label in after the clearing.
_LOCK = "SELECT id FROM categories WHERE id = %(category_id)s AND project_id = %(project_id)s FOR UPDATE"

_DELETE = "DELETE FROM categories WHERE id = %(category_id)s"

_CLEAR_THREADS = (
    # The CHECK threads_label_complete forbids the FK's ON DELETE SET NULL from clearing only
    # category_id, so the whole label goes here, before the category row is deleted.
    "UPDATE threads SET category_id = NULL, label_source = NULL, label_confidence = NULL,"
    " label_model = NULL, label_runner_up_id = NULL, labelled_at = NULL, updated_at = now()"
    " WHERE project_id = %(project_id)s AND category_id = %(category_id)s RETURNING id"
)


def _category(row: Row) -> Category:
    return Category(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        description=row["description"],
        examples=tuple(row["examples"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _duplicate(name: str) -> Conflict:
    return Conflict("a category with this name already exists in the project", name=name)


def _not_found() -> NotFound:
    return NotFound("category not found")


class PostgresCategories:
    """`CategoryRepository` over Postgres; names are unique per project, case-insensitively (unique index)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list_categories(self, project_id: UUID) -> list[Category]:
        return self._db.all(_LIST, {"project_id": project_id}, row=_category)

    def get_category(self, project_id: UUID, category_id: UUID) -> Category:
        params = {"id": category_id, "project_id": project_id}
        return self._db.one(_GET, params, missing=_not_found(), row=_category)

    def create_category(self, project_id: UUID, name: str, description: str, examples: tuple[str, ...]) -> Category:
        params = {"project_id": project_id, "name": name, "description": description, "examples": list(examples)}
        try:
            # RETURNING always gives the row: a project that does not exist already failed the foreign key.
            return self._db.one(_INSERT, params, missing=NotFound("project not found"), row=_category)
        except Conflict as exc:
            raise _duplicate(name) from exc

    def update_category(self, project_id: UUID, category_id: UUID, changes: CategoryChanges) -> Category:
        params = {
            "id": category_id,
            "project_id": project_id,
            "name": changes.name,
            "description": changes.description,
            "examples": None if changes.examples is None else list(changes.examples),
        }
        try:
            return self._db.one(_UPDATE, params, missing=_not_found(), row=_category)
        except Conflict as exc:
            raise _duplicate(changes.name or "") from exc

    def delete_category(self, project_id: UUID, category_id: UUID) -> list[UUID]:
        """Clear the category from its threads and delete it, in one transaction; returns the cleared threads."""
        params = {"project_id": project_id, "category_id": category_id}
        with self._db.transaction() as conn:
            if conn.execute(_LOCK, params).fetchone() is None:
                raise _not_found()
            cleared = [r["id"] for r in conn.execute(_CLEAR_THREADS, params).fetchall()]
            conn.execute(_DELETE, params)
        return cleared
