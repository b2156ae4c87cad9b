"""Documents: ingest (hash, parse, chunk, embed, store), status, listing and deletion."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from threadline.domain.chunking import ChunkDraft, chunk_sections
from threadline.domain.errors import InvalidInput, UnsupportedMediaType
from threadline.domain.pagination import Cursor, Page, PageRequest, page_of
from threadline.domain.parsing import DocumentFormat, ParseError, detect_format, parse
from threadline.domain.ports import Embedder, PassageEmbedder, Vectors

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
EMBED_BATCH = 32
MAX_TITLE = 300


@dataclass(frozen=True, slots=True)
class Document:
    """A document of a project and where its ingestion stands."""

    id: UUID
    project_id: UUID
    title: str
    source: str
    content_type: str
    content_hash: str
    size_bytes: int
    status: str
    error: str | None
    chunk_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Upload:
    """Bytes to ingest and what is known about them."""

    data: bytes
    filename: str
    declared_type: str | None = None
    title: str | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of registering content: the document, and whether this caller must ingest it."""

    document: Document
    must_ingest: bool


class DocumentRepository(Protocol):
    """Storage of documents and their chunks."""

    def claim(
        self, project_id: UUID, title: str, source: str, content_type: str, content_hash: str, size: int
    ) -> Claim:
        """Insert a pending document, or return the one with the same content (re-claiming a stale pending one)."""
        ...

    def store_chunks(
        self, document_id: UUID, project_id: UUID, chunks: Sequence[ChunkDraft], vectors: Vectors
    ) -> Document:
        """Replace the document's chunks and mark it ready, in one transaction."""
        ...

    def mark_failed(self, document_id: UUID, reason: str) -> Document: ...
    def get(self, project_id: UUID, document_id: UUID) -> Document: ...
    def list(self, project_id: UUID, page: PageRequest) -> list[Document]:
        """Up to `page.fetch` documents, newest first (created_at, id), after the page's cursor."""
        ...

    def delete(self, project_id: UUID, document_id: UUID) -> None: ...


def list_documents(repo: DocumentRepository, project_id: UUID, page: PageRequest) -> Page[Document]:
    """A page of the project's documents, newest first."""
    return page_of(repo.list(project_id, page), page, lambda d: Cursor.after(d.created_at, d.id))


class ObjectStore(Protocol):
    """Where uploaded objects live (the DocumentsBucket)."""

    def read(self, bucket: str, key: str) -> tuple[bytes, str | None]:
        """The object's bytes and its declared content type."""
        ...


def content_hash(data: bytes) -> str:
    """SHA-256 of the raw bytes: the identity of content within a project."""
    return hashlib.sha256(data).hexdigest()


def ingest(
    repo: DocumentRepository, embedder: PassageEmbedder, project_id: UUID, upload: Upload
) -> tuple[Document, bool]:
    """Ingest an upload; returns (document, created). Same content again is a no-op returning the first document.

    An unsupported format raises before anything is stored; content that cannot be parsed is kept as
    a `failed` document with the reason, so both the API and the queue path show what went wrong.
    """
    if len(upload.data) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(f"document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
    fmt = detect_format(upload.filename, upload.declared_type, upload.data)
    claim = repo.claim(
        project_id,
        _title(upload),
        upload.source,
        fmt.value,
        content_hash(upload.data),
        len(upload.data),
    )
    if not claim.must_ingest:
        return claim.document, False
    return _process(repo, embedder, claim.document, upload, fmt), True


def _process(
    repo: DocumentRepository, embedder: PassageEmbedder, document: Document, upload: Upload, fmt: DocumentFormat
) -> Document:
    try:
        parsed = parse(upload.data, fmt)
    except ParseError as exc:
        return repo.mark_failed(document.id, str(exc))
    drafts = chunk_sections(parsed.sections, embedder)
    vectors = embed_batched(embedder, [d.embedding_text for d in drafts])
    return repo.store_chunks(document.id, document.project_id, drafts, vectors)


def embed_batched(embedder: Embedder, texts: Sequence[str], batch: int = EMBED_BATCH) -> Vectors:
    """Embed in fixed-size batches: padding to the longest text of a small batch wastes little work."""
    import numpy as np

    parts = [embedder.embed(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    return np.concatenate(parts) if parts else embedder.embed([])


def _title(upload: Upload) -> str:
    title = (upload.title or "").strip() or upload.filename.rsplit("/", 1)[-1].strip() or "Untitled"
    return title[:MAX_TITLE]


def project_of_key(key: str) -> UUID:
    """Objects are put under `{project_id}/...`; anything else is refused."""
    head, _, rest = key.partition("/")
    try:
        project_id = UUID(head)
    except ValueError as exc:
        raise InvalidInput("object key must start with a project id: {project_id}/name", key=key) from exc
    if not rest:
        raise InvalidInput("object key needs a name after the project id", key=key)
    return project_id


def ingest_object(
    repo: DocumentRepository, embedder: PassageEmbedder, store: ObjectStore, bucket: str, key: str
) -> Document:
    """Ingest an object of the DocumentsBucket. Redelivery is a no-op (content hash); an unsupported
    format is recorded as a failed document, since no client is there to receive a 4xx."""
    project_id = project_of_key(key)
    data, declared_type = store.read(bucket, key)
    upload = Upload(
        data=data, filename=key.rsplit("/", 1)[-1], declared_type=declared_type, source=f"s3://{bucket}/{key}"
    )
    try:
        return ingest(repo, embedder, project_id, upload)[0]
    except UnsupportedMediaType as exc:
        claim = repo.claim(
            project_id,
            _title(upload),
            upload.source,
            declared_type or "application/octet-stream",
            content_hash(data),
            len(data),
        )
        return repo.mark_failed(claim.document.id, exc.message) if claim.must_ingest else claim.document
