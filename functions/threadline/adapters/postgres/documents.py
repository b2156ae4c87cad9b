"""Documents and chunks in Postgres; chunk vectors go in with binary COPY."""

from __future__ import annotations

from collections.abc import Sequence
from typing import LiteralString
from uuid import UUID

from threadline.adapters.postgres.db import Database, Row
from threadline.adapters.postgres.pagination import Keyset, page_sql
from threadline.domain.chunking import ChunkDraft
from threadline.domain.documents import Claim, Document
from threadline.domain.errors import NotFound
from threadline.domain.pagination import PageRequest
from threadline.domain.ports import Vectors

_COLUMNS: LiteralString = (
    "id, project_id, title, source, content_type, content_hash, size_bytes, status, error, chunk_count,"
    " created_at, updated_at"
)
_NEWEST_FIRST = Keyset("created_at", "id")
# A pending document whose ingester died (Lambda timeout, crash) may be taken over after this long.
_STALE_PENDING = "10 minutes"

_CLAIM = (
    "INSERT INTO documents (project_id, title, source, content_type, content_hash, size_bytes)"
    " VALUES (%(project_id)s, %(title)s, %(source)s, %(content_type)s, %(content_hash)s, %(size)s)"
    " ON CONFLICT (project_id, content_hash) DO NOTHING RETURNING " + _COLUMNS
)
_RECLAIM_STALE = (
    "UPDATE documents SET updated_at = now()"
    " WHERE project_id = %(project_id)s AND content_hash = %(content_hash)s"
    " AND status = 'pending' AND updated_at < now() - interval '" + _STALE_PENDING + "'"
    " RETURNING " + _COLUMNS
)
_BY_HASH = (
    "SELECT " + _COLUMNS + " FROM documents WHERE project_id = %(project_id)s AND content_hash = %(content_hash)s"
)


def _document(row: Row) -> Document:
    return Document(**row)


class PostgresDocuments:
    """`DocumentRepository` over Postgres."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(
        self, project_id: UUID, title: str, source: str, content_type: str, content_hash: str, size: int
    ) -> Claim:
        """Insert a pending document; the unique (project_id, content_hash) makes concurrent uploads race-free."""
        params = {
            "project_id": project_id,
            "title": title,
            "source": source,
            "content_type": content_type,
            "content_hash": content_hash,
            "size": size,
        }
        with self._db.transaction() as conn:
            row = conn.execute(_CLAIM, params).fetchone()
            if row is not None:
                return Claim(_document(row), must_ingest=True)
            row = conn.execute(_RECLAIM_STALE, params).fetchone()
            if row is not None:
                return Claim(_document(row), must_ingest=True)
            row = conn.execute(_BY_HASH, params).fetchone()
        if row is None:  # deleted between the two statements: report it as absent rather than guess
            raise NotFound("document not found")
        return Claim(_document(row), must_ingest=False)

    def store_chunks(
        self, document_id: UUID, project_id: UUID, chunks: Sequence[ChunkDraft], vectors: Vectors
    ) -> Document:
        """Replace the chunks and mark the document ready, atomically (a retried ingest leaves no duplicates)."""
        with self._db.transaction() as conn:
            # project_id prunes the statement to the project's partition (migration 0015); without it every
            # partition's document index would be probed.
            conn.execute(
                "DELETE FROM chunks WHERE project_id = %(project_id)s AND document_id = %(id)s",
                {"id": document_id, "project_id": project_id},
            )
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY chunks (document_id, project_id, ordinal, heading, content, embedding)"
                    " FROM STDIN WITH (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(["uuid", "uuid", "int4", "text", "text", "vector"])
                for chunk, vector in zip(chunks, vectors, strict=True):
                    copy.write_row((document_id, project_id, chunk.ordinal, chunk.heading, chunk.content, vector))
            row = conn.execute(
                "UPDATE documents SET status = 'ready', error = NULL, chunk_count = %(count)s, updated_at = now()"
                " WHERE id = %(id)s RETURNING " + _COLUMNS,
                {"id": document_id, "count": len(chunks)},
            ).fetchone()
        if row is None:
            raise NotFound("document not found")
        return _document(row)

    def mark_failed(self, document_id: UUID, reason: str) -> Document:
        """Record why ingestion failed."""
        with self._db.transaction() as conn:
            row = conn.execute(
                "UPDATE documents SET status = 'failed', error = %(reason)s, updated_at = now()"
                " WHERE id = %(id)s RETURNING " + _COLUMNS,
                {"id": document_id, "reason": reason[:1000]},
            ).fetchone()
        if row is None:
            raise NotFound("document not found")
        return _document(row)

    def get(self, project_id: UUID, document_id: UUID) -> Document:
        """One document of the project."""
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT " + _COLUMNS + " FROM documents WHERE id = %(id)s AND project_id = %(project_id)s",
                {"id": document_id, "project_id": project_id},
            ).fetchone()
        if row is None:
            raise NotFound("document not found")
        return _document(row)

    def list(self, project_id: UUID, page: PageRequest) -> list[Document]:
        """Newest first, keyset-paginated on (created_at, id)."""
        select: LiteralString = "SELECT " + _COLUMNS + " FROM documents WHERE project_id = %(project_id)s"
        sql, params = page_sql(select, {}, {}, _NEWEST_FIRST, page)
        with self._db.transaction() as conn:
            rows = conn.execute(sql, {**params, "project_id": project_id}).fetchall()
        return [_document(r) for r in rows]

    def delete(self, project_id: UUID, document_id: UUID) -> None:
        """Delete the document; its chunks go with it (ON DELETE CASCADE)."""
        with self._db.transaction() as conn:
            deleted = conn.execute(
                "DELETE FROM documents WHERE id = %(id)s AND project_id = %(project_id)s RETURNING id",
                {"id": document_id, "project_id": project_id},
            ).fetchone()
        if deleted is None:
            raise NotFound("document not found")
