"""Documents: ingest (hash, parse, chunk, embed, store), status, listing and deletion.

Ingestion is resumable: chunks are embedded and stored in batches, each batch committed with the document's
progress (`chunks_done` of `chunks_total`), so an invocation that runs short of time stops between batches and
a later one (a continuation message) picks up where it stopped. Parsing and chunking are deterministic, so
every invocation recomputes the same drafts from the stored file instead of storing them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from threadline.domain.chunking import ChunkDraft, chunk_sections
from threadline.domain.errors import InvalidInput, NotFound, Unavailable, UnsupportedMediaType
from threadline.domain.pagination import Cursor, Page, PageRequest, page_of
from threadline.domain.parsing import DocumentFormat, ParseError, detect_format, parse
from threadline.domain.ports import Embedder, PassageEmbedder, Vectors

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
EMBED_BATCH = 32
MAX_TITLE = 300
# What an invocation keeps in hand after its last batch: the final commit, sending the continuation and
# Powertools' own reporting. A 32-chunk batch costs about 0.85 s (the finding behind issue 17: 7,610 chunks in
# 202 s through the old synchronous path); the margin also grows with the slowest batch seen (in `resume`).
SAFETY_MS = 15_000
# API uploads are stored under {project_id}/uploads/: such an object only feeds the document the API claimed
# for it and never creates one (a redelivered notification after the document was deleted must not bring it
# back). Its name ends in its format, so the IngestFunction detects the same one.
UPLOADS = "uploads"
_EXTENSIONS = {
    DocumentFormat.PDF: ".pdf",
    DocumentFormat.DOCX: ".docx",
    DocumentFormat.MARKDOWN: ".md",
    DocumentFormat.HTML: ".html",
    DocumentFormat.TEXT: ".txt",
    DocumentFormat.RST: ".rst",
}


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
    # NULL until the file has been parsed and chunked; then chunks_done grows to it, batch by batch.
    chunks_total: int | None = None
    chunks_done: int = 0


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

    def find(self, project_id: UUID, content_hash: str) -> Document | None:
        """The project's document with this content, if any."""
        ...

    def set_total(self, document_id: UUID, project_id: UUID, total: int) -> Document:
        """Record how many chunks the document has (first invocation only; later ones recompute the same)."""
        ...

    def add_chunks(
        self, document_id: UUID, project_id: UUID, start: int, chunks: Sequence[ChunkDraft], vectors: Vectors
    ) -> Document:
        """Store a batch (drafts start..start+len) once and raise chunks_done to its end, in one transaction.

        A batch stored before (redelivery, a duplicate continuation) adds nothing, and progress never falls.
        """
        ...

    def finish(self, document_id: UUID, project_id: UUID) -> Document:
        """Mark a document whose chunks are all stored `ready`."""
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

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Store an object (its creation announces it to the IngestFunction)."""
        ...


class RemainingTime(Protocol):
    """How long the running invocation has left: the Lambda context is one."""

    def get_remaining_time_in_millis(self) -> int: ...


class Continuations(Protocol):
    """Where an unfinished ingestion asks to be carried on by a later invocation."""

    def carry_on(self, document: Document, bucket: str, key: str) -> None:
        """Announce that `document` (stored at bucket/key) still has chunks to embed."""
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
    return resume(repo, embedder, claim.document, upload.data, fmt, None), True


def submit(
    repo: DocumentRepository, store: ObjectStore, bucket: str, project_id: UUID, upload: Upload
) -> tuple[Document, bool]:
    """Register an upload `pending` and store its file in the bucket, whose notification starts the ingestion.

    Returns (document, created). Same content again stores nothing and returns the first document. The
    document is claimed before the object exists, so the IngestFunction finds it (title and all) instead of
    creating one from the object's name. If the file cannot be stored, the claim is withdrawn and the error
    raised: nothing is left pending that nobody will ingest.
    """
    if len(upload.data) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(f"document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
    fmt = detect_format(upload.filename, upload.declared_type, upload.data)
    digest = content_hash(upload.data)
    key = f"{project_id}/{UPLOADS}/{digest}{_EXTENSIONS[fmt]}"
    claim = repo.claim(project_id, _title(upload), f"s3://{bucket}/{key}", fmt.value, digest, len(upload.data))
    if not claim.must_ingest:
        return claim.document, False
    try:
        store.put(bucket, key, upload.data, fmt.value)
    except Unavailable:
        repo.delete(project_id, claim.document.id)
        raise
    return claim.document, True


def resume(
    repo: DocumentRepository,
    embedder: PassageEmbedder,
    document: Document,
    data: bytes,
    fmt: DocumentFormat,
    clock: RemainingTime | None,
) -> Document:
    """Embed and store the pending document's remaining chunks, batch by batch, while `clock` leaves time.

    Returns the document: `ready`, `failed` (unparseable), or still `pending` when time ran short (the caller
    sends a continuation). Without a clock it runs to the end. A document no longer pending is returned as is.
    """
    if document.status != "pending":
        return document
    try:
        parsed = parse(data, fmt)
    except ParseError as exc:
        return repo.mark_failed(document.id, str(exc))
    drafts = chunk_sections(parsed.sections, embedder)
    if document.chunks_total is None:
        document = repo.set_total(document.id, document.project_id, len(drafts))
    slowest_ms = 0.0
    while document.chunks_done < len(drafts):
        if clock is not None and clock.get_remaining_time_in_millis() < SAFETY_MS + 2 * slowest_ms:
            return document
        started = time.monotonic()
        start = document.chunks_done
        batch = drafts[start : start + EMBED_BATCH]
        vectors = embedder.embed([d.embedding_text for d in batch])
        document = repo.add_chunks(document.id, document.project_id, start, batch, vectors)
        slowest_ms = max(slowest_ms, (time.monotonic() - started) * 1000)
    return repo.finish(document.id, document.project_id)


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
    repo: DocumentRepository,
    embedder: PassageEmbedder,
    store: ObjectStore,
    continuations: Continuations,
    bucket: str,
    key: str,
    clock: RemainingTime | None,
) -> Document | None:
    """Ingest an object of the DocumentsBucket as far as `clock` allows, then ask for a continuation.

    None when the object's document was deleted (an API upload's documents are never recreated from the file).

    The document is found by content hash (an API upload claimed it already; a redelivered notification finds
    it too), and a pending one is carried on from its progress, so redelivery never duplicates chunks. An
    unsupported format is recorded as a failed document, since no client is there to receive a 4xx.
    """
    project_id = project_of_key(key)
    data, declared_type = store.read(bucket, key)
    upload = Upload(
        data=data, filename=key.rsplit("/", 1)[-1], declared_type=declared_type, source=f"s3://{bucket}/{key}"
    )
    try:
        if len(upload.data) > MAX_DOCUMENT_BYTES:
            raise InvalidInput(f"document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
        fmt = detect_format(upload.filename, upload.declared_type, upload.data)
        if key.split("/", 2)[1] == UPLOADS:
            document = repo.find(project_id, content_hash(data))
            if document is None:  # deleted before the IngestFunction came to it: nothing to ingest
                return None
        else:
            digest = content_hash(data)
            document = repo.claim(project_id, _title(upload), upload.source, fmt.value, digest, len(data)).document
        return _carry_on(continuations, resume(repo, embedder, document, data, fmt, clock), bucket, key)
    except NotFound:  # deleted while it was being ingested: its chunks went with it, nothing goes on
        return None
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


def continue_object(
    repo: DocumentRepository,
    embedder: PassageEmbedder,
    store: ObjectStore,
    continuations: Continuations,
    document_ref: tuple[UUID, UUID, str],
    bucket: str,
    key: str,
    clock: RemainingTime | None,
) -> Document | None:
    """Carry on ingesting document (project_id, document_id, content_hash) from its progress.

    A message for a document since deleted (None), finished, or whose content differs (a stale message about
    an older upload) changes nothing, so redelivered and duplicated continuations are harmless.
    """
    project_id, document_id, digest = document_ref
    try:
        document = repo.get(project_id, document_id)
    except NotFound:
        return None
    if document.status != "pending" or document.content_hash != digest:
        return document
    data, _ = store.read(bucket, key)
    if content_hash(data) != digest:
        return repo.mark_failed(document.id, "the stored file changed while it was being ingested")
    fmt = DocumentFormat(document.content_type)
    try:
        return _carry_on(continuations, resume(repo, embedder, document, data, fmt, clock), bucket, key)
    except NotFound:  # deleted while it was being ingested
        return None


def _carry_on(continuations: Continuations, document: Document, bucket: str, key: str) -> Document:
    if document.status == "pending":
        continuations.carry_on(document, bucket, key)
    return document
