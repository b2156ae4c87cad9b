"""Documents of a project: upload (file or JSON text), list, get, delete."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from threadline.api.deps import ContainerDep, ProjectIdDep
from threadline.domain import documents
from threadline.domain.documents import Document, Upload
from threadline.domain.errors import DocumentRejected, InvalidInput

router = APIRouter(prefix="/query/v1/projects/{project_id}/documents", tags=["documents"])


class DocumentText(BaseModel):
    """A document sent as JSON text (treated as Markdown, so headings are kept)."""

    title: str = Field(min_length=1, max_length=300)
    text: str = Field(min_length=1)


class DocumentPublic(BaseModel):
    """A document and its ingest status."""

    id: UUID
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

    @classmethod
    def of(cls, document: Document) -> DocumentPublic:
        """The public view of a domain document."""
        return cls(
            id=document.id,
            title=document.title,
            source=document.source,
            content_type=document.content_type,
            content_hash=document.content_hash,
            size_bytes=document.size_bytes,
            status=document.status,
            error=document.error,
            chunk_count=document.chunk_count,
            created_at=document.created_at,
            updated_at=document.updated_at,
        )


class DocumentPage(BaseModel):
    """One page of documents, newest first; pass `next_cursor` back as `cursor` for the next."""

    results: list[DocumentPublic]
    next_cursor: str | None


async def _upload_from(request: Request) -> Upload:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        try:
            body = DocumentText.model_validate_json(await request.body())
        except ValidationError as exc:
            raise InvalidInput("expected JSON {title, text}", errors=[e["msg"] for e in exc.errors()]) from exc
        return Upload(
            data=body.text.encode(), filename=f"{body.title}.md", declared_type="text/markdown", title=body.title
        )
    if media_type == "multipart/form-data":
        form = await request.form()
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InvalidInput("multipart upload needs a `file` field")
        title = form.get("title")
        return Upload(
            data=await file.read(),
            filename=file.filename or "upload",
            declared_type=file.content_type,
            title=title if isinstance(title, str) else None,
        )
    raise InvalidInput("send multipart/form-data with a `file` field, or JSON {title, text}")


@router.post("/", status_code=201, responses={200: {"description": "the same content was already uploaded"}})
async def upload_document(
    request: Request, response: Response, container: ContainerDep, project_id: ProjectIdDep
) -> DocumentPublic:
    """Ingest a PDF, Markdown, HTML or text file (multipart `file`, optional `title`) or JSON {title, text}.

    Re-uploading the same content returns the existing document with 200. A file that cannot be
    parsed is kept with status `failed` and answered with 422 naming the reason.
    """
    upload = await _upload_from(request)
    document, created = await run_in_threadpool(
        documents.ingest, container.documents, container.embedder, project_id, upload
    )
    if document.status == "failed":
        raise DocumentRejected(
            f"the document could not be ingested: {document.error}",
            document_id=str(document.id),
            reason=document.error,
        )
    if not created:
        response.status_code = 200
    return DocumentPublic.of(document)


def _encode_cursor(document: Document) -> str:
    return base64.urlsafe_b64encode(f"{document.created_at.isoformat()}|{document.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        created_at, document_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), UUID(document_id)
    except ValueError as exc:
        raise InvalidInput("invalid cursor") from exc


@router.get("/")
async def list_documents(
    container: ContainerDep,
    project_id: ProjectIdDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> DocumentPage:
    """The project's documents, newest first."""
    before = _decode_cursor(cursor) if cursor else None
    found = await run_in_threadpool(container.documents.list, project_id, limit, before)
    next_cursor = _encode_cursor(found[-1]) if len(found) == limit else None
    return DocumentPage(results=[DocumentPublic.of(d) for d in found], next_cursor=next_cursor)


@router.get("/{document_id}/")
async def get_document(container: ContainerDep, project_id: ProjectIdDep, document_id: UUID) -> DocumentPublic:
    """One document with its status (pending, ready, failed with the reason)."""
    return DocumentPublic.of(await run_in_threadpool(container.documents.get, project_id, document_id))


@router.delete("/{document_id}/", status_code=204)
async def delete_document(container: ContainerDep, project_id: ProjectIdDep, document_id: UUID) -> Response:
    """Delete a document and all of its chunks."""
    await run_in_threadpool(container.documents.delete, project_id, document_id)
    return Response(status_code=204)
